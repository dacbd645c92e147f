/**
 * The embedded bus: a bounded in-memory stream with durable cursors, the same contract as the
 * JetStream bus inside one process. Nothing survives the process: it gives at-least-once
 * delivery to the daemon's own consumers (redelivery after a nak, a handler that throws, or an
 * ack deadline that passes), not durability across restarts — that is what NATS is for.
 *
 * Bounded: the stream holds at most `maxMessages`. Settled messages (acked by every durable
 * that wants them) are evicted oldest first to make room; when the oldest is still wanted,
 * publish is refused with BUS_FULL rather than growing without end.
 */

import {
  type BusSubscription,
  BusError,
  type Delivery,
  type DeliveryHandler,
  type EventBus,
  type PublishAck,
  type PublishOptions,
  type ReadOptions,
  type StoredMessage,
  type SubscribeOptions,
  settledWithin,
  subjectMatches,
} from './bus.js';

export interface InProcessBusOptions {
  /** Messages the stream holds at most (settled ones are evicted to make room). */
  readonly maxMessages: number;
  /** A delivery not settled within this is redelivered (extended while its handler runs), ms. */
  readonly ackWaitMs: number;
  /** Deliveries per message at most; then it is dropped from the durable (as JetStream does). */
  readonly maxDeliver: number;
  /** Publishes with the same msgId within this window are dropped as duplicates, ms. */
  readonly duplicateWindowMs: number;
  readonly actorId: string;
}

export const IN_PROCESS_BUS_DEFAULTS: InProcessBusOptions = Object.freeze({
  maxMessages: 10_000,
  ackWaitMs: 30_000,
  maxDeliver: 5,
  duplicateWindowMs: 120_000,
  actorId: 'bus:local',
});

interface Pending {
  deliveryCount: number;
  timer: NodeJS.Timeout | null;
}

class Durable {
  /** Next stream sequence to look at for first deliveries. */
  cursor = 1;
  readonly pending = new Map<number, Pending>();
  /** Sequences due for redelivery, in order. */
  readonly redeliver: number[] = [];
  /** Deliveries counted per sequence while waiting for redelivery. */
  readonly counts = new Map<number, number>();
  readonly running = new Set<Promise<void>>();
  stopped = false;

  constructor(
    readonly filter: string,
    readonly handler: DeliveryHandler,
    readonly maxInFlight: number,
  ) {}

  /** Whether the message is settled for this durable (never wanted, or acked). */
  settled(message: StoredMessage): boolean {
    if (!subjectMatches(this.filter, message.subject)) return true;
    return message.seq < this.cursor && !this.pending.has(message.seq) && !this.counts.has(message.seq);
  }
}

export class InProcessBus implements EventBus {
  readonly kind = 'in-process';
  readonly actorId: string;
  readonly #options: InProcessBusOptions;
  readonly #messages: StoredMessage[] = [];
  readonly #durables = new Map<string, Durable>();
  readonly #seen = new Map<string, { seq: number; at: number }>();
  readonly #readers = new Set<() => void>();
  #nextSeq = 1;
  #closed = false;

  constructor(options: Partial<InProcessBusOptions> = {}) {
    this.#options = { ...IN_PROCESS_BUS_DEFAULTS, ...options };
    this.actorId = this.#options.actorId;
  }

  async publish(subject: string, data: Uint8Array, options: PublishOptions = {}): Promise<PublishAck> {
    if (this.#closed) throw new BusError('BUS_CLOSED', 'the event bus is closed');
    const now = Date.now();
    if (options.msgId !== undefined) {
      this.#forgetOldIds(now);
      const seen = this.#seen.get(options.msgId);
      if (seen) return { seq: seen.seq, duplicate: true };
    }
    this.#makeRoom();
    const message: StoredMessage = { seq: this.#nextSeq++, subject, data, headers: { ...options.headers } };
    this.#messages.push(message);
    if (options.msgId !== undefined) this.#seen.set(options.msgId, { seq: message.seq, at: now });
    for (const durable of this.#durables.values()) this.#pump(durable);
    for (const wake of this.#readers) wake();
    return { seq: message.seq, duplicate: false };
  }

  subscribe(filter: string, handler: DeliveryHandler, options: SubscribeOptions): BusSubscription {
    if (this.#durables.has(options.durable)) {
      throw new BusError('BUS_DURABLE_IN_USE', `durable ${options.durable} already has a subscriber`);
    }
    const durable = new Durable(filter, handler, Math.max(1, options.maxInFlight));
    durable.cursor = this.#messages[0]?.seq ?? this.#nextSeq;
    this.#durables.set(options.durable, durable);
    this.#pump(durable);
    return {
      stop: async (graceMs = Number.POSITIVE_INFINITY) => {
        durable.stopped = true;
        await settledWithin([...durable.running], graceMs);
        for (const p of durable.pending.values()) if (p.timer) clearTimeout(p.timer);
        this.#durables.delete(options.durable);
      },
    };
  }

  async read(subject: string, afterSeq: number, options: ReadOptions): Promise<StoredMessage[]> {
    const matching = (): StoredMessage[] => {
      const out: StoredMessage[] = [];
      for (const m of this.#messages) {
        if (m.seq > afterSeq && subjectMatches(subject, m.subject)) out.push(m);
        if (out.length >= options.max) break;
      }
      return out;
    };
    const now = matching();
    if (now.length > 0 || options.waitMs <= 0 || this.#closed) return now;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#readers.delete(wake);
        options.signal?.removeEventListener('abort', done);
        resolve();
      };
      const wake = (): void => {
        if (matching().length > 0) done();
      };
      const timer = setTimeout(done, options.waitMs);
      this.#readers.add(wake);
      options.signal?.addEventListener('abort', done);
    });
    return matching();
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const wake of this.#readers) wake();
    const durables = [...this.#durables.values()];
    for (const d of durables) d.stopped = true;
    await settledWithin(
      durables.flatMap((d) => [...d.running]),
      0,
    );
    for (const d of durables) for (const p of d.pending.values()) if (p.timer) clearTimeout(p.timer);
    this.#durables.clear();
  }

  /** Evict settled messages from the front; refuse when the oldest is still wanted and the stream is full. */
  #makeRoom(): void {
    // Settled messages stay readable (`read`) until room is needed.
    while (this.#messages.length >= this.#options.maxMessages) {
      const oldest = this.#messages[0] as StoredMessage;
      if ([...this.#durables.values()].some((d) => !d.settled(oldest))) {
        throw new BusError(
          'BUS_FULL',
          `the in-process event bus holds ${this.#messages.length} messages and the oldest is not yet acknowledged (maxMessages ${this.#options.maxMessages})`,
        );
      }
      this.#messages.shift();
    }
  }

  #forgetOldIds(now: number): void {
    for (const [id, seen] of this.#seen) {
      if (now - seen.at <= this.#options.duplicateWindowMs) break; // insertion order = time order
      this.#seen.delete(id);
    }
  }

  #find(seq: number): StoredMessage | undefined {
    const first = this.#messages[0]?.seq ?? this.#nextSeq;
    return this.#messages[seq - first];
  }

  /** Hand out deliveries while the durable has free slots. */
  #pump(durable: Durable): void {
    while (!durable.stopped && !this.#closed && durable.pending.size < durable.maxInFlight) {
      let seq = durable.redeliver.shift();
      if (seq === undefined) {
        while (durable.cursor < this.#nextSeq) {
          const candidate = this.#find(durable.cursor);
          durable.cursor++;
          if (candidate && subjectMatches(durable.filter, candidate.subject)) {
            seq = candidate.seq;
            break;
          }
        }
      }
      if (seq === undefined) return;
      const message = this.#find(seq);
      if (!message) {
        durable.counts.delete(seq);
        continue;
      }
      this.#deliver(durable, message);
    }
  }

  #deliver(durable: Durable, message: StoredMessage): void {
    const deliveryCount = (durable.counts.get(message.seq) ?? 0) + 1;
    durable.counts.delete(message.seq);
    const pending: Pending = { deliveryCount, timer: null };
    durable.pending.set(message.seq, pending);
    let settled = false;
    const settle = (redeliverAfterMs: number | null): void => {
      if (settled) return;
      settled = true;
      if (pending.timer) clearTimeout(pending.timer);
      durable.pending.delete(message.seq);
      if (redeliverAfterMs !== null && deliveryCount < this.#options.maxDeliver && !durable.stopped) {
        durable.counts.set(message.seq, deliveryCount);
        const requeue = (): void => {
          durable.redeliver.push(message.seq);
          this.#pump(durable);
        };
        if (redeliverAfterMs > 0) setTimeout(requeue, redeliverAfterMs).unref();
        else requeue();
      }
      this.#pump(durable);
    };
    // The deadline runs from delivery; while the handler is still running it is extended, so
    // only a delivery whose handler finished without settling (or threw) is redelivered by it.
    let handlerDone = false;
    const arm = (): void => {
      pending.timer = setTimeout(() => {
        if (handlerDone) settle(0);
        else arm();
      }, this.#options.ackWaitMs);
      pending.timer.unref();
    };
    arm();
    const delivery: Delivery = {
      ...message,
      deliveryCount,
      maxDeliver: this.#options.maxDeliver,
      ack: () => settle(null),
      nak: (delayMs = 0) => settle(delayMs),
    };
    const run = (async () => {
      try {
        await durable.handler(delivery);
      } catch {
        settle(0); // a handler that throws has not processed the message
      } finally {
        handlerDone = true;
      }
    })();
    durable.running.add(run);
    void run.finally(() => durable.running.delete(run));
  }
}
