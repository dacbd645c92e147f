import { spawn } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BpfError, ClosedHandleError, XdpBusyError, XdpError } from '../src/backends/ebpf/errors.js';
import {
  BpfLink,
  programInfo,
  xdpAttachNetlink,
  xdpDetachNetlink,
  xdpQuery,
  XDP_FLAGS,
} from '../src/backends/ebpf/link.js';
import { BpfObject } from '../src/backends/ebpf/object.js';
import { XdpManager } from '../src/backends/ebpf/xdp.js';
import { bpfObjectPath } from './helpers/bpf-fixtures.js';
import { createVethPair, type VethPair } from './helpers/netns.js';

const ROOT = `/sys/fs/bpf/thunderpac-test-xdp-${process.pid}`;
let pair: VethPair;
let pass: BpfObject;
let counter: BpfObject;
let manager: XdpManager;

beforeAll(() => {
  pair = createVethPair('xdp');
  pass = BpfObject.open(bpfObjectPath('xdp_pass.bpf.o')).load();
  counter = BpfObject.open(bpfObjectPath('xdp_counter.bpf.o')).load();
  manager = new XdpManager({ root: ROOT });
});

afterAll(() => {
  try {
    manager?.close();
    manager?.clean();
  } finally {
    pass?.close();
    counter?.close();
    pair?.destroy();
    rmSync(ROOT, { recursive: true, force: true });
  }
});

function target() {
  return { device: pair.devB, netns: pair.nsB };
}

function attachedId(): number {
  return xdpQuery(target()).progId;
}

function expectClean(): void {
  const query = xdpQuery(target());
  expect(query.progId).toBe(0);
  expect(query.mode).toBe('none');
}

describe('XdpManager inside a test-made network namespace', () => {
  it('attaches in native mode, refuses a second attach, replaces atomically, detaches clean', () => {
    const first = manager.attach(pass, 'xdp_pass', target());
    expect(first).toMatchObject({ kind: 'link', mode: 'native', device: pair.devB, netns: pair.nsB });
    const query = xdpQuery(target());
    expect(query.progId).toBe(first.progId);
    expect(query.mode).toBe('native');

    const busy = (() => {
      try {
        manager.attach(counter, 'xdp_count', target());
      } catch (err) {
        return err;
      }
      return undefined;
    })();
    expect(busy).toBeInstanceOf(XdpBusyError);
    expect((busy as XdpBusyError).attachedProgId).toBe(first.progId);
    expect((busy as XdpBusyError).message).toMatch(/pass replace/);

    const second = manager.attach(counter, 'xdp_count', { ...target(), replace: true });
    expect(second.replacedProgId).toBe(first.progId);
    expect(attachedId()).toBe(second.progId);
    expect(programInfo({ id: attachedId() }).name).toBe('xdp_count');

    expect(manager.detach(target())).toBe(true);
    expectClean();
    expect(manager.detach(target())).toBe(false);
  });

  it('generic (skb) mode works; offload on a veth fails with a typed error; best falls back to native', () => {
    const skb = manager.attach(pass, 'xdp_pass', { ...target(), mode: 'skb' });
    expect(xdpQuery(target()).mode).toBe('skb');
    expect(xdpQuery(target()).skbProgId).toBe(skb.progId);
    manager.detach(target());
    expectClean();

    let error: unknown;
    try {
      manager.attach(pass, 'xdp_pass', { ...target(), mode: 'offload' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(XdpError);
    expect((error as XdpError).device).toBe(pair.devB);
    expectClean();

    // best: offload if the device can (a veth cannot), else native.
    const best = manager.attach(pass, 'xdp_pass', { ...target(), mode: 'best' });
    expect(best.mode).toBe('native');
    expect(xdpQuery(target()).mode).toBe('native');
    manager.detach(target());
    expectClean();
  });

  it('a foreign netlink program is refused, kept on detach, and replaced only when asked', () => {
    const foreignFd = counter.program('xdp_count').fd!;
    xdpAttachNetlink(target(), foreignFd, { flags: XDP_FLAGS.native });
    const foreignId = attachedId();
    try {
      expect(() => manager.attach(pass, 'xdp_pass', target())).toThrow(/not attached by thunderpac/);
      expect(() => manager.detach(target())).toThrow(/thunderpac did not attach/);
      expect(attachedId()).toBe(foreignId);

      const replaced = manager.attach(pass, 'xdp_pass', { ...target(), replace: true });
      expect(replaced).toMatchObject({ kind: 'netlink', replacedProgId: foreignId });
      expect(attachedId()).toBe(replaced.progId);
      expect(manager.status()).toEqual([
        expect.objectContaining({ device: pair.devB, netns: pair.nsB, kind: 'netlink', active: true }),
      ]);
      expect(manager.detach(target())).toBe(true);
      expectClean();
      expect(manager.status()).toEqual([]);
    } finally {
      if (attachedId() !== 0) xdpDetachNetlink(target(), { flags: XDP_FLAGS.native });
    }
  });

  it('a pinned link outlives the manager and is found and removed by status/clean', () => {
    const pinned = manager.attach(pass, 'xdp_pass', { ...target(), pin: true });
    expect(pinned.kind).toBe('pinned-link');
    manager.close();
    pass.close();
    pass = BpfObject.open(bpfObjectPath('xdp_pass.bpf.o')).load();
    expect(attachedId()).toBe(pinned.progId);

    const fresh = new XdpManager({ root: ROOT });
    expect(fresh.status()).toEqual([
      expect.objectContaining({
        kind: 'pinned-link',
        progId: pinned.progId,
        active: true,
        pinPath: pinned.pinPath,
      }),
    ]);
    expect(fresh.clean()).toEqual([expect.objectContaining({ kind: 'pinned-link', detached: true })]);
    expectClean();
    expect(fresh.status()).toEqual([]);
  });

  it('a closed link handle throws ClosedHandleError, and closing does not detach a pinned link', () => {
    const link = BpfLink.createXdp(target(), pass.program('xdp_pass').fd!, 'native');
    const pin = `${ROOT}/raw-link`;
    mkdirSync(ROOT, { recursive: true });
    link.pin(pin);
    link.close();
    expect(() => link.info()).toThrow(ClosedHandleError);
    expect(() => link.detach()).toThrow(ClosedHandleError);
    expect(attachedId()).not.toBe(0);
    const again = BpfLink.openPinned(pin);
    again.detach();
    again.close();
    rmSync(pin);
    expectClean();
  });

  it('errors name the interface and namespace when they do not exist', () => {
    expect(() => xdpQuery({ device: 'nope0', netns: pair.nsB })).toThrow(BpfError);
    expect(() => xdpQuery({ device: pair.devB, netns: 'tp-no-such-ns' })).toThrow(/tp-no-such-ns/);
  });
});

describe('what a killed process leaves behind', () => {
  function attachInChild(lifetime: 'pin' | 'link'): Promise<{ kill: () => Promise<void>; progId: number }> {
    return new Promise((resolve, reject) => {
      const child = spawn(
        'node_modules/.bin/vite-node',
        [
          'test/helpers/attach-and-hang.ts',
          '--',
          bpfObjectPath('xdp_pass.bpf.o'),
          'xdp_pass',
          pair.devB,
          pair.nsB,
          ROOT,
          lifetime,
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let out = '';
      let err = '';
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`child did not attach: ${err}`));
      }, 20_000);
      child.stderr.on('data', (chunk: Buffer) => {
        err += chunk.toString();
      });
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const match = /attached (\d+)/.exec(out);
        if (match) {
          clearTimeout(timer);
          resolve({
            progId: Number(match[1]),
            kill: () =>
              new Promise((done) => {
                child.on('exit', () => done());
                child.kill('SIGKILL');
              }),
          });
        }
      });
      child.on('exit', (code) => {
        clearTimeout(timer);
        if (!/attached/.test(out)) reject(new Error(`child exited ${code}: ${err}`));
      });
    });
  }

  it('a process-lifetime link disappears with its SIGKILLed owner', async () => {
    const child = await attachInChild('link');
    expect(attachedId()).toBe(child.progId);
    await child.kill();
    // The kernel releases the link when the last fd closes, i.e. at process teardown.
    const deadline = Date.now() + 2000;
    while (attachedId() !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expectClean();
  });

  it('a pinned attachment of a SIGKILLed process is removed by clean', async () => {
    const child = await attachInChild('pin');
    await child.kill();
    expect(attachedId()).toBe(child.progId);
    const cleaned = new XdpManager({ root: ROOT }).clean();
    expect(cleaned).toEqual([
      expect.objectContaining({ device: pair.devB, netns: pair.nsB, kind: 'pinned-link', detached: true }),
    ]);
    expectClean();
  });
});
