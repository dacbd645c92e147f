/** Shared CLI plumbing: where the store lives, how payloads and receipts are printed. */

import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Receipt } from '../runtime/receipt.js';
import type { Output } from '../runtime/types.js';
import { readUserFile, usableDirectory } from './paths.js';

/** Raised for bad command lines; main() prints it with the usage and exits 2. */
export class UsageError extends Error {}

/**
 * The store directory (--store, else $THUNDERPAC_STORE, else ~/.thunderpac/store), checked to
 * be a directory or creatable as one before the store opens it. Commands that only read the
 * store pass `create: false` and leave a missing store to the store itself.
 */
export function storeDir(flag: string | undefined, options: { create: boolean } = { create: true }): string {
  const env = process.env.THUNDERPAC_STORE;
  const [dir, name] =
    flag !== undefined
      ? [flag, '--store']
      : env !== undefined
        ? [env, '$THUNDERPAC_STORE']
        : [join(homedir(), '.thunderpac', 'store'), 'the default store'];
  return usableDirectory(dir, name, options.create);
}

/** `--input FILE` (or `-` for stdin), bounded and never blocking on a FIFO. */
export function readInput(path: string): Buffer {
  return readUserFile(path, '--input');
}

/** Whether a `run` command line names a model (then models.ts's runModelCommand handles it). */
export function isModelRun(argv: readonly string[]): boolean {
  return argv.some((a) => a === '--model' || a.startsWith('--model='));
}

export function parseIntFlag(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new UsageError(`--${name} expects a non-negative integer, got '${value}'`);
  return Number(value);
}

const decoder = new TextDecoder('utf-8', { fatal: true });

function asText(bytes: Uint8Array): string | null {
  try {
    const text = decoder.decode(bytes);
    // Control characters other than whitespace mean this is binary data, not text.
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if ((c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) || c === 0x7f) return null;
    }
    return text;
  } catch {
    return null;
  }
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** A JSON-safe view of an output: bytes as hex, plus text when the bytes are UTF-8 text. */
export function outputJson(output: Output | null): unknown {
  if (!output) return null;
  switch (output.kind) {
    case 'bytes':
      return {
        kind: 'bytes',
        size: output.bytes.byteLength,
        hex: hex(output.bytes),
        text: asText(output.bytes),
      };
    case 'packet':
      return {
        kind: 'packet',
        verdict: output.verdict,
        retval: output.retval,
        packets: output.packets.map((p) => ({ port: p.port, size: p.bytes.byteLength, hex: hex(p.bytes) })),
        ...(output.digests && { digests: output.digests }),
      };
    case 'tensors': {
      const tensors: Record<string, unknown> = {};
      for (const [name, t] of Object.entries(output.tensors)) {
        tensors[name] = {
          dtype: t.dtype,
          shape: t.shape,
          data: Array.from(t.data as ArrayLike<number | bigint>, String),
        };
      }
      return { kind: 'tensors', tensors };
    }
  }
}

export function printOutput(output: Output | null): void {
  if (!output) return;
  const json = outputJson(output) as { kind: string; text?: string | null; hex?: string };
  if (output.kind === 'bytes') {
    process.stdout.write(
      `output (${output.bytes.byteLength} bytes): ${json.text !== null ? JSON.stringify(json.text) : `0x${json.hex}`}\n`,
    );
  } else {
    process.stdout.write(`output: ${JSON.stringify(json)}\n`);
  }
}

export function printReceipt(r: Receipt): void {
  const lines = [
    `receipt ${r.id}`,
    `  status     ${r.status}${r.error ? ` (${r.error.code}: ${r.error.message})` : ''}`,
    `  build      ${r.buildId} (${r.backend}, entry ${r.entry})`,
    `  input      ${r.input.hash ?? '(not hashed)'} ${r.input.size} B`,
    `  output     ${r.output ? `${r.output.hash} ${r.output.size} B` : '-'}`,
    `  started    ${r.startedAt}, ${(r.durationNs / 1000).toFixed(1)} µs, cpu ${r.resources.cpuUs ?? '-'} µs`,
    `  resources  peak memory ${r.resources.peakMemoryBytes ?? '-'} B, fuel ${r.resources.fuelUsed ?? '-'}, engine ${r.resources.engineNs ?? '-'} ns`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}
