/**
 * STF, the simple test format of p4c's BMv2 tests, run against the behavioral switch:
 *
 *   add <table> [<priority>] <key>:<value> ... <action>(<param>:<value>, ...)
 *   setdefault <table> <action>(<param>:<value>, ...)
 *   packet <port> <hex bytes>
 *   expect <port> <hex bytes, * for any nibble> [$]   ($: the packet ends there)
 *   wait
 *   mc_mgrp_create <group> / mc_node_create <rid> <port>... / mc_node_associate <group> <node>
 *   mirroring_add <session> <port> / mirroring_add_mc <session> <group>   (clone sessions)
 *
 * Key values are `0x..` / decimal (exact), `v/len` (lpm), `v&&&mask` (ternary), `lo->hi`
 * (range). Every packet's outputs are queued per port; each `expect` takes the next packet on
 * its port — or, when none has come out yet, waits for the next one that does, as p4c's STF
 * runner reads it (p4c's own tests often write the `expect` before its `packet`). A `packet`
 * line without bytes sends nothing (p4c's runner cannot inject an empty frame either). The run
 * fails on a mismatch, an expectation no packet met, or a packet nobody expected.
 */

import type { BehavioralSwitch } from './switch.js';
import type { KeyValue } from './tables.js';

export interface StfResult {
  readonly ok: boolean;
  /** One line per failed expectation, with expected vs got. */
  readonly failures: readonly string[];
  readonly packetsIn: number;
  readonly packetsOut: number;
}

export class StfSyntaxError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(`stf line ${line}: ${message}`);
  }
}

const num = (s: string): bigint => BigInt(s.replace(/_/g, ''));

function keyValue(text: string, line: number): KeyValue {
  try {
    if (text.includes('&&&')) {
      const [v, m] = text.split('&&&');
      return { value: num(v!), mask: num(m!) };
    }
    if (text.includes('->')) {
      const [lo, hi] = text.split('->');
      return { low: num(lo!), high: num(hi!) };
    }
    if (text.includes('/')) {
      const [v, p] = text.split('/');
      return { value: num(v!), prefixLength: Number(p) };
    }
    return num(text);
  } catch {
    throw new StfSyntaxError(line, `bad key value '${text}'`);
  }
}

/** `act(a:1, b:0x2)` → name and arguments in order. */
function actionCall(text: string, line: number): { action: string; args: bigint[] } {
  const m = /^([\w.$]+)\s*\((.*)\)\s*$/.exec(text.trim());
  if (!m) throw new StfSyntaxError(line, `expected action(args), found '${text}'`);
  const args =
    m[2]!.trim() === ''
      ? []
      : m[2]!.split(',').map((a) => {
          const v = a.includes(':') ? a.slice(a.indexOf(':') + 1) : a;
          try {
            return num(v.trim());
          } catch {
            throw new StfSyntaxError(line, `bad action argument '${a.trim()}'`);
          }
        });
  return { action: m[1]!, args };
}

function hexOf(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

function matches(expected: string, got: string, exact: boolean): boolean {
  if (exact ? got.length !== expected.length : got.length < expected.length) return false;
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i]!;
    if (e !== '*' && e !== got[i]) return false;
  }
  return true;
}

export function runStf(sw: BehavioralSwitch, text: string): StfResult {
  const failures: string[] = [];
  const queues = new Map<number, Uint8Array[]>();
  /** Expectations written before their packet came out, per port, in file order. */
  const waiting = new Map<number, { line: number; body: string; exact: boolean }[]>();
  const check = (e: { line: number; body: string; exact: boolean }, port: number, got: Uint8Array) => {
    if (!matches(e.body, hexOf(got), e.exact)) {
      failures.push(`line ${e.line}: port ${port}\n  expected: ${e.body}\n  got:      ${hexOf(got)}`);
    }
  };
  let packetsIn = 0;
  let packetsOut = 0;
  const lines = text.split('\n');
  const mcNodes: { rid: number; ports: number[] }[] = [];
  for (let n = 0; n < lines.length; n++) {
    const line = n + 1;
    const raw = lines[n]!.replace(/#.*$/, '').trim();
    if (raw === '') continue;
    const [cmd, ...rest] = raw.split(/\s+/);
    switch (cmd!.toLowerCase()) {
      case 'add': {
        const tableName = rest.shift();
        if (!tableName) throw new StfSyntaxError(line, 'add needs a table');
        let priority: number | undefined;
        if (rest[0] && /^\d+$/.test(rest[0])) priority = Number(rest.shift());
        const body = rest.join(' ');
        const open = body.search(/[\w.$]+\s*\(/g);
        const actionAt = body.lastIndexOf(' ', body.indexOf('(')) + 1;
        if (open < 0) throw new StfSyntaxError(line, 'add needs an action(args)');
        const keys = body
          .slice(0, actionAt)
          .trim()
          .split(/\s+/)
          .filter((k) => k !== '');
        const call = actionCall(body.slice(actionAt), line);
        const table = sw.table(tableName);
        const byName = new Map<string, KeyValue>();
        for (const k of keys) {
          const c = k.lastIndexOf(':');
          if (c < 0) throw new StfSyntaxError(line, `expected field:value, found '${k}'`);
          byName.set(k.slice(0, c), keyValue(k.slice(c + 1), line));
        }
        const key = table.keys.map((tk) => {
          const v =
            byName.get(tk.name) ?? [...byName].find(([n]) => tk.name.endsWith(n) || n.endsWith(tk.name))?.[1];
          if (v === undefined) throw new StfSyntaxError(line, `no value for key ${tk.name} of ${table.name}`);
          return v;
        });
        // Priorities pass through as BMv2's runtime CLI takes them (lower wins); without one,
        // entries tie and the one added first wins.
        const bmv2Priority = table.needsPriority ? (priority ?? 1) : undefined;
        table.addEntry({
          key,
          action: call.action,
          args: call.args,
          ...(bmv2Priority !== undefined ? { priority: bmv2Priority } : {}),
        });
        break;
      }
      case 'setdefault': {
        const tableName = rest.shift();
        if (!tableName) throw new StfSyntaxError(line, 'setdefault needs a table');
        const call = actionCall(rest.join(' '), line);
        sw.setDefaultAction(tableName, call.action, call.args);
        break;
      }
      case 'packet': {
        const port = Number(rest.shift());
        const hex = rest.join('').toLowerCase();
        if (!Number.isInteger(port) || !/^([0-9a-f]{2})*$/.test(hex))
          throw new StfSyntaxError(line, 'packet <port> <hex bytes>');
        if (hex === '') break;
        packetsIn++;
        for (const out of sw.process(Uint8Array.from(Buffer.from(hex, 'hex')), port)) {
          packetsOut++;
          const early = waiting.get(out.port)?.shift();
          if (early) {
            check(early, out.port, out.bytes);
            continue;
          }
          const q = queues.get(out.port) ?? [];
          q.push(out.bytes);
          queues.set(out.port, q);
        }
        break;
      }
      case 'expect': {
        const port = Number(rest.shift());
        let body = rest.join('').toLowerCase();
        const exact = body.endsWith('$');
        if (exact) body = body.slice(0, -1);
        if (!Number.isInteger(port) || !/^[0-9a-f*]*$/.test(body))
          throw new StfSyntaxError(line, 'expect <port> <hex with *>');
        const got = queues.get(port)?.shift();
        if (got) check({ line, body, exact }, port, got);
        else {
          const w = waiting.get(port) ?? [];
          w.push({ line, body, exact });
          waiting.set(port, w);
        }
        break;
      }
      case 'wait':
        break;
      case 'mc_mgrp_create':
        sw.setMulticastGroup(Number(rest[0]), []);
        break;
      case 'mirroring_add':
      case 'mirroring_add_mc': {
        // p4c's STF: mirroring_add <session> <port> / mirroring_add_mc <session> <group>
        const [session, to] = rest.map(Number);
        if (!Number.isInteger(session) || !Number.isInteger(to))
          throw new StfSyntaxError(line, `${cmd} <session> <${cmd === 'mirroring_add' ? 'port' : 'group'}>`);
        sw.setCloneSession(session!, cmd === 'mirroring_add' ? { port: to! } : { multicastGroup: to! });
        break;
      }
      case 'mc_node_create': {
        const [rid, ...ports] = rest.map(Number);
        if (rid === undefined || ports.some((p) => !Number.isInteger(p)))
          throw new StfSyntaxError(line, 'mc_node_create <rid> <port>...');
        mcNodes.push({ rid, ports });
        break;
      }
      case 'mc_node_associate': {
        const group = Number(rest[0]);
        const node = mcNodes[Number(rest[1])];
        if (!node) throw new StfSyntaxError(line, `no multicast node ${rest[1]}`);
        sw.setMulticastGroup(group, [
          ...sw.multicastGroup(group),
          ...node.ports.map((port) => ({ port, rid: node.rid })),
        ]);
        break;
      }
      default:
        throw new StfSyntaxError(line, `unknown command '${cmd}'`);
    }
  }
  for (const [port, w] of waiting) {
    for (const e of w) failures.push(`line ${e.line}: expected on port ${port}: ${e.body}\n  got: nothing`);
  }
  for (const [port, q] of queues) {
    for (const b of q) failures.push(`unexpected packet on port ${port}: ${hexOf(b)}`);
  }
  return { ok: failures.length === 0, failures, packetsIn, packetsOut };
}
