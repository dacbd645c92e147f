/**
 * `run <file> --export NAME --input FILE` in client mode: the program is uploaded as a build
 * (`POST /v1/builds`, kind by extension as in-process, name = the file's base name, so the
 * build id is the one an in-process run computes), then run (`POST /v1/executions`) and printed
 * as the in-process run prints it. A P4 source is compiled by the daemon from its text alone:
 * `#include`s next to the file are not sent.
 */

import { basename, extname } from 'node:path';
import type { Receipt } from '../runtime/receipt.js';
import type { Output } from '../runtime/types.js';
import { DEFAULT_TIMEOUT_MS, type DaemonClient, DaemonClientError, EXIT_INTERNAL } from './client.js';
import { outputJson, printOutput, printReceipt, UsageError } from './io.js';
import { readUserFile } from './paths.js';

const KIND_OF_EXTENSION: Readonly<Record<string, 'wasm' | 'ebpf' | 'p4'>> = {
  '.wasm': 'wasm',
  '.o': 'ebpf',
  '.p4': 'p4',
};

export interface RunThroughDaemon {
  readonly file: string;
  readonly entry: string;
  readonly input: Uint8Array;
  readonly timeoutMs?: number | undefined;
  readonly memoryMb?: number | undefined;
  readonly ingressPort?: number | undefined;
  readonly json: boolean;
}

/** The program file's build kind, checked before anything is read or sent. */
export function kindOfProgram(path: string): 'wasm' | 'ebpf' | 'p4' {
  const kind = KIND_OF_EXTENSION[extname(path)];
  if (!kind) {
    throw new UsageError(
      `${path}: unknown program type '${extname(path)}' (expected .wasm, a BPF .o or .p4)`,
    );
  }
  return kind;
}

interface ExecutionAnswer {
  readonly status: 'completed' | 'failed';
  readonly output: OutputJson | null;
  readonly receipt: Receipt;
}

type OutputJson =
  | { kind: 'bytes'; base64: string }
  | {
      kind: 'packet';
      verdict: string;
      retval: number;
      packets: { port: number; base64: string }[];
      digests?: NonNullable<Extract<Output, { kind: 'packet' }>['digests']>;
    };

function bytesOf(base64: string): Uint8Array {
  const b = Buffer.from(base64, 'base64');
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** The daemon's output JSON (bytes as base64) as the runtime Output the printers take. */
function outputOf(json: OutputJson | null): Output | null {
  if (json === null) return null;
  switch (json.kind) {
    case 'bytes':
      return { kind: 'bytes', bytes: bytesOf(json.base64) };
    case 'packet':
      return {
        kind: 'packet',
        verdict: json.verdict,
        retval: json.retval,
        packets: json.packets.map((p) => ({ port: p.port, bytes: bytesOf(p.base64) })),
        ...(json.digests && { digests: json.digests }),
      };
    default:
      throw new DaemonClientError(
        `the daemon answered an output of kind '${(json as { kind?: unknown }).kind}' this command cannot print`,
        EXIT_INTERNAL,
      );
  }
}

/** Exit 0 when the execution completed, 1 when it ran and failed (its receipt says why). */
export async function runThroughDaemon(client: DaemonClient, run: RunThroughDaemon): Promise<number> {
  const kind = kindOfProgram(run.file);
  const program = readUserFile(run.file, 'program');
  const uploaded = await client.request<{ id: string }>('POST', '/v1/builds', {
    body: { kind, name: basename(run.file), base64: program.toString('base64') },
  });
  const limits = {
    ...(run.timeoutMs !== undefined && { timeoutMs: run.timeoutMs }),
    ...(run.memoryMb !== undefined && { memoryMb: run.memoryMb }),
  };
  const base64 = Buffer.from(run.input.buffer, run.input.byteOffset, run.input.byteLength).toString('base64');
  const input =
    kind === 'wasm'
      ? { kind: 'bytes', base64 }
      : { kind: 'packet', base64, ...(run.ingressPort !== undefined && { ingressPort: run.ingressPort }) };
  const { body } = await client.request<ExecutionAnswer>('POST', '/v1/executions', {
    body: {
      build: uploaded.body.id,
      entry: run.entry,
      input,
      ...(Object.keys(limits).length > 0 && { limits }),
    },
    // The daemon may queue the run; the execution's own limit bounds it once it starts.
    timeoutMs: DEFAULT_TIMEOUT_MS + (run.timeoutMs ?? 0),
  });
  const output = outputOf(body.output);
  if (run.json) {
    process.stdout.write(
      `${JSON.stringify({ output: outputJson(output), receipt: body.receipt }, null, 2)}\n`,
    );
  } else {
    printOutput(output);
    printReceipt(body.receipt);
  }
  return body.status === 'completed' ? 0 : 1;
}
