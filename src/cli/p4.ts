/**
 * `thunderpac p4 …`: the P4 compiler and the built-in switch from the command line.
 *
 *   thunderpac p4 compile <prog.p4> [--out DIR] [-I DIR]... [-D NAME[=VALUE]]... [--json]
 *       writes DIR/<name>.json (BMv2 JSON) and DIR/<name>.p4info.json; --json prints both
 *   thunderpac p4 stages <prog.p4> [--json]      stage allocation under the Tofino-like model
 *   thunderpac p4 stf <prog.p4> <test.stf>       runs an STF test on the built-in switch (exit 1 on failure)
 */

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { runStf } from '../backends/p4/stf.js';
import { BehavioralSwitch } from '../backends/p4/switch.js';
import { type CompileOptions, compileP4 } from '../p4c/compile.js';
import { allocateStages } from '../p4c/stages.js';
import { UsageError } from './io.js';

function readSource(path: string | undefined, what: string): string {
  if (!path) throw new UsageError(`p4 needs ${what}`);
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${path}: ${(err as Error).message}`);
  }
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

export async function p4Command(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      out: { type: 'string' },
      json: { type: 'boolean', default: false },
      I: { type: 'string', multiple: true, short: 'I' },
      D: { type: 'string', multiple: true, short: 'D' },
    },
  });
  const [action, program, extra] = positionals;
  const source = () => readSource(program, 'a P4 program file');
  const options = (): CompileOptions => ({
    file: program!,
    includeDirs: [dirname(program!), ...(values.I ?? [])],
    defines: defines(values.D ?? []),
  });
  switch (action) {
    case 'compile': {
      const result = compileP4(source(), options());
      if (values.json) {
        process.stdout.write(`${JSON.stringify({ bmv2: result.bmv2, p4info: result.p4info })}\n`);
        return 0;
      }
      const out = values.out ?? dirname(program!);
      const name = basename(program!, extname(program!));
      mkdirSync(out, { recursive: true });
      writeFileSync(join(out, `${name}.json`), `${JSON.stringify(result.bmv2, null, 2)}\n`);
      writeFileSync(join(out, `${name}.p4info.json`), `${JSON.stringify(result.p4info, null, 2)}\n`);
      process.stdout.write(`wrote ${join(out, `${name}.json`)} and ${join(out, `${name}.p4info.json`)}\n`);
      return 0;
    }
    case 'stages': {
      const report = allocateStages(compileP4(source(), options()).ir);
      if (values.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      else {
        process.stdout.write(`${report.stagesUsed} stage(s) used\n`);
        for (const s of report.stages) {
          process.stdout.write(
            `  stage ${s.stage}: ${s.tables.join(', ') || '-'} (sram ${s.sram}, tcam ${s.tcam}, match bits ${s.matchBits})\n`,
          );
        }
      }
      return 0;
    }
    case 'stf': {
      const sw = new BehavioralSwitch(compileP4(source(), options()).bmv2);
      const result = runStf(sw, readSource(extra, 'an STF file'));
      for (const f of result.failures) process.stdout.write(`FAIL ${f}\n`);
      process.stdout.write(
        `${result.ok ? 'PASS' : 'FAIL'}: ${result.packetsIn} packets in, ${result.packetsOut} out\n`,
      );
      return result.ok ? 0 : 1;
    }
    default:
      throw new UsageError(`unknown p4 action '${action ?? ''}' (compile, stages, stf)`);
  }
}
