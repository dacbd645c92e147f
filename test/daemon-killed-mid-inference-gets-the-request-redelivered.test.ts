/**
 * A request is never lost (issue #11, seed 000): the daemon is SIGKILLed while it executes
 * inference requests from NATS JetStream; what it had pulled but not acked is redelivered by
 * the server after the ack wait, and the restarted daemon (same store, same durable consumer)
 * runs it. Every request ends with exactly one result on `inference.result.cnn` (the result's
 * dedupe id is the correlation id), and at least one of them says it was a redelivery.
 *
 * The slow input is real: the cnn model at batch 128 (a 6.8 MB JSON request, ~0.5-1 s of
 * parsing, checking and inference in the daemon), so the kill lands mid-execution; that it did
 * is checked, not assumed: after the kill the consumer must show a delivered, unacked request.
 */

import { join } from 'node:path';
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { type NatsConnection, connect } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Thunderpac } from '../src/thunderpac.js';
import { type TestDaemon, startTestDaemon, tempDirectory } from './helpers/daemon.js';
import { batchedInputs, readStream } from './helpers/inference-requests.js';
import { type NatsServer, startNatsServer } from './helpers/nats-server.js';

const STREAM = 'THUNDERPAC';
const DURABLE = 'thunderpac-inference';
const REQUESTS = 5;
const BATCH = 128;

describe('a daemon killed mid-execution', () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let js: JetStreamClient;
  let jsm: JetStreamManager;
  const daemons: TestDaemon[] = [];
  const storeDir = tempDirectory('tp-events-kill-');
  const store = join(storeDir.dir, 'store');
  const start = async (config: { ackWaitMs?: number; drainTimeoutMs?: number } = {}): Promise<TestDaemon> => {
    const { ackWaitMs = 4_000, drainTimeoutMs } = config;
    const daemon = await startTestDaemon({
      store,
      config: {
        nats: { url: nats.url, ackWaitMs, maxInFlight: 2 },
        ...(drainTimeoutMs === undefined ? {} : { limits: { drainTimeoutMs } }),
      },
    });
    daemons.push(daemon);
    return daemon;
  };

  beforeAll(async () => {
    nats = await startNatsServer({ maxPayload: 16 * 1024 * 1024 });
    nc = await connect({ servers: nats.url });
    js = jetstream(nc);
    jsm = await jetstreamManager(nc);
  }, 60_000);

  // Each test starts from no daemon on the store (a failed one may have left one running).
  afterEach(async () => {
    for (const d of daemons.splice(0)) await d.stop('SIGKILL');
  });

  afterAll(async () => {
    await nc?.close();
    await nats?.stop();
    storeDir.remove();
  });

  it('leaves the request unacked; after a restart it is redelivered and its result published once', async () => {
    let daemon = await start();
    const results = nc.subscribe('inference.result.cnn');
    const resultArrivals = results[Symbol.asyncIterator]();
    const inputs = batchedInputs('cnn', BATCH);
    const ids = Array.from({ length: REQUESTS }, (_, i) => `kill-${i}`);
    for (const id of ids) {
      await js.publish('inference.request.cnn', JSON.stringify({ correlation_id: id, inputs }), {
        timeout: 20_000,
      });
    }

    // Back-pressure: the daemon holds at most maxInFlight (2) requests; the rest wait in the stream.
    let peakUnacked = 0;
    let peakWaiting = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const c = await jsm.consumers.info(STREAM, DURABLE);
        peakUnacked = Math.max(peakUnacked, c.num_ack_pending);
        peakWaiting = Math.max(peakWaiting, c.num_pending);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    await resultArrivals.next().then((first) => expect(first.done).toBe(false));
    sampling = false;
    await sampler;
    expect(peakUnacked).toBeLessThanOrEqual(2);
    expect(peakWaiting).toBeGreaterThan(0);

    // Kill at a result: the daemon is then running (or has pulled) the next request. That a
    // request really was in flight is read from the server; on the rare kill that falls between
    // an ack and the next pull, restart and kill at the next result.
    let unackedAtKill = 0;
    for (let attempt = 0; attempt < 3 && unackedAtKill === 0; attempt++) {
      const next = await resultArrivals.next();
      expect(next.done).toBe(false);
      await daemon.kill(); // SIGKILL: no drain, no acks flushed
      expect(daemon.process.signalCode).toBe('SIGKILL');
      unackedAtKill = (await jsm.consumers.info(STREAM, DURABLE)).num_ack_pending;
      daemon = await start();
    }
    results.unsubscribe();
    expect(unackedAtKill).toBeGreaterThan(0);

    // The restarted daemon gets what the killed one held once the ack wait passes.
    const published = await readStream(
      js,
      STREAM,
      'inference.result.cnn',
      (m) => new Set(m.map((r) => r.json.correlation_id)).size >= REQUESTS,
      60_000,
    );
    let info = await jsm.consumers.info(STREAM, DURABLE);
    const deadline = Date.now() + 20_000;
    while ((info.num_ack_pending > 0 || info.num_pending > 0) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      info = await jsm.consumers.info(STREAM, DURABLE);
    }
    expect(info.num_pending).toBe(0);
    expect(info.num_ack_pending).toBe(0);

    // Exactly one result per request, in the stream: none lost, none doubled.
    const all = await readStream(
      js,
      STREAM,
      'inference.result.cnn',
      (m) => m.length >= published.length,
      10_000,
    );
    expect(all.map((r) => r.json.correlation_id).sort()).toEqual([...ids].sort());
    for (const r of all) {
      expect(r.json.status).toBe('completed');
      expect(r.json.causation_id).toBe(r.json.receipt_id);
      expect(r.json.response.outputs[0].shape).toEqual([BATCH, 10]);
    }
    const dead = await jsm.streams.info(STREAM, { subjects_filter: 'system.dlq.>' });
    expect(dead.state.subjects ?? {}).toEqual({}); // nothing was dead-lettered

    // Each published receipt is in the store, attributed to the request it answered.
    for (const d of daemons) if (d.process.exitCode === null && d.process.signalCode === null) await d.stop();
    const tp = await Thunderpac.open({ store });
    try {
      // The request held at the kill ran again: its result says so (delivery_attempt 2), or,
      // when the killed daemon had finished it but not acked, its request id has two receipts
      // (at least once for executions) while its result was published once (the dedupe id).
      const runs = new Map<string, number>();
      for (const receipt of tp.store?.listReceipts({ actor: 'bus:nats', limit: 1000 }).receipts ?? []) {
        runs.set(receipt.requestId ?? '', (runs.get(receipt.requestId ?? '') ?? 0) + 1);
      }
      const ranAgain = all.filter(
        (r) => r.json.delivery_attempt >= 2 || (runs.get(r.json.correlation_id) ?? 0) >= 2,
      );
      expect(ranAgain.length).toBeGreaterThan(0);
      for (const r of all) {
        expect(tp.store?.getReceipt(r.json.receipt_id)).toMatchObject({
          actor: 'bus:nats',
          requestId: r.json.correlation_id,
          status: 'completed',
        });
      }
    } finally {
      await tp.close();
    }
  }, 180_000);

  it('on SIGTERM finishes or returns what it pulled: nothing is left waiting for the ack wait', async () => {
    // What is proved is the drain, not the machine's speed: the drain bound is well above what two
    // batch-128 executions take even on a loaded machine, and below the test helper's 20 s SIGKILL
    // (past it, an execution is cut and stays
    // unacked by design: that is the kill test's case above). The ack wait is long, so a request
    // stuck unacked is still pending when checked, not already redelivered.
    const ACK_WAIT_MS = 30_000;
    const daemon = await start({ ackWaitMs: ACK_WAIT_MS, drainTimeoutMs: 15_000 });
    const results = nc.subscribe('inference.result.cnn');
    const arrivals = results[Symbol.asyncIterator]();
    const inputs = batchedInputs('cnn', BATCH);
    const ids = Array.from({ length: 3 }, (_, i) => `term-${i}`);
    for (const id of ids) {
      await js.publish('inference.request.cnn', JSON.stringify({ correlation_id: id, inputs }), {
        timeout: 20_000,
      });
    }
    const first = await arrivals.next();
    expect(first.done).toBe(false);
    results.unsubscribe();
    expect((await daemon.stop()).code).toBe(0);
    // Drained: what ran was acked, what was pulled but not started was returned (nak). A nak'd
    // request still counts as ack-pending on the server until someone pulls it again, so the
    // proof is the next daemon: it gets everything at once, not after the ack wait (30 s): all
    // three results within half of it (each execution takes well under a second).
    const { delivered, ack_floor, num_ack_pending, num_pending } = await jsm.consumers.info(STREAM, DURABLE);
    const atStop = JSON.stringify({ delivered, ack_floor, num_ack_pending, num_pending });
    await start({ ackWaitMs: ACK_WAIT_MS });
    const all = await readStream(
      js,
      STREAM,
      'inference.result.cnn',
      (m) => m.filter((r) => ids.includes(r.json.correlation_id)).length >= ids.length,
      ACK_WAIT_MS / 2,
    );
    const mine = all.filter((r) => ids.includes(r.json.correlation_id));
    expect(
      mine.map((r) => r.json.correlation_id).sort(),
      `answered within half the ack wait after a clean stop; the consumer at the stop: ${atStop}; the stopped daemon's log:\n${daemon.stdout()}`,
    ).toEqual(ids);
  }, 120_000);
});
