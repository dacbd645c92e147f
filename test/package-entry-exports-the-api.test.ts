import { describe, expect, it } from 'vitest';
import * as tp from '../src/index.js';

describe('package entry', () => {
  it('exports the embedding API, the runtime nouns and each backend', () => {
    expect(typeof tp.Thunderpac.open).toBe('function');
    expect(typeof tp.Executor).toBe('function');
    expect(typeof tp.Sandbox).toBe('function');
    expect(typeof tp.Store).toBe('function');
    expect(typeof tp.wasm.createWasmBuild).toBe('function');
    expect(typeof tp.ebpf.createBpfBuild).toBe('function');
    expect(typeof tp.onnx).toBe('object');
    expect(typeof tp.p4.createP4Build).toBe('function');
    expect(typeof tp.p4c.compileP4).toBe('function');
    expect(tp.EVENT_NAMES.executionStart).toBe('thunderpac:execution:start');
    expect(new tp.ValidationError('type', 'input', 'x', 'y')).toBeInstanceOf(tp.ThunderpacError);
  });
});
