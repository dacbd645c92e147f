/**
 * The event bus: subjects in NATS syntax (`inference.request.mlp`, wildcards `*` for one token
 * and `>` for the rest), publish with an optional dedupe id, and durable subscriptions whose
 * messages the handler must acknowledge. Two implementations share this contract: the embedded
 * in-process bus (the default) and NATS JetStream (when the config's `nats` section is set).
 *
 * Delivery is at least once: a message is redelivered until it is acked, after a nak, or when
 * its ack deadline passes (a handler that died, or a daemon that was killed). While a handler is
 * still running the bus extends the deadline itself, so a slow execution is not redelivered
 * under a live handler.
 */

import { ThunderpacError } from '../../runtime/errors.js';

export type BusHeaders = Readonly<Record<string, string>>;

export interface PublishOptions {
  readonly headers?: BusHeaders;
  /**
   * Dedupe id: a second publish with the same id within the bus's duplicate window is
   * dropped (JetStream's `Nats-Msg-Id`), and the first message's sequence is returned.
   */
  readonly msgId?: string;
}

export interface PublishAck {
  /** The message's sequence in the stream. */
  readonly seq: number;
  /** True when `msgId` had been seen: nothing new was stored. */
  readonly duplicate: boolean;
}

/** A message read back from the stream (for `read`). */
export interface StoredMessage {
  readonly seq: number;
  readonly subject: string;
  readonly data: Uint8Array;
  readonly headers: BusHeaders;
}

/** One delivery of a message to a durable subscription; exactly one of ack / nak settles it. */
export interface Delivery extends StoredMessage {
  /** 1 on the first delivery, 2 on the first redelivery, … */
  readonly deliveryCount: number;
  /** Deliveries the bus attempts before it gives up on the message. */
  readonly maxDeliver: number;
  /** Done: never deliver it again. */
  ack(): void;
  /** Not done: deliver it again (after `delayMs`, or at once). */
  nak(delayMs?: number): void;
}

export interface SubscribeOptions {
  /** The durable subscription's name: its position and pending acks survive a restart (NATS). */
  readonly durable: string;
  /**
   * At most this many deliveries are unsettled at once: the bus pulls only as many messages
   * as there are free slots (back-pressure reaches the broker, not an in-memory queue).
   */
  readonly maxInFlight: number;
}

export type DeliveryHandler = (delivery: Delivery) => Promise<void>;

export interface BusSubscription {
  /**
   * Stop pulling and wait (at most `graceMs`) for the handlers in flight; a message whose
   * handler has not settled it by then stays unacked and is redelivered.
   */
  stop(graceMs?: number): Promise<void>;
}

export interface ReadOptions {
  /** At most this many messages. */
  readonly max: number;
  /** When nothing is there yet, wait this long for the first one, ms. */
  readonly waitMs: number;
  readonly signal?: AbortSignal;
}

export interface EventBus {
  readonly kind: 'in-process' | 'nats';
  /** Identity the daemon attributes executions to when a message carries none (e.g. `bus:nats`). */
  readonly actorId: string;
  publish(subject: string, data: Uint8Array, options?: PublishOptions): Promise<PublishAck>;
  subscribe(filter: string, handler: DeliveryHandler, options: SubscribeOptions): BusSubscription;
  /** Messages on `subject` (wildcards allowed) with a sequence after `afterSeq`, oldest first. */
  read(subject: string, afterSeq: number, options: ReadOptions): Promise<StoredMessage[]>;
  /** Stop every subscription, flush what was published, disconnect. */
  close(): Promise<void>;
}

/** Resolves when `work` settles or after `ms`, whichever is first. */
export async function settledWithin(work: Promise<unknown>[], ms: number): Promise<void> {
  if (!Number.isFinite(ms)) {
    await Promise.allSettled(work);
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.allSettled(work),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
  ]);
  clearTimeout(timer);
}

/** The bus refused or failed an operation (full, closed, unreachable broker). */
export class BusError extends ThunderpacError {}

const TOKEN = /^[^\s.*>]+$/;

/** A concrete subject: dot-separated tokens, no wildcards, no whitespace. */
export function isSubject(subject: string): boolean {
  return subject.length > 0 && subject.length <= 256 && subject.split('.').every((t) => TOKEN.test(t));
}

/** A subscription filter: a subject whose tokens may be `*`, and whose last token may be `>`. */
export function isFilter(filter: string): boolean {
  if (filter.length === 0 || filter.length > 256) return false;
  const tokens = filter.split('.');
  return tokens.every((t, i) => TOKEN.test(t) || t === '*' || (t === '>' && i === tokens.length - 1));
}

/** Whether `subject` matches `filter` (NATS rules: `*` one token, trailing `>` one or more). */
export function subjectMatches(filter: string, subject: string): boolean {
  const f = filter.split('.');
  const s = subject.split('.');
  for (let i = 0; i < f.length; i++) {
    const token = f[i];
    if (token === '>') return s.length > i;
    if (i >= s.length) return false;
    if (token !== '*' && token !== s[i]) return false;
  }
  return f.length === s.length;
}
