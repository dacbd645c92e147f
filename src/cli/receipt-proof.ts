/**
 * `thunderpac receipt prove` and `receipt verify-proof` (src/store/merkle/proof.ts documents).
 *
 *   thunderpac receipt prove <id> [--store DIR]                  receipt + inclusion proof + signed tree head
 *   thunderpac receipt prove --consistency OLD[:NEW] [--store DIR]  consistency proof between two recorded heads
 *   thunderpac receipt verify-proof FILE|- [--public-key PEM-FILE|ed25519:HEX] [--allow-unsigned] [--json]
 *
 * verify-proof needs no store: exit 0 when the proof holds, 1 when it does not (the field that
 * fails and why on stderr, or in the JSON report), 2 for a file that cannot be read or parsed.
 */

import { readFileSync } from 'node:fs';
import { ProofError } from '../store/merkle/errors.js';
import { verifyProofDocument } from '../store/merkle/proof.js';
import { publicKeyFrom } from '../store/signing.js';
import type { Store } from '../store/store.js';
import { UsageError } from './io.js';
import { CliPathError, pathError } from './paths.js';

export const RECEIPT_PROOF_FLAGS = {
  consistency: { type: 'string' },
  'public-key': { type: 'string' },
  'allow-unsigned': { type: 'boolean', default: false },
} as const;

function write(json: unknown): void {
  process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
}

function size(text: string, what: string): number {
  if (!/^\d{1,15}$/.test(text))
    throw new UsageError(`--consistency ${what} size '${text}' is not a tree size`);
  return Number(text);
}

export function proveCommand(store: Store, id: string | undefined, consistency: string | undefined): number {
  if (consistency !== undefined) {
    if (id !== undefined)
      throw new UsageError('receipt prove takes a receipt id or --consistency OLD[:NEW], not both');
    const [from, to] = consistency.split(':');
    write(
      store.ledger.proveConsistency(size(from ?? '', 'old'), to === undefined ? undefined : size(to, 'new')),
    );
    return 0;
  }
  if (!id) throw new UsageError('receipt prove needs a receipt id (or --consistency OLD[:NEW])');
  const receipt = store.getReceipt(id);
  write(store.ledger.prove(id, receipt));
  return 0;
}

function readText(file: string, what: string): string {
  try {
    return file === '-' ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8');
  } catch (err) {
    throw pathError(what, file, err);
  }
}

export function verifyProofCommand(
  file: string | undefined,
  values: {
    'public-key'?: string | undefined;
    'allow-unsigned'?: boolean | undefined;
    json?: boolean | undefined;
  },
): number {
  if (!file) throw new UsageError('receipt verify-proof needs a proof file (or - for stdin)');
  const text = readText(file, 'proof file');
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new CliPathError('proof file', `is not JSON (${(err as Error).message})`, file);
  }
  const keyArg = values['public-key'];
  const publicKey =
    keyArg === undefined
      ? undefined
      : publicKeyFrom(
          keyArg.startsWith('ed25519:') ? keyArg : readText(keyArg, 'public key file'),
          '--public-key',
        );
  try {
    const report = verifyProofDocument(doc, {
      ...(publicKey && { publicKey }),
      allowUnsigned: values['allow-unsigned'] ?? false,
    });
    if (values.json) write(report);
    else {
      const what =
        report.kind === 'inclusion'
          ? `receipt ${report.receiptId} is leaf ${report.leafIndex} of the tree of ${report.treeSize}`
          : `the tree of ${report.oldTreeSize} is a prefix of the tree of ${report.treeSize}`;
      const how =
        report.signature === 'pinned'
          ? `signed by key ${report.keyId}`
          : report.signature === 'embedded'
            ? `signed by key ${report.keyId} (the key the document carries: pass --public-key to pin it)`
            : 'UNSIGNED tree head (hashes only)';
      process.stdout.write(`ok: ${what}, ${how}\n`);
    }
    return 0;
  } catch (err) {
    if (!(err instanceof ProofError)) throw err;
    if (values.json) write({ ok: false, field: err.field, error: err.message });
    else process.stderr.write(`thunderpac: proof does not verify: ${err.message}\n`);
    return 1;
  }
}
