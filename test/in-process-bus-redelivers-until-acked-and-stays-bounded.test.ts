/**
 * The embedded event bus keeps the JetStream contract inside one process: a delivery is
 * redelivered until it is acked (after a nak, a handler that throws, or an ack deadline that
 * passes with the handler done), at most `maxInFlight` deliveries are unsettled at once, at most
 * `maxDeliver` deliveries per message, publishes with a seen msgId are dropped, and a stream
 * full of unacknowledged messages refuses a publish instead of growing.
 */

import { afterEach, describe, expect, it } from 'vitest';
import { BusError, type Delivery, isFilter, subjectMatches } from '../src/daemon/events/bus.js';
import { InProcessBus } from '../src/daemon/events/in-process-bus.js';

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (d: Delivery) => new TextDecoder().decode(d.data);

/** Resolves when `check()` holds; rejects after `ms` (the expectation then says what is missing). */
async function until(check: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('the in-process event bus', () => {
  let bus: InProcessBus;
  afterEach(async () => {
    await bus?.close();
  });

  it('matches subjects by NATS rules', () => {
    expect(subjectMatches('inference.request.>', 'inference.request.mlp')).toBe(true);
    expect(subjectMatches('inference.request.>', 'inference.request')).toBe(false);
    expect(subjectMatches('inference.*.mlp', 'inference.result.mlp')).toBe(true);
    expect(subjectMatches('inference.*', 'inference.result.mlp')).toBe(false);
    expect(isFilter('a.>.b')).toBe(false);
    expect(isFilter('a b')).toBe(false);
  });

  it('redelivers after a nak and after a throw, counting deliveries, until acked', async () => {
    bus = new InProcessBus({ ackWaitMs: 60_000 });
    const seen: string[] = [];
    bus.subscribe(
      'jobs.>',
      async (d) => {
        seen.push(`${text(d)}#${d.deliveryCount}`);
        if (d.deliveryCount === 1) d.nak();
        else if (d.deliveryCount === 2) throw new Error('handler crashed');
        else d.ack();
      },
      { durable: 'w', maxInFlight: 1 },
    );
    await bus.publish('jobs.a', bytes('a'));
    await until(() => seen.length === 3);
    expect(seen).toEqual(['a#1', 'a#2', 'a#3']);
    await new Promise((r) => setTimeout(r, 50));
    expect(seen).toHaveLength(3); // acked: never again
  });

  it('redelivers a delivery whose handler returned without settling, once the ack wait passes', async () => {
    bus = new InProcessBus({ ackWaitMs: 100 });
    const counts: number[] = [];
    bus.subscribe(
      'jobs.>',
      async (d) => {
        counts.push(d.deliveryCount);
        if (d.deliveryCount === 2) d.ack(); // the first "died" without acking
      },
      { durable: 'w', maxInFlight: 1 },
    );
    await bus.publish('jobs.a', bytes('a'));
    await until(() => counts.length === 2);
    expect(counts).toEqual([1, 2]);
  });

  it('does not redeliver while the handler is still running past the ack wait', async () => {
    bus = new InProcessBus({ ackWaitMs: 50 });
    const counts: number[] = [];
    bus.subscribe(
      'jobs.>',
      async (d) => {
        counts.push(d.deliveryCount);
        await new Promise((r) => setTimeout(r, 300)); // six ack waits of work
        d.ack();
      },
      { durable: 'w', maxInFlight: 4 },
    );
    await bus.publish('jobs.a', bytes('a'));
    await new Promise((r) => setTimeout(r, 500));
    expect(counts).toEqual([1]);
  });

  it('gives up on a message after maxDeliver deliveries', async () => {
    bus = new InProcessBus({ ackWaitMs: 60_000, maxDeliver: 3 });
    let deliveries = 0;
    bus.subscribe(
      'jobs.>',
      async (d) => {
        deliveries++;
        d.nak();
      },
      { durable: 'w', maxInFlight: 1 },
    );
    await bus.publish('jobs.a', bytes('a'));
    await until(() => deliveries === 3);
    await new Promise((r) => setTimeout(r, 50));
    expect(deliveries).toBe(3);
  });

  it('never has more than maxInFlight deliveries unsettled, and delivers every message', async () => {
    bus = new InProcessBus();
    let running = 0;
    let peak = 0;
    const done = new Set<string>();
    bus.subscribe(
      'jobs.>',
      async (d) => {
        running++;
        peak = Math.max(peak, running);
        await new Promise((r) => setTimeout(r, 2));
        running--;
        done.add(text(d));
        d.ack();
      },
      { durable: 'w', maxInFlight: 3 },
    );
    for (let i = 0; i < 50; i++) await bus.publish(`jobs.${i % 5}`, bytes(String(i)));
    await until(() => done.size === 50);
    expect(peak).toBe(3);
  });

  it('drops a publish whose msgId it has seen, answering with the first sequence', async () => {
    bus = new InProcessBus();
    const first = await bus.publish('results.x', bytes('1'), { msgId: 'result:x:c1' });
    const again = await bus.publish('results.x', bytes('2'), { msgId: 'result:x:c1' });
    expect(again).toEqual({ seq: first.seq, duplicate: true });
    const stored = await bus.read('results.>', 0, { max: 10, waitMs: 0 });
    expect(stored.map((m) => new TextDecoder().decode(m.data))).toEqual(['1']);
  });

  it('refuses a publish with BUS_FULL when the stream is full of unacknowledged messages', async () => {
    bus = new InProcessBus({ maxMessages: 4 });
    bus.subscribe('jobs.>', async () => {}, { durable: 'w', maxInFlight: 1 }); // never acks
    for (let i = 0; i < 4; i++) await bus.publish('jobs.a', bytes(String(i)));
    await expect(bus.publish('jobs.a', bytes('5'))).rejects.toSatisfy(
      (e) => e instanceof BusError && e.code === 'BUS_FULL',
    );
  });

  it('evicts acknowledged messages to make room', async () => {
    bus = new InProcessBus({ maxMessages: 4 });
    const acked: string[] = [];
    bus.subscribe(
      'jobs.>',
      async (d) => {
        acked.push(text(d));
        d.ack();
      },
      { durable: 'w', maxInFlight: 1 },
    );
    for (let i = 0; i < 20; i++) {
      await bus.publish('jobs.a', bytes(String(i)));
      await until(() => acked.length === i + 1);
    }
    expect(acked).toHaveLength(20);
    const kept = await bus.read('jobs.a', 0, { max: 100, waitMs: 0 });
    expect(kept.map((m) => m.seq)).toEqual([17, 18, 19, 20]);
  });

  it('answers a waiting read when a matching message arrives', async () => {
    bus = new InProcessBus();
    const reading = bus.read('inference.result.*', 0, { max: 10, waitMs: 10_000 });
    await bus.publish('inference.request.mlp', bytes('not this'));
    await bus.publish('inference.result.mlp', bytes('this'));
    const got = await reading;
    expect(got.map((m) => m.subject)).toEqual(['inference.result.mlp']);
  });
});
