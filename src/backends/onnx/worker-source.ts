/**
 * The source of an onnx worker: a thread (`new Worker(src, { eval: true })`) or a child process
 * (`node -e src` with an IPC channel). Source text rather than a file, as for wasm (see
 * ../wasm/worker.ts for why): it must run both from dist/ and from TypeScript under vitest.
 * It loads onnxruntime-node with `require` from the path the pool passes in.
 *
 * One InferenceSession per model key (model digest + session options) per worker, created on
 * the first request that carries the model bytes and kept until dropped. One request at a
 * time: the pool never sends a second before the first is answered.
 *
 * Protocol (structured clone; tensor buffers are transferred):
 *   main -> worker  { t: 'run', id, k: key, m?: modelBytes, o?: sessionOptions,
 *                     f: { name: { type, dims, data } }, b?: inputBuffer }
 *                   { t: 'drop', k: key }
 *   worker -> main  { t: 'ready' } once, then per run
 *                   { t: 'ok', id, out: { name: { type, dims, data } }, ns, b? }  or
 *                   { t: 'err', id, message, code, b? }
 * `b` (threads only): the buffer the input views live in, handed back after the run so the
 * pool reuses it (see pool.ts, Slot.buffer).
 */

const THREAD_PRELUDE = `
const { parentPort, workerData } = require('node:worker_threads');
const ortPath = workerData.ortPath;
const send = (m, transfer) => parentPort.postMessage(m, transfer);
const onMessage = (f) => parentPort.on('message', f);
`;

const PROCESS_PRELUDE = `
const ortPath = process.env.THUNDERPAC_ORT_PATH;
const send = (m) => process.send(m);
const onMessage = (f) => process.on('message', f);
// The parent went away: nobody will read our answers.
process.on('disconnect', () => process.exit(0));
`;

export function workerSource(kind: 'thread' | 'process'): string {
  return (kind === 'thread' ? THREAD_PRELUDE : PROCESS_PRELUDE) + BODY;
}

const BODY = `
const ort = require(ortPath);
const sessions = new Map();

async function session(m) {
  let s = sessions.get(m.k);
  if (s === undefined) {
    if (!m.m) throw Object.assign(new Error('model ' + m.k + ' not loaded in this worker'), { code: 'ONNX_NOT_LOADED' });
    s = ort.InferenceSession.create(m.m, m.o);
    sessions.set(m.k, s);
    s.catch(() => sessions.delete(m.k));
  }
  return s;
}

onMessage(async (m) => {
  if (m.t === 'drop') {
    const s = sessions.get(m.k);
    sessions.delete(m.k);
    if (s) s.then((x) => x.release()).catch(() => {});
    return;
  }
  try {
    const s = await session(m);
    const feeds = {};
    for (const name of Object.keys(m.f)) {
      const t = m.f[name];
      feeds[name] = new ort.Tensor(t.type, t.data, t.dims);
    }
    const t0 = process.hrtime.bigint();
    const result = await s.run(feeds);
    const ns = Number(process.hrtime.bigint() - t0);
    const out = {};
    const transfer = m.b ? [m.b] : [];
    for (const name of Object.keys(result)) {
      const t = result[name];
      // A copy: the tensor's buffer may belong to onnxruntime and cannot be detached.
      const data = t.data.slice();
      out[name] = { type: t.type, dims: Array.from(t.dims, Number), data };
      transfer.push(data.buffer);
    }
    send({ t: 'ok', id: m.id, out, ns, b: m.b }, transfer);
  } catch (e) {
    send({ t: 'err', id: m.id, message: String((e && e.message) || e), code: e && e.code, b: m.b }, m.b ? [m.b] : []);
  }
});
send({ t: 'ready' });
`;
