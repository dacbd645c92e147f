/**
 * Uploaded builds and their owners.
 *
 * Builds live in the store (content-addressed; `tp.store.putBuild`). Owners live beside it in
 * `<store>/daemon/build-owners.jsonl`: one `{"build":…,"owner":…}` line per (build, uploader),
 * appended as it happens and read back at start. A build is content-addressed, so two actors
 * who upload the same bytes get the same id and are both its owners (each could run it anyway:
 * each had the bytes). The file is written only by the daemon, which holds the store's writer
 * lock, so there is one writer.
 *
 * A bounded LRU keeps decoded builds in memory so an execution does not re-read and re-hash
 * its program from disk; the executor's prepared-program cache then hits by build id.
 */

import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import type { Build } from '../runtime/build.js';
import { NotFoundError } from '../runtime/errors.js';
import type { Thunderpac } from '../thunderpac.js';
import type { Actor, BuildRecord, BuildRegistry } from './context.js';

/** A build the daemon does not have: HTTP 404. */
export class BuildNotFoundError extends NotFoundError {
  readonly statusCode = 404;
}

export class DaemonBuilds implements BuildRegistry {
  readonly #tp: Thunderpac;
  readonly #file: string;
  readonly #owners = new Map<string, string[]>();
  readonly #cache = new Map<string, BuildRecord>();
  readonly #maxCached: number;

  constructor(tp: Thunderpac, storeDir: string, maxCached: number, log: FastifyBaseLogger) {
    this.#tp = tp;
    this.#maxCached = maxCached;
    const dir = join(storeDir, 'daemon');
    mkdirSync(dir, { recursive: true, mode: 0o750 });
    this.#file = join(dir, 'build-owners.jsonl');
    if (existsSync(this.#file)) {
      const lines = readFileSync(this.#file, 'utf8').split('\n');
      for (const [i, line] of lines.entries()) {
        if (!line) continue;
        try {
          const { build, owner } = JSON.parse(line) as { build?: unknown; owner?: unknown };
          if (typeof build !== 'string' || typeof owner !== 'string')
            throw new Error('missing build or owner');
          this.#addOwner(build, owner);
        } catch (err) {
          // A torn last line (killed mid-append) loses one ownership record, not the daemon.
          log.warn(
            { file: this.#file, line: i + 1, err: (err as Error).message },
            'skipping a bad build-owner line',
          );
        }
      }
    }
  }

  #addOwner(build: string, owner: string): boolean {
    const owners = this.#owners.get(build);
    if (!owners) {
      this.#owners.set(build, [owner]);
      return true;
    }
    if (owners.includes(owner)) return false;
    owners.push(owner);
    return true;
  }

  put(build: Build, owner: Actor): BuildRecord {
    const store = this.#tp.store;
    if (!store) throw new Error('the daemon runs with a store');
    store.putBuild(build);
    if (this.#addOwner(build.id, owner.id)) {
      appendFileSync(
        this.#file,
        `${JSON.stringify({ build: build.id, owner: owner.id, at: new Date().toISOString() })}\n`,
      );
    }
    const record: BuildRecord = { build, owners: this.#owners.get(build.id) ?? [owner.id] };
    this.#remember(build.id, record);
    return record;
  }

  get(id: string): BuildRecord {
    const hit = this.#cache.get(id);
    if (hit) {
      this.#cache.delete(id); // most recently used goes last
      this.#cache.set(id, hit);
      return hit;
    }
    const owners = this.#owners.get(id);
    // Only builds uploaded through the daemon are served: ownership is what the policy decides on.
    if (!owners || !this.#tp.store) throw new BuildNotFoundError('build', id);
    let build: Build;
    try {
      build = this.#tp.store.getBuild(id);
    } catch (err) {
      if (err instanceof NotFoundError) throw new BuildNotFoundError('build', id);
      throw err;
    }
    const record: BuildRecord = { build, owners };
    this.#remember(id, record);
    return record;
  }

  #remember(id: string, record: BuildRecord): void {
    this.#cache.delete(id);
    this.#cache.set(id, record);
    if (this.#cache.size > this.#maxCached) {
      const oldest = this.#cache.keys().next().value;
      if (oldest !== undefined) this.#cache.delete(oldest);
    }
  }
}
