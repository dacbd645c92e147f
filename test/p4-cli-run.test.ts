import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileP4 } from '../src/p4c/compile.js';
import { packagePath } from '../src/runtime/package-root.js';
import { cli } from './helpers/cli.js';
import { hex, ipv4Checksum, ipv4Frame, sample } from './p4-helpers.js';

const router = packagePath('p4', 'samples', 'basic_router.p4');
let dir: string;
let store: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tp-p4run-'));
  store = join(dir, 'store');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// basic_router's const entries: 10.0.1.0/24 → port 1 (dst MAC ..01), 10.0.2.0/24 → port 2.
const toPort1 = ipv4Frame({ dst: [10, 0, 1, 5], ttl: 64 });

describe('thunderpac p4 run', () => {
  it('prints the egress port and the rewritten bytes, then a receipt that verifies', async () => {
    const r = await cli('p4', 'run', router, '--port', '3', '--packet', hex(toPort1), '--store', store);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const m = /^port (\d+): ([0-9a-f]+) \((\d+) B\)$/m.exec(r.out);
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBe(1);
    const out = Buffer.from(m![2]!, 'hex');
    expect(Number(m![3])).toBe(out.length);
    // The router decrements TTL and fixes the IPv4 checksum: checked independently here.
    expect(out[22]).toBe(63);
    expect(out.readUInt16BE(24)).toBe(ipv4Checksum(out.subarray(14, 34)));
    const id = /^receipt ([0-9a-f]{64})$/m.exec(r.out)?.[1];
    expect(id).toBeDefined();
    expect(r.out).toMatch(/status\s+completed/);
    const v = await cli('receipt', 'verify', id!, '--store', store);
    expect(v.code).toBe(0);
  });

  it('says a packet was dropped when nothing leaves the switch', async () => {
    // No route for 172.16.0.0/12: the default action drops.
    const pkt = ipv4Frame({ dst: [172, 16, 0, 1] });
    const r = await cli('p4', 'run', router, '--port', '0', '--packet', hex(pkt), '--store', store);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^dropped/m);
    expect(r.out).not.toMatch(/^port /m);
  });

  it('--json gives the output and the receipt as one document', async () => {
    const r = await cli(
      'p4',
      'run',
      router,
      '--port',
      '3',
      '--packet',
      hex(toPort1),
      '--store',
      store,
      '--json',
    );
    expect(r.code).toBe(0);
    const json = JSON.parse(r.out);
    expect(json.output.verdict).toBe('forward');
    expect(json.output.packets.map((p: { port: number }) => p.port)).toEqual([1]);
    expect(json.receipt.backend).toBe('p4');
    expect(json.receipt.status).toBe('completed');
  });

  it('runs BMv2 JSON (.json) the same as the source it came from', async () => {
    const jsonFile = join(dir, 'basic_router.json');
    writeFileSync(jsonFile, JSON.stringify(compileP4(sample('basic_router.p4')).bmv2));
    const args = ['--port', '3', '--packet', `0x${hex(toPort1)}`, '--store', store, '--json'];
    const fromJson = JSON.parse((await cli('p4', 'run', jsonFile, ...args)).out);
    const fromSource = JSON.parse((await cli('p4', 'run', router, ...args)).out);
    expect(fromJson.output).toEqual(fromSource.output);
  });

  it('accepts hex grouped with spaces or colons', async () => {
    const grouped = hex(toPort1).replace(/(..)(?!$)/g, '$1:');
    const r = await cli('p4', 'run', router, '--port', '3', '--packet', grouped, '--store', store, '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out).output.packets[0].port).toBe(1);
  });

  it.each([
    [['--port', '1', '--packet', 'zz00'], /--packet expects hex bytes, found 'z' at digit 1/],
    [['--port', '1', '--packet', 'abc'], /odd number of hex digits \(3\)/],
    [['--port', '1', '--packet', ''], /--packet is empty/],
    [['--port', '1'], /needs --packet HEX/],
    [['--packet', '00'], /needs --port N/],
    [['--port=-1', '--packet', '00'], /--port expects an ingress port 0\.\.510, got '-1'/],
    [['--port', '511', '--packet', '00'], /--port expects an ingress port 0\.\.510, got '511'/],
    [['--port', 'eth0', '--packet', '00'], /--port expects an ingress port/],
  ])('refuses bad flags %j with exit 2', async (flags, message) => {
    const r = await cli('p4', 'run', router, ...flags, '--store', store);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
  });

  it('refuses a missing file, a non-JSON .json and a broken program with exit 2', async () => {
    const missing = await cli(
      'p4',
      'run',
      join(dir, 'nope.p4'),
      '--port',
      '1',
      '--packet',
      '00',
      '--store',
      store,
    );
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/does not exist: .*nope\.p4/);
    const notJson = join(dir, 'junk.json');
    writeFileSync(notJson, '{ not json');
    const junk = await cli('p4', 'run', notJson, '--port', '1', '--packet', '00', '--store', store);
    expect(junk.code).toBe(2);
    expect(junk.err).toMatch(/is not valid JSON .*: .*junk\.json/);
    mkdirSync(join(dir, 'src'), { recursive: true });
    const broken = join(dir, 'src', 'broken.p4');
    writeFileSync(broken, '#include <core.p4>\nheader h_t { bit<8> f }\n');
    const b = await cli('p4', 'run', broken, '--port', '1', '--packet', '00', '--store', store);
    expect(b.code).toBe(2);
    expect(b.err).toMatch(/broken\.p4:2:\d+/);
  });

  it('a BMv2 JSON the switch cannot load fails the execution with a receipt saying why (exit 1)', async () => {
    const bad = join(dir, 'empty.json');
    writeFileSync(bad, '{}');
    const r = await cli('p4', 'run', bad, '--port', '1', '--packet', '00', '--store', store);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/status\s+failed \(P4_JSON/);
  });
});
