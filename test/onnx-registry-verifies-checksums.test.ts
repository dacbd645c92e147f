import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ModelSecurityError } from '../src/backends/onnx/errors.js';
import { defaultModelDir, ModelRegistry, parseModelRef } from '../src/backends/onnx/registry.js';
import { sha256Hex } from '../src/runtime/canonical.js';
import { NotFoundError, ValidationError } from '../src/runtime/errors.js';

let root: string;
let dir: string;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'tp-onnx-registry-'));
  dir = join(root, 'models');
  mkdirSync(dir);
  cpSync(join(defaultModelDir(), 'mlp'), join(dir, 'mlp'), { recursive: true });
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

function error(fn: () => unknown): ModelSecurityError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ModelSecurityError);
    return err as ModelSecurityError;
  }
  throw new Error('expected a ModelSecurityError');
}

describe('model registry', () => {
  it('lists and loads name@version, verifying sha256', () => {
    const reg = new ModelRegistry({ dir });
    expect(reg.list().map((e) => `${e.name}@${e.version}`)).toEqual(['mlp@1']);
    const m = reg.get('mlp');
    expect(m.version).toBe('1');
    expect(m.trusted).toBe(true);
    expect(m.digest).toBe(sha256Hex(readFileSync(join(dir, 'mlp/1/model.onnx'))));
    expect(reg.get('mlp@1')).toBe(m); // lazily loaded once, then cached
    expect(reg.stats).toEqual({ loads: 1, untrustedLoads: 0, refused: 0 });
    expect(() => reg.get('mlp@2')).toThrow(NotFoundError);
    expect(() => parseModelRef('../etc@1')).toThrow(ValidationError);
  });

  it('preloads configured models at start and lazy-loads the others on first use', () => {
    cpSync(join(defaultModelDir(), 'tree'), join(dir, 'tree'), { recursive: true });
    const reg = new ModelRegistry({
      dir,
      models: [
        { name: 'mlp', version: '1', preload: true },
        { name: 'tree', version: '1' },
      ],
    });
    expect(reg.preload().map((m) => m.name)).toEqual(['mlp']);
    expect(reg.stats.loads).toBe(1);
    reg.get('tree');
    expect(reg.stats.loads).toBe(2);
    expect(reg.list().map((e) => e.name)).toEqual(['mlp', 'tree']);
  });

  it('refuses a model whose bytes do not match checksums.txt, naming both digests', () => {
    const path = join(dir, 'mlp/1/model.onnx');
    const bytes = readFileSync(path);
    const expected = sha256Hex(bytes);
    bytes[bytes.length - 1]! ^= 0x01;
    writeFileSync(path, bytes);
    const reg = new ModelRegistry({ dir });
    const err = error(() => reg.load('mlp@1'));
    expect(err.code).toBe('MODEL_CHECKSUM_MISMATCH');
    expect(err.expected).toBe(expected);
    expect(err.actual).toBe(sha256Hex(bytes));
    expect(err.message).toContain(expected);
    expect(err.message).toContain(sha256Hex(bytes));
    expect(reg.stats.refused).toBe(1);
  });

  it('verifies on every load, not only the first', () => {
    const reg = new ModelRegistry({ dir });
    reg.load('mlp@1');
    writeFileSync(join(dir, 'mlp/1/sample_io.json'), '{}');
    expect(error(() => reg.load('mlp@1')).code).toBe('MODEL_CHECKSUM_MISMATCH');
  });

  it('refuses a model whose digest differs from the one pinned in configuration', () => {
    const pin = '0'.repeat(64);
    const reg = new ModelRegistry({ dir, models: [{ name: 'mlp', version: '1', sha256: pin }] });
    const err = error(() => reg.get('mlp'));
    expect(err.code).toBe('MODEL_DIGEST_PIN');
    expect(err.expected).toBe(pin);
  });

  it('refuses a model without checksums.txt unless untrusted models are allowed, then logs and counts', () => {
    unlinkSync(join(dir, 'mlp/1/checksums.txt'));
    expect(error(() => new ModelRegistry({ dir }).load('mlp@1')).code).toBe('MODEL_UNTRUSTED');
    const logged: string[] = [];
    const reg = new ModelRegistry({ dir, allowUntrusted: true, logger: (m) => logged.push(m) });
    const m = reg.load('mlp@1');
    expect(m.trusted).toBe(false);
    expect(reg.stats.untrustedLoads).toBe(1);
    expect(logged[0]).toMatch(/no checksums\.txt/);
  });

  it('refuses a model file outside the model directory, and a symlink that escapes it', () => {
    const outside = join(root, 'evil.onnx');
    cpSync(join(dir, 'mlp/1/model.onnx'), outside);
    const reg = new ModelRegistry({ dir });
    expect(error(() => reg.loadFile(outside)).code).toBe('MODEL_UNTRUSTED');
    mkdirSync(join(dir, 'evil/1'), { recursive: true });
    symlinkSync(outside, join(dir, 'evil/1/model.onnx'));
    writeFileSync(join(dir, 'evil/1/checksums.txt'), `${sha256Hex(readFileSync(outside))}  model.onnx\n`);
    expect(error(() => reg.load('evil@1')).code).toBe('MODEL_UNTRUSTED');
    // Inside the directory, loadFile is an ordinary verified load.
    expect(reg.loadFile(join(dir, 'mlp/1/model.onnx')).trusted).toBe(true);

    const logged: string[] = [];
    const lax = new ModelRegistry({ dir, allowUntrusted: true, logger: (m) => logged.push(m) });
    expect(lax.loadFile(outside).trusted).toBe(false);
    expect(lax.stats.untrustedLoads).toBe(1);
    expect(logged[0]).toMatch(/outside the model directory/);
  });
});
