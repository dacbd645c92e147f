/**
 * The worker script, generated from the ABI functions' own source text.
 *
 * Why a generated `eval` worker rather than a worker file: a `new Worker(file)` must point
 * at JavaScript, but this code runs both from compiled dist/ and from TypeScript sources
 * under vitest, where Node 20 cannot load a .ts worker (no type stripping) and dist/ may not
 * exist yet. Emitting `runGuest` & co. via Function.prototype.toString() works in both
 * cases, needs no build step, and keeps ONE implementation of the ABI for both paths.
 *
 * The price: the stringified functions must be self-contained (see abi.ts, host.ts), and a
 * source transform that injects references into function bodies (istanbul coverage
 * instrumentation) would break the worker; v8 coverage does not.
 *
 * Protocol (structured clone; input and output buffers are transferred, never copied twice):
 *   main -> worker  { t: 0, k: key, m?: Module, i?: imports, s?: spare, e: entry, b: input, o: maxOutputBytes,
 *                     f: fuel limit (-1 = unmetered), d: call-depth limit (0 = none) }
 *                   (key: build id + metering config [+ WASI config]; m, i, s, w only the first time this worker
 *                   sees key; it caches them; s: whether it may instantiate ahead of time; w: WasiConfig, when
 *                   the module imports WASI or is a command: entry '_start' then runs as a command)
 *                   { t: 1, k: buildId }   forget a module (dispose)
 *   worker -> main  null once when ready, then one AbiResult per run, in order.
 */

import { abiResult, abiThrown, callGuest, metered, runCommand, runGuest } from './abi.js';
import { createGuestStdio } from './guest-stdio.js';
import { createHostImports } from './host.js';
import { createMemFs } from './memfs.js';
import { createSeededRandom } from './seeded-random.js';
import { createWasi } from './wasi.js';
import { createReadOnlyFs } from './wasi-fs.js';
import { foldWasiPath } from './wasi-path.js';

export const MSG_RUN = 0;
export const MSG_DROP = 1;

const LOOP = `
const modules = new Map();
const host = { memory: undefined };
// One spare instance, of the module run last: made right after a reply is posted, i.e. while
// the main thread handles it, so the next execution of that module skips instantiation.
// A spare has never run and never seen an input, so this keeps "fresh instance per
// execution". Modules with a start function get no spare: their start code must run inside
// an execution, under its timer.
let spare;
let spareKey;
parentPort.on('message', (m) => {
  if (m.t === ${MSG_DROP}) {
    modules.delete(m.k);
    if (spareKey === m.k) spare = spareKey = undefined;
    return;
  }
  let c = modules.get(m.k);
  if (c === undefined) {
    c = { module: m.m, imports: createHostImports(m.i, host), spare: m.s, wasi: undefined, command: false };
    if (m.w !== undefined) {
      const rofs = m.w.memory !== undefined
        ? createMemFs(m.w.memory, foldWasiPath)
        : m.w.dir === undefined ? undefined : createReadOnlyFs(require('node:fs'), m.w.dir, foldWasiPath);
      c.wasi = createWasi(m.w, host, rofs, createSeededRandom(m.w.seed), createGuestStdio());
      c.imports.wasi_snapshot_preview1 = c.wasi.imports;
      c.command = m.w.command;
    }
    modules.set(m.k, c);
  }
  let inst;
  if (spareKey === m.k) {
    inst = spare;
    spare = spareKey = undefined;
  }
  let r;
  if (c.wasi === undefined) {
    r = runGuest(c.module, c.imports, host, m.e, m.b, m.o, inst, m.f, m.d);
  } else if (c.command && m.e === '_start') {
    r = runCommand(c.module, c.imports, host, c.wasi, m.b, m.o, inst, m.f, m.d);
  } else {
    c.wasi.begin(new Uint8Array(0), m.o);
    r = runGuest(c.module, c.imports, host, m.e, m.b, m.o, inst, m.f, m.d);
    c.wasi.end();
  }
  if (r.output === null) parentPort.postMessage(r);
  else parentPort.postMessage(r, [r.output.buffer]);
  if (c.spare) {
    try {
      spare = new WebAssembly.Instance(c.module, c.imports);
      spareKey = m.k;
    } catch {
      spare = spareKey = undefined; // the next execution instantiates, and reports any error
    }
  }
});
parentPort.postMessage(null);
`;

let source: string | undefined;

export function workerSource(): string {
  source ??= [
    "'use strict';",
    "const { parentPort } = require('node:worker_threads');",
    ...[
      abiResult,
      abiThrown,
      metered,
      callGuest,
      runGuest,
      runCommand,
      createHostImports,
      createWasi,
      createReadOnlyFs,
      createMemFs,
      createSeededRandom,
      createGuestStdio,
      foldWasiPath,
    ].map((fn) => fn.toString()),
    LOOP,
  ].join('\n');
  return source;
}
