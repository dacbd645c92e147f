/**
 * The `thunderpac` command.
 *
 *   thunderpac run <file.wasm> --export NAME --input FILE|- [--timeout-ms N] [--memory-mb N] [--json] [--store DIR]
 *   thunderpac receipt verify <receipt-id> [--json] [--store DIR]
 *   thunderpac receipt show <receipt-id> [--store DIR]
 *   thunderpac receipt list [--build ID] [--actor A] [--status S] [--since ISO] [--until ISO] [--limit N] [--json] [--store DIR]
 *   thunderpac run --model NAME[@VERSION] --input FILE.json ...   (src/cli/models.ts)
 *   thunderpac models list|verify ...                           (src/cli/models.ts)
 *   thunderpac p4 compile|stages|stf|run ...                     (src/cli/p4.ts)
 *   thunderpac xdp attach|detach|status|clean|test-run ...   (src/cli/xdp.ts)
 *   thunderpac map dump|lookup|update|delete ...             (src/cli/map.ts)
 *   thunderpac store stat|gc|compact|snapshot|export|import|fsck ...  (src/cli/store.ts)
 *
 * Exit codes: 0 success / match, 1 failed execution / mismatch, 2 bad command line or input
 * (a bad path, file or flag), 70 an internal error (a bug: one line, the stack with
 * THUNDERPAC_DEBUG=1). Client mode (--socket / $THUNDERPAC_SOCKET, src/cli/client.ts) keeps
 * them, and adds 75 for a daemon that is busy or draining (503).
 */

import { parseArgs } from 'node:util';
import { ThunderpacError } from '../runtime/errors.js';
import { clientSocket, DaemonClientError, refuseLocalFlags, withDaemon } from './client.js';
import { printVerifyReport, receiptThroughDaemon } from './client-receipts.js';
import { kindOfProgram, runThroughDaemon } from './client-run.js';
import {
  outputJson,
  parseIntFlag,
  printOutput,
  printReceipt,
  readInput,
  storeDir,
  isModelRun,
  UsageError,
} from './io.js';
import { CliJsonError } from './json.js';
import { listReceiptsCommand, RECEIPT_LIST_FLAGS } from './receipt-list.js';
import { RECEIPT_QUERY_FLAGS, receiptQueryCommand } from './receipt-query.js';
import { proveCommand, RECEIPT_PROOF_FLAGS, verifyProofCommand } from './receipt-proof.js';
import { CliPathError, pathError, userPathErrno } from './paths.js';

const USAGE = `usage:
  thunderpac run <file.wasm|file.o|file.p4> --export NAME --input FILE|- [--port N] [--timeout-ms N] [--memory-mb N] [--json] [--store DIR|--socket PATH]
  thunderpac run --model NAME[@VERSION] --input FILE.json|- [--json] [--store DIR] [--timeout-ms N] [--models-dir DIR] [--socket PATH]
  thunderpac models list [--json] [--models-dir DIR|--socket PATH]
  thunderpac models verify [NAME[@VERSION]] [--json] [--models-dir DIR]
  thunderpac p4 compile <prog.p4> [--target bmv2|tna|p4info] [-o OUT] [--out DIR] [-I DIR] [-D NAME[=VALUE]] [--json]
  thunderpac p4 stages <prog.p4> [--json]
  thunderpac p4 stf <prog.p4|prog.json> <test.stf>
  thunderpac p4 run <prog.p4|prog.json> --port N --packet HEX [--json] [--store DIR]
  thunderpac receipt verify <receipt-id> [--json] [--store DIR|--socket PATH]
  thunderpac receipt show <receipt-id> [--store DIR|--socket PATH]
  thunderpac receipt prove <receipt-id> | --consistency OLD[:NEW] [--store DIR]
  thunderpac receipt verify-proof FILE|- [--public-key PEM-FILE|ed25519:HEX] [--allow-unsigned] [--json]
  thunderpac receipt query --produced-by HASH | --derived-from HASH|RECEIPT | --build ID | --actor A | --status S
                           | --since ISO --until ISO [--limit N] [--json] [--store DIR]
  thunderpac dag run SPEC.json [--json] [--store DIR] [--models-dir DIR]
  thunderpac dag verify <receipt-id> [--json] [--store DIR]
  thunderpac receipt list [--build ID] [--actor A] [--status S] [--backend B] [--since ISO] [--until ISO]
                          [--limit N] [--order oldest|newest] [--json] [--store DIR|--socket PATH]
  thunderpac xdp attach <obj> --prog NAME --dev IFACE [--mode native|skb|offload|best] [--replace] [--pin] [--netns NAME] [--socket PATH]
  thunderpac xdp detach --dev IFACE [--netns NAME] [--force] [--socket PATH]
  thunderpac xdp status [--dev IFACE] [--netns NAME] [--json] [--socket PATH]
  thunderpac xdp clean [--json]
  thunderpac xdp test-run <obj> --prog NAME --packet HEX|--pcap FILE [--repeat N] [--json]
  thunderpac map dump|lookup|update|delete <pinned-path|name> [key] [value] [--mode any|noexist|exist] [--dev IFACE [--netns NAME]] [--socket PATH]
  thunderpac store stat|fsck [--json] [--store DIR]
  thunderpac store gc [--dry-run] [--keep-days N] [--keep-receipts N] [--max-bytes N] [--json]
  thunderpac store compact | snapshot [create [--label L]|list|drop ID] [--json]
  thunderpac store export OUT (--build ID|--receipt ID)... [--domain NAME] | store import FILE [--check] [--json]
  thunderpac daemon [--config FILE] [--socket PATH] [--listen HOST:PORT] [--store DIR] [--models-dir DIR]

The store defaults to $THUNDERPAC_STORE, else ~/.thunderpac/store. XDP records and pinned maps
live under --root, else $THUNDERPAC_BPFFS, else /sys/fs/bpf/thunderpac.

Client mode: with --socket PATH, or $THUNDERPAC_SOCKET, run, receipt, models list, xdp
attach/detach/status and map go through the daemon on that socket (its store, models and bpffs;
--store, --models-dir and --root are then refused). A daemon that is not there is an error (exit
2), never a fallback. Without either, commands run in-process: the default socket is never
probed, so a script does not change behaviour because a daemon happens to run. Through the
daemon, a request it refuses exits 2, a busy daemon (503) 75, a failing one 70.`;

function write(json: unknown): void {
  process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
}

async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      export: { type: 'string' },
      input: { type: 'string' },
      'timeout-ms': { type: 'string' },
      'memory-mb': { type: 'string' },
      port: { type: 'string' },
      json: { type: 'boolean', default: false },
      store: { type: 'string' },
      socket: { type: 'string' },
    },
  });
  if (positionals.length !== 1) throw new UsageError('run expects exactly one program file');
  if (!values.export) throw new UsageError('run needs --export NAME (the entry function)');
  if (!values.input) throw new UsageError('run needs --input FILE (or - for stdin)');
  // Everything that can be checked without blocking comes before reading stdin.
  const timeoutMs = parseIntFlag('timeout-ms', values['timeout-ms']);
  const memoryMb = parseIntFlag('memory-mb', values['memory-mb']);
  const ingressPort = parseIntFlag('port', values.port);
  const socket = clientSocket(values.socket);
  if (socket !== undefined) {
    refuseLocalFlags(values, ['store']);
    const file = positionals[0]!;
    kindOfProgram(file);
    const input = readInput(values.input);
    const request = {
      file,
      entry: values.export,
      input,
      timeoutMs,
      memoryMb,
      ingressPort,
      json: values.json,
    };
    return withDaemon(socket, (client) => runThroughDaemon(client, request));
  }
  const { buildFromFile } = await import('./program.js');
  const { Thunderpac } = await import('../thunderpac.js');
  const build = buildFromFile(positionals[0]!);
  const bytes = readInput(values.input);
  const tp = await Thunderpac.open({ store: storeDir(values.store) });
  try {
    const sandbox = tp.sandbox({
      backend: build.manifest.kind,
      limits: { ...(timeoutMs !== undefined && { timeoutMs }), ...(memoryMb !== undefined && { memoryMb }) },
    });
    const input =
      build.manifest.kind === 'wasm'
        ? { kind: 'bytes' as const, bytes }
        : { kind: 'packet' as const, bytes, ...(ingressPort !== undefined && { ingressPort }) };
    const result = await tp.execute(sandbox, { build, input, entry: values.export });
    if (values.json) write({ output: outputJson(result.output), receipt: result.receipt });
    else {
      printOutput(result.output);
      printReceipt(result.receipt);
    }
    return result.status === 'completed' ? 0 : 1;
  } finally {
    await tp.close();
  }
}

async function receipt(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      json: { type: 'boolean', default: false },
      store: { type: 'string' },
      socket: { type: 'string' },
      ...RECEIPT_LIST_FLAGS,
      ...RECEIPT_QUERY_FLAGS,
      ...RECEIPT_PROOF_FLAGS,
    },
  });
  const [action, id] = positionals;
  // Checking a proof needs neither a store nor a daemon (src/cli/receipt-proof.ts).
  if (action === 'verify-proof') return verifyProofCommand(id, values);
  const socket = clientSocket(values.socket);
  if (socket !== undefined) {
    refuseLocalFlags(values, ['store']);
    return withDaemon(socket, (client) => receiptThroughDaemon(client, action, id, values.json, values));
  }
  // Reading receipts never writes: no writer lock (works beside a daemon), nothing cut or created.
  const { Thunderpac } = await import('../thunderpac.js');
  const tp = await Thunderpac.open({
    store: storeDir(values.store, { create: false }),
    storeOptions: { readOnly: true },
  });
  try {
    const store = tp.store!;
    switch (action) {
      case 'list':
        return listReceiptsCommand(store, values, values.json);
      case 'query':
        return receiptQueryCommand(store, values, values.json);
      case 'show':
        if (!id) throw new UsageError('receipt show needs a receipt id');
        write(store.getReceipt(id));
        return 0;
      case 'verify': {
        if (!id) throw new UsageError('receipt verify needs a receipt id');
        return printVerifyReport(await tp.verify(id), id, values.json);
      }
      case 'prove':
        return proveCommand(store, id, values.consistency);
      default:
        throw new UsageError(
          `unknown receipt action '${action ?? ''}' (verify, show, list, prove, verify-proof)`,
        );
    }
  } finally {
    await tp.close();
  }
}

/**
 * Each command's module is loaded when the command runs: the daemon (Fastify, pino, NATS) and
 * the backends cost most of a CLI call's start-up, and a command (a client-mode one above all)
 * should pay only for what it uses.
 */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'run':
        return isModelRun(rest) ? await (await import('./models.js')).runModelCommand(rest) : await run(rest);
      case 'models':
        return await (await import('./models.js')).modelsCommand(rest);
      case 'p4':
        return await (await import('./p4.js')).p4Command(rest);
      case 'receipt':
        return await receipt(rest);
      case 'dag':
        return await (await import('./dag.js')).dagCommand(rest);
      case 'xdp':
        return await (await import('./xdp.js')).xdpCommand(rest);
      case 'map':
        return await (await import('./map.js')).mapCommand(rest);
      case 'store':
        return await (await import('./store.js')).storeCommand(rest);
      case 'daemon':
        return await (await import('../daemon/main.js')).daemonCommand(rest);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(`${USAGE}\n`);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command '${command}'`);
    }
  } catch (err) {
    return reportError(err);
  }
}

/** Exit code of an internal error (sysexits' EX_SOFTWARE): a bug, not a bad input. */
export const EXIT_INTERNAL = 70;

/**
 * Every failure that reaches the top becomes one line on stderr and an exit code: 2 for a bad
 * command line, path or input, 70 for anything unexpected (its stack only with
 * THUNDERPAC_DEBUG=1). A stack trace is never the answer to a bad input.
 */
function reportError(err: unknown): number {
  if (err instanceof UsageError || (err as { code?: string } | null)?.code?.startsWith?.('ERR_PARSE_ARGS')) {
    process.stderr.write(`thunderpac: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (err instanceof DaemonClientError) {
    // Client mode: the daemon refused (2), was not there (2), was busy (75) or failed (70).
    process.stderr.write(`thunderpac: ${err.message}\n`);
    return err.exitCode;
  }
  if (err instanceof CliPathError || err instanceof CliJsonError) {
    process.stderr.write(`thunderpac: ${err.message}\n`);
    return 2;
  }
  if (err instanceof ThunderpacError) {
    process.stderr.write(`thunderpac: ${err.code}: ${oneLine(err.message)}\n`);
    return 2;
  }
  // A file-system error on a path we were given (store, output, model files): still the input.
  const errno = userPathErrno(err);
  const path = (err as { path?: unknown } | null)?.path;
  if (errno && typeof path === 'string') {
    process.stderr.write(`thunderpac: ${pathError('path', path, err).message}\n`);
    return 2;
  }
  const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  process.stderr.write(`thunderpac: internal error: ${oneLine(message)}\n`);
  if (process.env.THUNDERPAC_DEBUG === '1' && err instanceof Error && err.stack) {
    process.stderr.write(`${err.stack}\n`);
  } else {
    process.stderr.write('thunderpac: (set THUNDERPAC_DEBUG=1 to see where)\n');
  }
  return EXIT_INTERNAL;
}

/** Messages go on one line of bounded length: a hostile input must not flood the terminal. */
function oneLine(message: string): string {
  const flat = message.replace(/\s*\n\s*/g, ' | ');
  return flat.length > 2000 ? `${flat.slice(0, 2000)}…` : flat;
}
