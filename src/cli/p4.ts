/**
 * `thunderpac p4 …`: the P4 compiler and the built-in switch from the command line.
 *
 *   thunderpac p4 compile <prog.p4> [--out DIR] [-I DIR]... [-D NAME[=VALUE]]... [--json]
 *       writes DIR/<name>.json (BMv2 JSON) and DIR/<name>.p4info.json; --json prints both
 *   thunderpac p4 compile <prog.p4> --target bmv2|p4info|tna [-o OUT]
 *       one target: BMv2 JSON, p4info, or the TNA rewrite (OUT, a .p4 for p4/tna.p4) with its
 *       stage allocation report beside it (OUT's name with .stages.json); printed without -o
 *   thunderpac p4 stages <prog.p4> [--json]      stage allocation under the Tofino-like model
 *   thunderpac p4 stf <prog.p4> <test.stf>       runs an STF test on the built-in switch (exit 1 on failure)
 *   thunderpac p4 run <prog.p4|prog.json> --port N --packet HEX [--json] [--store DIR]
 *       one packet through the built-in switch as an execution: prints each (egress port, bytes)
 *       out, or that the packet was dropped, then the receipt (stored, verifiable by replay)
 */

import { statSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { createP4Build, createP4BuildFromJson } from '../backends/p4/backend.js';
import { runStf, StfSyntaxError } from '../backends/p4/stf.js';
import { BehavioralSwitch, DROP_PORT } from '../backends/p4/switch.js';
import { type CompileOptions, compileP4 } from '../p4c/compile.js';
import { allocateStages } from '../p4c/stages.js';
import { toTna } from '../p4c/tna.js';
import { checkTnaProgram } from '../p4c/tna-check.js';
import type { Build } from '../runtime/build.js';
import { Thunderpac } from '../thunderpac.js';
import { outputJson, printReceipt, storeDir, UsageError } from './io.js';
import { parseJsonFile } from './json.js';
import { readUserFile, usableDirectory, writeOutputFile } from './paths.js';

function readSource(path: string | undefined, what: string): string {
  if (!path) throw new UsageError(`p4 needs ${what}`);
  return readUserFile(path, what.replace(/^an? /, '').replace(/ \(.*\)$/, '')).toString('utf8');
}

function defines(list: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const d of list) {
    const [name, value] = d.split('=', 2);
    if (!name || !/^[A-Za-z_]\w*$/.test(name)) throw new UsageError(`-D expects NAME[=VALUE], got '${d}'`);
    out[name] = value ?? '1';
  }
  return out;
}

/** A program named on the command line is BMv2 JSON when it ends in .json, P4_16 source otherwise. */
const isJsonProgram = (path: string): boolean => extname(path).toLowerCase() === '.json';

function parseJsonProgram(path: string, text: string): unknown {
  return parseJsonFile(text, path, 'the BMv2 JSON program');
}

/**
 * `--packet HEX`: hex digits, optionally `0x`-prefixed and grouped with spaces, `:` or `_`
 * (as tcpdump and Wireshark print them). An odd digit count is refused, not padded.
 */
export function parsePacketHex(text: string | undefined): Uint8Array {
  if (text === undefined) throw new UsageError('p4 run needs --packet HEX (the packet bytes)');
  const digits = text.replace(/^0x/i, '').replace(/[\s:_]/g, '');
  const bad = /[^0-9a-fA-F]/.exec(digits);
  if (bad) throw new UsageError(`--packet expects hex bytes, found '${bad[0]}' at digit ${bad.index + 1}`);
  if (digits.length === 0) throw new UsageError('--packet is empty: give at least one byte');
  if (digits.length % 2 !== 0)
    throw new UsageError(`--packet has an odd number of hex digits (${digits.length})`);
  return Uint8Array.from(Buffer.from(digits, 'hex'));
}

/** `--port N`: a v1model ingress port, 0 … 510 (511 is the drop port). */
export function parsePort(text: string | undefined): number {
  if (text === undefined) throw new UsageError('p4 run needs --port N (the ingress port)');
  if (!/^\d+$/.test(text) || Number(text) >= DROP_PORT) {
    throw new UsageError(`--port expects an ingress port 0..${DROP_PORT - 1}, got '${text}'`);
  }
  return Number(text);
}

interface P4Flags {
  readonly out?: string | undefined;
  readonly o?: string | undefined;
  readonly target?: string | undefined;
  readonly json: boolean;
  readonly port?: string | undefined;
  readonly packet?: string | undefined;
  readonly store?: string | undefined;
}

async function runPacket(program: string | undefined, flags: P4Flags, options: () => CompileOptions) {
  // Every flag is checked before the program is compiled or the store opened.
  const ingressPort = parsePort(flags.port);
  const bytes = parsePacketHex(flags.packet);
  const text = readSource(program, 'a P4 program file (.p4 or BMv2 .json)');
  const name = basename(program!);
  const build: Build = isJsonProgram(program!)
    ? createP4BuildFromJson(JSON.stringify(parseJsonProgram(program!, text)), { name })
    : createP4Build(text, { ...options(), name });
  const tp = await Thunderpac.open({ store: storeDir(flags.store) });
  try {
    const sandbox = tp.sandbox({ backend: 'p4' });
    const result = await tp.execute(sandbox, {
      build,
      entry: 'ingress',
      input: { kind: 'packet', bytes, ingressPort },
    });
    if (flags.json) {
      process.stdout.write(
        `${JSON.stringify({ output: outputJson(result.output), receipt: result.receipt }, null, 2)}\n`,
      );
    } else {
      const packets = result.output?.kind === 'packet' ? result.output.packets : [];
      if (result.status === 'completed' && packets.length === 0) {
        process.stdout.write(`dropped: no packet left the switch (ingress port ${ingressPort})\n`);
      }
      for (const p of packets) {
        process.stdout.write(
          `port ${p.port}: ${Buffer.from(p.bytes).toString('hex')} (${p.bytes.byteLength} B)\n`,
        );
      }
      const digests = result.output?.kind === 'packet' ? (result.output.digests ?? []) : [];
      for (const d of digests) {
        const values = Object.entries(d.values).map(([k, v]) => `${k}=${v}`);
        process.stdout.write(`digest to receiver ${d.receiver} (${d.list}): ${values.join(' ')}\n`);
      }
      printReceipt(result.receipt);
    }
    return result.status === 'completed' ? 0 : 1;
  } finally {
    await tp.close();
  }
}

const TARGETS = ['bmv2', 'p4info', 'tna'] as const;
type Target = (typeof TARGETS)[number];

/**
 * `p4 compile`. With `--target T -o OUT` one artifact goes to OUT (a file, or `<name>.<ext>`
 * inside OUT when OUT is an existing directory or ends in `/`); with `--target` and no `-o`
 * it is printed. Without `--target`, `--out DIR` writes the BMv2 JSON and p4info side by side
 * (the original form, kept).
 */
function compile(program: string | undefined, flags: P4Flags, options: () => CompileOptions): number {
  const source = readSource(program, 'a P4 program file');
  if (flags.target !== undefined && !(TARGETS as readonly string[]).includes(flags.target)) {
    throw new UsageError(`--target expects one of ${TARGETS.join(', ')}, got '${flags.target}'`);
  }
  const name = basename(program!, extname(program!));
  const result = compileP4(source, options());
  if (flags.target === undefined && flags.o === undefined) {
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({ bmv2: result.bmv2, p4info: result.p4info })}\n`);
      return 0;
    }
    const out = flags.out ?? dirname(program!);
    const flag = flags.out === undefined ? 'the program directory' : '--out';
    usableDirectory(out, flag, true);
    writeOutputFile(join(out, `${name}.json`), `${JSON.stringify(result.bmv2, null, 2)}\n`, flag);
    writeOutputFile(join(out, `${name}.p4info.json`), `${JSON.stringify(result.p4info, null, 2)}\n`, flag);
    process.stdout.write(`wrote ${join(out, `${name}.json`)} and ${join(out, `${name}.p4info.json`)}\n`);
    return 0;
  }
  const target: Target = (flags.target as Target | undefined) ?? 'bmv2';
  const artifacts = targetArtifacts(target, name, result);
  const dest = flags.o ?? flags.out;
  if (dest === undefined) {
    // Printed: the target itself (for tna the program; its stage report is `p4 stages`).
    process.stdout.write(artifacts[0]!.text);
    return 0;
  }
  const intoDir =
    dest.endsWith('/') || isDirectory(dest) || (flags.o === undefined && flags.out !== undefined);
  const written: string[] = [];
  for (const [i, a] of artifacts.entries()) {
    // The first artifact is the one OUT names; companions (the TNA stage report) sit beside it.
    const path = intoDir ? join(dest, a.file) : i === 0 ? dest : join(dirname(dest), companionName(dest, a));
    writeOutputFile(path, a.text, flags.o === undefined ? '--out' : '-o');
    written.push(path);
  }
  process.stdout.write(`wrote ${written.join(' and ')}\n`);
  return 0;
}

interface Artifact {
  /** The file name when OUT is a directory. */
  readonly file: string;
  /** For companions: what replaces OUT's extension when OUT names a file. */
  readonly suffix: string;
  readonly text: string;
}

const jsonText = (v: unknown): string => `${JSON.stringify(v, null, 2)}\n`;

function targetArtifacts(target: Target, name: string, result: ReturnType<typeof compileP4>): Artifact[] {
  switch (target) {
    case 'bmv2':
      return [{ file: `${name}.json`, suffix: '.json', text: jsonText(result.bmv2) }];
    case 'p4info':
      return [{ file: `${name}.p4info.json`, suffix: '.p4info.json', text: jsonText(result.p4info) }];
    case 'tna': {
      // The stage report first: a program that does not fit fails before anything is written.
      const stages = allocateStages(result.ir);
      const tna = toTna(result.ir);
      // Our own front end must accept the rewrite against p4/tna.p4, or it is a compiler bug.
      checkTnaProgram(tna.source, { file: `${name}.tna.p4` });
      return [
        { file: `${name}.tna.p4`, suffix: '.tna.p4', text: tna.source },
        { file: `${name}.stages.json`, suffix: '.stages.json', text: jsonText(stages) },
      ];
    }
  }
}

function companionName(dest: string, a: Artifact): string {
  return `${basename(dest, extname(dest))}${a.suffix}`;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function printStages(report: ReturnType<typeof allocateStages>): void {
  process.stdout.write(`${report.stagesUsed} stage(s) used\n`);
  for (const s of report.stages) {
    process.stdout.write(
      `  stage ${s.stage}: ${s.tables.join(', ') || '-'} (sram ${s.sram}, tcam ${s.tcam}, match bits ${s.matchBits})\n`,
    );
  }
}

/** A malformed STF file is a bad input (exit 2), not a failed test. */
function stfOrUsage<T>(run: () => T, file: string): T {
  try {
    return run();
  } catch (err) {
    if (err instanceof StfSyntaxError) throw new UsageError(`${file}: ${err.message}`);
    throw err;
  }
}

/** The switch's BMv2 JSON: read from a .json program, compiled from anything else. */
function switchJson(program: string | undefined, options: () => CompileOptions): unknown {
  const text = readSource(program, 'a P4 program file (.p4 or BMv2 .json)');
  return isJsonProgram(program!) ? parseJsonProgram(program!, text) : compileP4(text, options()).bmv2;
}

export async function p4Command(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      out: { type: 'string' },
      o: { type: 'string', short: 'o' },
      target: { type: 'string' },
      json: { type: 'boolean', default: false },
      port: { type: 'string' },
      packet: { type: 'string' },
      store: { type: 'string' },
      I: { type: 'string', multiple: true, short: 'I' },
      D: { type: 'string', multiple: true, short: 'D' },
    },
  });
  const [action, program, extra] = positionals;
  const options = (): CompileOptions => ({
    file: program!,
    includeDirs: [dirname(program!), ...(values.I ?? [])],
    defines: defines(values.D ?? []),
  });
  switch (action) {
    case 'compile':
      return compile(program, values, options);
    case 'stages': {
      const report = allocateStages(compileP4(readSource(program, 'a P4 program file'), options()).ir);
      if (values.json) process.stdout.write(jsonText(report));
      else printStages(report);
      return 0;
    }
    case 'stf': {
      const json = switchJson(program, options);
      const stf = readSource(extra, 'an STF file');
      const result = stfOrUsage(() => runStf(new BehavioralSwitch(json), stf), extra!);
      for (const f of result.failures) process.stdout.write(`FAIL ${f}\n`);
      process.stdout.write(
        `${result.ok ? 'PASS' : 'FAIL'}: ${result.packetsIn} packets in, ${result.packetsOut} out\n`,
      );
      return result.ok ? 0 : 1;
    }
    case 'run':
      return await runPacket(program, values, options);
    default:
      throw new UsageError(`unknown p4 action '${action ?? ''}' (compile, stages, stf, run)`);
  }
}
