/**
 * `thunderpac store stat|gc|compact|snapshot|export|import|fsck` (issue #13), in process.
 *
 *   store stat [--json]
 *   store gc [--dry-run] [--keep-days N] [--keep-receipts N] [--max-bytes N] [--grace-ms N] [--json]
 *   store compact [--min-dead-ratio R] [--json]
 *   store snapshot [create] [--label L] | snapshot list | snapshot drop ID   [--json]
 *   store export OUT (--build ID | --receipt ID)... [--domain NAME] [--json]
 *   store import FILE [--check] [--json]
 *   store fsck [--json]                     exit 0 clean, 1 problems found
 *
 * Reading commands (stat, snapshot list, fsck, export, import --check) open the store read-only
 * and work beside a daemon; writing ones (gc, compact, snapshot create/drop, import) take the
 * store's writer lock, so with a daemon running they answer STORE_LOCKED naming its pid: run
 * them through the daemon instead (`--socket PATH` or $THUNDERPAC_SOCKET: the daemon's
 * /v1/store routes, routes/store.ts; `compact` and `import --check` are local only).
 * Exit codes as everywhere: 0 done, 1 fsck found problems, 2 a bad command line or input.
 */

import { renameSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { SnapshotInfo } from '../store/artifacts/snapshots.js';
import type { FsckReport } from '../store/fsck.js';
import type { GcReport, StoreStat } from '../store/gc.js';
import type { Store } from '../store/store.js';
import { type DaemonClient, clientSocket, refuseLocalFlags, segment, withDaemon } from './client.js';
import { parseIntFlag, storeDir, UsageError } from './io.js';
import { readUserFile } from './paths.js';

const FLAGS = {
  json: { type: 'boolean', default: false },
  store: { type: 'string' },
  'dry-run': { type: 'boolean', default: false },
  'keep-days': { type: 'string' },
  'keep-receipts': { type: 'string' },
  'max-bytes': { type: 'string' },
  'grace-ms': { type: 'string' },
  'min-dead-ratio': { type: 'string' },
  label: { type: 'string' },
  build: { type: 'string', multiple: true },
  receipt: { type: 'string', multiple: true },
  domain: { type: 'string' },
  check: { type: 'boolean', default: false },
  socket: { type: 'string' },
} as const;

const ACTIONS = ['stat', 'gc', 'compact', 'snapshot', 'export', 'import', 'fsck'] as const;

function ratioFlag(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d*\.?\d+$/.test(value) || !(n >= 0 && n <= 1))
    throw new UsageError(`--${name} expects a number from 0 to 1, got '${value}'`);
  return n;
}

function daysFlag(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d*\.?\d+$/.test(value) || !Number.isFinite(n))
    throw new UsageError(`--keep-days expects a non-negative number, got '${value}'`);
  return n;
}

function print(json: boolean, value: unknown, text: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${text()}\n`);
}

function mib(bytes: number): string {
  return bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(1)} MiB` : `${bytes} B`;
}

export async function storeCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: FLAGS });
  const [action, ...rest] = positionals;
  if (!(ACTIONS as readonly string[]).includes(action ?? ''))
    throw new UsageError(`unknown store action '${action ?? ''}' (${ACTIONS.join(', ')})`);
  const sub = rest[0];
  const socket = clientSocket(values.socket);
  if (socket !== undefined) {
    refuseLocalFlags(values, ['store', 'domain']);
    return withDaemon(socket, (client) => throughDaemon(client, action!, rest, values));
  }
  const writes =
    action === 'gc' ||
    action === 'compact' ||
    (action === 'import' && !values.check) ||
    (action === 'snapshot' && sub !== 'list');
  const { Store } = await import('../store/store.js');
  const store: Store = new Store(storeDir(values.store, { create: writes }), {
    readOnly: !writes,
    ...(values.domain !== undefined && { domain: values.domain }),
  });
  try {
    switch (action) {
      case 'stat': {
        const s = store.stat();
        print(values.json, s, () =>
          [
            `artifacts ${s.artifacts}`,
            `receipts  ${s.receipts}`,
            `snapshots ${s.snapshots}`,
            `segments  ${s.segments} (+ ${s.largeBlocks} large blocks)`,
            `on disk   ${mib(s.bytes)} in ${s.files} files`,
          ].join('\n'),
        );
        return 0;
      }
      case 'gc': {
        const retention = {
          ...(values['keep-days'] !== undefined && { keepDays: daysFlag(values['keep-days']) }),
          ...(values['keep-receipts'] !== undefined && {
            keepReceipts: parseIntFlag('keep-receipts', values['keep-receipts']),
          }),
          ...(values['max-bytes'] !== undefined && {
            maxBytes: parseIntFlag('max-bytes', values['max-bytes']),
          }),
        };
        const graceMs = parseIntFlag('grace-ms', values['grace-ms']);
        const r = store.gc({
          retention,
          dryRun: values['dry-run'],
          ...(graceMs !== undefined && { graceMs }),
          ...(values['min-dead-ratio'] !== undefined && {
            minDeadRatio: ratioFlag('min-dead-ratio', values['min-dead-ratio']),
          }),
        });
        print(values.json, r, () =>
          [
            `${r.dryRun ? 'would reclaim' : 'reclaimed'} ${r.reclaimed.artifacts} artifacts (${mib(r.reclaimed.bytes)})`,
            `receipts: ${r.receipts.kept} kept, ${r.receipts.expired} expired of ${r.receipts.total}`,
            `freed ${mib(r.freed.bytes)} in ${r.freed.files} files (${r.freed.segments} segments, ${r.freed.largeBlocks} large blocks)`,
            `compacted ${r.compaction.segmentsCompacted} segments, moved ${r.compaction.blocksMoved} blocks`,
          ].join('\n'),
        );
        return 0;
      }
      case 'compact': {
        const r = store.compact({ minDeadRatio: ratioFlag('min-dead-ratio', values['min-dead-ratio']) ?? 0 });
        print(
          values.json,
          r,
          () =>
            `compacted ${r.segmentsCompacted} segments: moved ${r.blocksMoved} blocks, freed ${mib(r.bytesFreed)} in ${r.filesFreed} files`,
        );
        return 0;
      }
      case 'snapshot': {
        if (sub === undefined || sub === 'create') {
          const s = store.snapshot(values.label);
          print(
            values.json,
            s,
            () => `${s.id}  ${s.artifacts} artifacts, ${mib(s.bytes)}${s.label ? `  ${s.label}` : ''}`,
          );
          return 0;
        }
        if (sub === 'list') {
          const list = store.snapshots();
          print(values.json, list, () =>
            list.map((s) => `${s.id}  ${s.createdAt}  ${s.artifacts} artifacts  ${s.label}`).join('\n'),
          );
          return 0;
        }
        if (sub === 'drop') {
          const id = rest[1];
          if (!id) throw new UsageError('store snapshot drop needs a snapshot id');
          store.dropSnapshot(id);
          print(values.json, { dropped: id }, () => `dropped ${id}`);
          return 0;
        }
        throw new UsageError(`unknown snapshot action '${sub}' (create, list, drop)`);
      }
      case 'export': {
        const out = rest[0];
        if (!out) throw new UsageError('store export needs an output file: store export OUT --build ID');
        const builds = values.build ?? [];
        const receipts = values.receipt ?? [];
        if (builds.length + receipts.length === 0)
          throw new UsageError('store export needs --build ID or --receipt ID (each may repeat)');
        const r = store.exportBundle(out, { builds, receipts });
        print(
          values.json,
          r,
          () =>
            `${out}: ${r.artifacts} artifacts (${r.builds} builds, ${r.receipts} receipts), ${mib(r.bytes)}${r.skipped.length ? `; ${r.skipped.length} outputs no longer in the store left out` : ''}`,
        );
        return 0;
      }
      case 'import': {
        const file = rest[0];
        if (!file) throw new UsageError('store import needs a bundle file');
        if (values.check) {
          const m = store.checkBundle(file);
          print(
            values.json,
            { ok: true, source: m.source, artifacts: m.artifacts.length },
            () => `${file}: intact, ${m.artifacts.length} artifacts from domain '${m.source.domain}'`,
          );
          return 0;
        }
        const r = store.importBundle(file);
        print(
          values.json,
          r,
          () =>
            `${file}: ${r.added} artifacts added (${mib(r.bytes)}), ${r.present} already here, ${r.receipts} receipts, from domain '${r.source.domain}'`,
        );
        return 0;
      }
      case 'fsck': {
        const r = store.fsck();
        print(values.json, r, () => {
          const c = r.checked;
          const lines = [
            `receipts ${c.receipts} (checkpoint: ${r.receiptCheckpoint}), segments ${c.segments} (${c.blocks} blocks), large blocks ${c.largeBlocks}, artifacts ${c.artifacts}, snapshots ${c.snapshots}, tree heads ${c.treeHeads}, lineage edges ${c.lineageEdges}`,
          ];
          for (const p of r.problems) {
            const where = [p.path, p.offset !== undefined ? `byte ${p.offset}` : undefined, p.key]
              .filter(Boolean)
              .join(' ');
            lines.push(`${p.part}: ${p.code}: ${p.message}${where ? ` [${where}]` : ''}`);
          }
          if (r.truncated) lines.push('(more problems not shown)');
          lines.push(r.ok ? 'clean' : `${r.problems.length} problems`);
          return lines.join('\n');
        });
        return r.ok ? 0 : 1;
      }
    }
    return 2;
  } finally {
    store.close();
  }
}

type Flags = ReturnType<
  typeof parseArgs<{ args: string[]; allowPositionals: true; options: typeof FLAGS }>
>['values'];

/** The same actions through the daemon's /v1/store routes, printed as in process. */
async function throughDaemon(
  client: DaemonClient,
  action: string,
  rest: string[],
  values: Flags,
): Promise<number> {
  const sub = rest[0];
  switch (action) {
    case 'stat': {
      const { body: s } = await client.request<StoreStat>('GET', '/v1/store');
      print(
        values.json,
        s,
        () =>
          `artifacts ${s.artifacts}\nreceipts  ${s.receipts}\non disk   ${mib(s.bytes)} in ${s.files} files`,
      );
      return 0;
    }
    case 'fsck': {
      const { body: r } = await client.request<FsckReport>('GET', '/v1/store/fsck');
      print(values.json, r, () =>
        [
          ...r.problems.map((p) => `${p.part}: ${p.code}: ${p.message}`),
          r.ok ? 'clean' : `${r.problems.length} problems`,
        ].join('\n'),
      );
      return r.ok ? 0 : 1;
    }
    case 'gc': {
      const retention = {
        ...(values['keep-days'] !== undefined && { keepDays: daysFlag(values['keep-days']) }),
        ...(values['keep-receipts'] !== undefined && {
          keepReceipts: parseIntFlag('keep-receipts', values['keep-receipts']),
        }),
        ...(values['max-bytes'] !== undefined && {
          maxBytes: parseIntFlag('max-bytes', values['max-bytes']),
        }),
      };
      const graceMs = parseIntFlag('grace-ms', values['grace-ms']);
      const { body: r } = await client.request<GcReport>('POST', '/v1/store/gc', {
        body: { retention, dryRun: values['dry-run'], ...(graceMs !== undefined && { graceMs }) },
      });
      print(
        values.json,
        r,
        () =>
          `${r.dryRun ? 'would reclaim' : 'reclaimed'} ${r.reclaimed.artifacts} artifacts (${mib(r.reclaimed.bytes)}); freed ${mib(r.freed.bytes)}`,
      );
      return 0;
    }
    case 'snapshot': {
      if (sub === undefined || sub === 'create') {
        const { body: s } = await client.request<SnapshotInfo>('POST', '/v1/store/snapshots', {
          body: values.label === undefined ? {} : { label: values.label },
        });
        print(
          values.json,
          s,
          () => `${s.id}  ${s.artifacts} artifacts, ${mib(s.bytes)}${s.label ? `  ${s.label}` : ''}`,
        );
        return 0;
      }
      if (sub === 'list') {
        const { body: list } = await client.request<SnapshotInfo[]>('GET', '/v1/store/snapshots');
        print(values.json, list, () =>
          list.map((s) => `${s.id}  ${s.createdAt}  ${s.artifacts} artifacts  ${s.label}`).join('\n'),
        );
        return 0;
      }
      if (sub === 'drop') {
        const id = rest[1];
        if (!id) throw new UsageError('store snapshot drop needs a snapshot id');
        await client.request('DELETE', `/v1/store/snapshots/${segment(id)}`);
        print(values.json, { dropped: id }, () => `dropped ${id}`);
        return 0;
      }
      throw new UsageError(`unknown snapshot action '${sub}' (create, list, drop)`);
    }
    case 'export': {
      const out = rest[0];
      if (!out) throw new UsageError('store export needs an output file: store export OUT --build ID');
      const builds = values.build ?? [];
      const receipts = values.receipt ?? [];
      if (builds.length + receipts.length === 0)
        throw new UsageError('store export needs --build ID or --receipt ID (each may repeat)');
      const bytes = await client.requestBytes('POST', '/v1/store/export', { body: { builds, receipts } });
      const tmp = `${out}.tmp-${process.pid}`;
      writeFileSync(tmp, bytes, { flag: 'wx' });
      renameSync(tmp, out);
      print(values.json, { path: out, bytes: bytes.length }, () => `${out}: ${mib(bytes.length)}`);
      return 0;
    }
    case 'import': {
      const file = rest[0];
      if (!file) throw new UsageError('store import needs a bundle file');
      if (values.check) throw new UsageError('store import --check runs in process: drop --socket');
      const { body: r } = await client.request<{
        added: number;
        present: number;
        receipts: number;
        bytes: number;
        source: { domain: string };
      }>('POST', '/v1/store/import', { body: new Uint8Array(readUserFile(file, 'FILE')) });
      print(
        values.json,
        r,
        () =>
          `${file}: ${r.added} artifacts added (${mib(r.bytes)}), ${r.present} already here, ${r.receipts} receipts, from domain '${r.source.domain}'`,
      );
      return 0;
    }
    default:
      throw new UsageError(`store ${action} runs in process only: drop --socket`);
  }
}
