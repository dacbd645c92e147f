/**
 * One connection to the shared Redis, owned by every global limiter and quota of a daemon:
 * each call bounded by `commandTimeoutMs` (a hung Redis cannot hang admission), no offline
 * queue (while disconnected a call fails at once and the caller decides locally), reconnection
 * with a bounded exponential backoff, scripts loaded once per connection (EVALSHA, with EVAL as
 * the fallback when Redis answers NOSCRIPT after a restart or SCRIPT FLUSH), and plain counters
 * for metrics.
 *
 *   const store = new GlobalStore({ url: 'redis://10.0.0.5:6379', failMode: 'open' });
 *   store.connect().catch(() => {}); // at startup; until ready, checks decide locally (degraded)
 *   const limit = new RedisGcraLimiter(store, { limit: 1000, periodMs: 1000, leaseSize: 20 });
 *   … await limit.check(actor) …; metrics read store.counters and limit.counters; store.close().
 *
 * A store that is never connected explicitly connects on its first check (that check decides
 * locally). If Redis is down at startup, ioredis keeps retrying with the same bounded backoff.
 */

import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { type ResolvedGlobalStoreOptions, resolveGlobalStoreOptions } from './options.js';

/** Plain, monotonically increasing counters (except `degraded`, 0 or 1) for Prometheus. */
export interface GlobalStoreCounters {
  /** 1 while the last call failed or the connection is not ready; 0 when Redis answers. */
  degraded: number;
  /** Times the store went from healthy to degraded. */
  degradedTransitions: number;
  /** Calls sent to Redis (each one round trip). */
  roundTrips: number;
  /** Calls that failed: timeouts, connection errors, script errors. */
  errors: number;
  /** Of those, calls that ran past commandTimeoutMs. */
  timeouts: number;
  /** Calls not sent because the connection was not ready (decided locally at once). */
  skippedWhileDown: number;
  /** Connections that became ready (the first one included). */
  connects: number;
  /** SCRIPT LOADs sent (once per script per connection). */
  scriptLoads: number;
  /** EVALs sent because Redis answered NOSCRIPT. */
  noscriptFallbacks: number;
}

export class GlobalStore {
  readonly options: ResolvedGlobalStoreOptions;
  readonly counters: GlobalStoreCounters = {
    degraded: 1,
    degradedTransitions: 0,
    roundTrips: 0,
    errors: 0,
    timeouts: 0,
    skippedWhileDown: 0,
    connects: 0,
    scriptLoads: 0,
    noscriptFallbacks: 0,
  };
  readonly #redis: Redis;
  /** Scripts known loaded on the current connection, by sha. */
  #loaded = new Set<string>();
  #closed = false;
  /**
   * After a failed call, calls are not sent until this time (performance.now() ms): a hung Redis
   * that keeps its connection open would otherwise cost every check the whole command timeout.
   * The pause doubles per consecutive failure from reconnectMinMs up to reconnectMaxMs.
   */
  #pausedUntilMs = 0;
  #consecutiveFailures = 0;

  constructor(input: unknown, path = 'global') {
    this.options = resolveGlobalStoreOptions(input, path);
    const o = this.options;
    this.#redis = new Redis(o.url, {
      lazyConnect: true,
      commandTimeout: o.commandTimeoutMs,
      connectTimeout: o.connectTimeoutMs,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResubscribe: false,
      retryStrategy: (attempt: number) =>
        this.#closed ? null : Math.min(o.reconnectMaxMs, o.reconnectMinMs * 2 ** Math.min(attempt - 1, 20)),
    });
    this.#redis.on('ready', () => {
      this.counters.connects++;
      this.#loaded = new Set();
      // A fresh connection is worth trying at once.
      this.#pausedUntilMs = 0;
    });
    this.#redis.on('close', () => this.#markDegraded());
    // Errors surface through the failed calls; without a listener ioredis would log each one.
    this.#redis.on('error', () => {});
  }

  /** Connect now (optional: the first call connects); resolves when ready or rejects. */
  async connect(): Promise<void> {
    if (this.#redis.status === 'wait') await this.#redis.connect();
  }

  get ready(): boolean {
    return this.#redis.status === 'ready';
  }

  /** How long until Redis is tried again, as a retry hint while down (at least reconnectMinMs). */
  get retryHintMs(): number {
    return Math.max(this.options.reconnectMinMs, Math.ceil(this.#pausedUntilMs - performance.now()));
  }

  /** Whether a call now would be sent (false while disconnected: decide locally at once). */
  available(): boolean {
    if (this.#closed) return false;
    if (this.#redis.status === 'wait') {
      this.#redis.connect().catch(() => {});
      return false;
    }
    if (this.#redis.status !== 'ready' || performance.now() < this.#pausedUntilMs) {
      this.counters.skippedWhileDown++;
      this.#markDegraded();
      return false;
    }
    return true;
  }

  /** Run a script by sha (loading it once per connection); throws on any failure or timeout. */
  async evalScript(
    script: Script,
    keys: readonly string[],
    args: readonly (string | number)[],
  ): Promise<unknown> {
    try {
      if (!this.#loaded.has(script.sha)) {
        this.counters.roundTrips++;
        this.counters.scriptLoads++;
        await this.#redis.script('LOAD', script.source);
        this.#loaded.add(script.sha);
      }
      this.counters.roundTrips++;
      let result: unknown;
      try {
        result = await this.#redis.evalsha(script.sha, keys.length, ...keys, ...args);
      } catch (err) {
        if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
        this.counters.noscriptFallbacks++;
        this.counters.roundTrips++;
        result = await this.#redis.eval(script.source, keys.length, ...keys, ...args);
      }
      this.#markHealthy();
      return result;
    } catch (err) {
      this.#failed(err);
      throw err;
    }
  }

  /** A plain command (DEL, TIME…), bounded and counted like a script call. */
  async command(name: string, ...args: (string | number)[]): Promise<unknown> {
    try {
      this.counters.roundTrips++;
      const result = await this.#redis.call(name, ...args);
      this.#markHealthy();
      return result;
    } catch (err) {
      this.#failed(err);
      throw err;
    }
  }

  /** Redis's clock in µs (the time every script decides with). */
  async serverTimeUs(): Promise<number> {
    const [s, us] = (await this.command('TIME')) as [string, string];
    return Number(s) * 1_000_000 + Number(us);
  }

  key(name: string): string {
    return this.options.keyPrefix + name;
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#markDegraded();
    this.#redis.disconnect(false);
  }

  #markHealthy(): void {
    this.counters.degraded = 0;
    this.#consecutiveFailures = 0;
    this.#pausedUntilMs = 0;
  }

  #failed(err: unknown): void {
    this.counters.errors++;
    if (err instanceof Error && /timed out/i.test(err.message)) this.counters.timeouts++;
    const o = this.options;
    const pause = Math.min(o.reconnectMaxMs, o.reconnectMinMs * 2 ** Math.min(this.#consecutiveFailures, 20));
    this.#consecutiveFailures++;
    this.#pausedUntilMs = performance.now() + pause;
    this.#markDegraded();
  }

  #markDegraded(): void {
    if (this.counters.degraded === 0) this.counters.degradedTransitions++;
    this.counters.degraded = 1;
  }
}

export interface Script {
  readonly source: string;
  readonly sha: string;
}

export function script(source: string): Script {
  return Object.freeze({ source, sha: createHash('sha1').update(source).digest('hex') });
}
