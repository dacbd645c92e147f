/**
 * Issue #10, defect 5: two processes writing one store raced on the hash chain and destroyed it
 * (both died with IntegrityError, or both exited 0 and the store reopened with 0 receipts). Now a
 * store has one writer at a time, held by flock: a second writer process gets STORE_LOCKED naming
 * the holder, writers that retry are serialized, a killed writer leaves no stale lock, and no
 * acknowledged receipt is ever lost. Real child processes, real kernel locks.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Store } from '../src/store/store.js';
import { StoreLockedError } from '../src/store/errors.js';

const VITE_NODE = join(process.cwd(), 'node_modules', '.bin', 'vite-node');
const WRITER = join(process.cwd(), 'test', 'helpers', 'receipt-log-writer.ts');

interface Writer {
  readonly child: ChildProcess;
  /** Resolves with the exit code and everything printed. */
  readonly done: Promise<{ code: number | null; signal: NodeJS.Signals | null; lines: string[] }>;
  /** Resolves when the writer printed `line`. */
  printed(line: string): Promise<void>;
  readonly lines: string[];
}

function startWriter(dir: string, tag: string, count: number, mode: string, sync = 'batch'): Writer {
  const child = spawn(VITE_NODE, [WRITER, '--', dir, tag, String(count), mode, sync], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const waiters: { line: string; resolve: () => void }[] = [];
  let partial = '';
  let stderr = '';
  child.stderr!.on('data', (chunk) => {
    stderr += String(chunk);
  });
  child.stdout!.on('data', (chunk) => {
    const parts = (partial + String(chunk)).split('\n');
    partial = parts.pop()!;
    for (const line of parts) {
      lines.push(line);
      for (const w of waiters.filter((w) => w.line === line)) w.resolve();
    }
  });
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; lines: string[] }>(
    (resolve) => {
      child.on('close', (code, signal) => {
        if (code !== 0 && code !== 3 && signal === null) process.stderr.write(stderr);
        resolve({ code, signal, lines });
      });
    },
  );
  return {
    child,
    done,
    lines,
    printed: (line) =>
      lines.includes(line) ? Promise.resolve() : new Promise((resolve) => waiters.push({ line, resolve })),
  };
}

function acked(lines: readonly string[]): string[] {
  return lines.filter((l) => l.startsWith('ack ')).map((l) => l.slice(4));
}

function storedIds(dir: string): string[] {
  const store = new Store(dir, { readOnly: true });
  try {
    return [...store.receipts.ids()];
  } finally {
    store.close();
  }
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tp-writers-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('one writer per store, across processes', () => {
  it('a second writer process gets STORE_LOCKED naming the holder; the first loses nothing', async () => {
    const first = startWriter(dir, 'first', 2000, 'hold');
    await first.printed('ready');
    const second = startWriter(dir, 'second', 2000, 'once');
    const refused = await second.done;
    expect(refused.code).toBe(3);
    expect(refused.lines).toEqual([`locked ${first.child.pid}`]);
    // A reader works beside the writer.
    expect(storedIds(dir)).toEqual([]);
    first.child.stdin!.end('go\n');
    const wrote = await first.done;
    expect(wrote.code).toBe(0);
    expect(acked(wrote.lines)).toHaveLength(2000);
    expect(storedIds(dir)).toEqual(acked(wrote.lines));
  }, 60_000);

  it('writers started together are serialized and every acknowledged receipt is kept', async () => {
    const writers = ['a', 'b', 'c'].map((tag) => startWriter(dir, tag, 1000, 'retry'));
    const results = await Promise.all(writers.map((w) => w.done));
    for (const r of results) expect(r.code).toBe(0);
    const ids = storedIds(dir);
    expect(ids).toHaveLength(3000);
    // Each writer's receipts are one contiguous run: one writer at a time.
    for (const r of results) {
      const mine = acked(r.lines);
      const start = ids.indexOf(mine[0]!);
      expect(ids.slice(start, start + mine.length)).toEqual(mine);
    }
  }, 60_000);

  it('a writer killed with SIGKILL leaves no stale lock and its synced receipts intact', async () => {
    const victim = startWriter(dir, 'victim', 1_000_000, 'retry', 'always');
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if (acked(victim.lines).length >= 200) {
          clearInterval(poll);
          resolve();
        }
      }, 5);
    });
    expect(() => new Store(dir)).toThrow(StoreLockedError);
    victim.child.kill('SIGKILL');
    const killed = await victim.done;
    expect(killed.signal).toBe('SIGKILL');
    const store = new Store(dir); // the kernel dropped the lock with the process
    const ids = store.receipts.ids();
    store.close();
    const acknowledged = acked(killed.lines);
    expect(ids.slice(0, acknowledged.length)).toEqual(acknowledged);
  }, 60_000);
});
