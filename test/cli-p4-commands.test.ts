import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packagePath } from '../src/runtime/package-root.js';
import { cli } from './helpers/cli.js';

const router = packagePath('p4', 'samples', 'basic_router.p4');
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tp-p4cli-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Ethernet + IPv4 (no options) + 8 zero bytes, with a correct header checksum. */
function ipv4Packet(dst: number[]): Buffer {
  const eth = Buffer.from('000000000001000000000002' + '0800', 'hex');
  const ip = Buffer.from([0x45, 0, 0, 28, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, ...dst]);
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += ip.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  ip.writeUInt16BE(~sum & 0xffff, 10);
  return Buffer.concat([eth, ip, Buffer.alloc(8)]);
}

describe('thunderpac p4', () => {
  it('compile writes BMv2 JSON and p4info', async () => {
    const r = await cli('p4', 'compile', router, '--out', dir);
    expect(r.code).toBe(0);
    const bmv2 = JSON.parse(readFileSync(join(dir, 'basic_router.json'), 'utf8'));
    expect(Array.isArray(bmv2.pipelines)).toBe(true);
    const p4info = JSON.parse(readFileSync(join(dir, 'basic_router.p4info.json'), 'utf8'));
    expect(JSON.stringify(p4info)).toContain('ipv4_lpm');
  });

  it('stages reports an allocation', async () => {
    const r = await cli('p4', 'stages', router, '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out).stagesUsed).toBeGreaterThan(0);
  });

  it('stf passes a correct expectation and fails a wrong one', async () => {
    const pkt = ipv4Packet([10, 0, 2, 9]).toString('hex');
    const good = join(dir, 'good.stf');
    const bad = join(dir, 'bad.stf');
    writeFileSync(good, `packet 1 ${pkt}\nexpect 2 $\n`.replace('$', '*'));
    writeFileSync(bad, `packet 1 ${pkt}\nexpect 3 *\n`);
    expect((await cli('p4', 'stf', router, good)).code).toBe(0);
    const r = await cli('p4', 'stf', router, bad);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/FAIL/);
  });

  it('run executes a .p4 program on a packet with --port, with a receipt', async () => {
    const packet = join(dir, 'pkt.bin');
    writeFileSync(packet, ipv4Packet([10, 0, 1, 5]));
    const r = await cli(
      'run',
      router,
      '--export',
      'ingress',
      '--input',
      packet,
      '--port',
      '4',
      '--store',
      join(dir, 'store'),
      '--json',
    );
    expect(r.code).toBe(0);
    const json = JSON.parse(r.out);
    expect(json.output.verdict).toBe('forward');
    expect(json.output.packets[0].port).toBe(1);
  });

  it('reports compile errors with file:line:col and bad command lines with exit 2', async () => {
    const broken = join(dir, 'broken.p4');
    writeFileSync(broken, '#include <core.p4>\nheader h_t { bit<8> f }\n');
    const r = await cli('p4', 'compile', broken);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/broken\.p4:2:\d+/);
    expect((await cli('p4', 'frobnicate', router)).code).toBe(2);
    expect((await cli('p4', 'compile')).err).toMatch(/needs a P4 program file/);
    expect((await cli('p4', 'compile', router, '-D', '1BAD')).err).toMatch(/-D expects NAME/);
  });
});
