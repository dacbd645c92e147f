/**
 * v1model's stateful externs as the switch holds them: counter and register arrays, meters
 * (trTCM, RFC 2698, on an injectable clock) and the `random` generator — their cells, how the
 * data plane updates them, and the control-plane reads and writes with their range checks.
 */

import { P4RuntimeError } from './errors.js';

// biome-ignore lint/suspicious/noExplicitAny: BMv2 JSON is validated as it is compiled
type J = any;

export interface MeterConfig {
  /** Committed and peak rates in units (packets or bytes) per second, bursts in units. */
  readonly cir: number;
  readonly cburst: number;
  readonly pir: number;
  readonly pburst: number;
}

export interface Counter {
  readonly name: string;
  readonly packets: number[];
  readonly bytes: number[];
}

export interface Register {
  readonly name: string;
  readonly width: number;
  readonly values: bigint[];
}

export interface Meter {
  readonly name: string;
  readonly byBytes: boolean;
  readonly configs: (MeterConfig | undefined)[];
  readonly state: { tc: number; tp: number; last: bigint }[];
}

const full = (w: number): bigint => (1n << BigInt(w)) - 1n;

/** An extern by its full name, or by its last dotted part (`MyIngress.c` as `c`). */
export function externNamed<T>(map: ReadonlyMap<string, T>, name: string, kind: string): T {
  const x = map.get(name) ?? [...map.entries()].find(([k]) => k.split('.').pop() === name)?.[1];
  if (!x)
    throw new P4RuntimeError(
      'P4_EXTERN_UNKNOWN',
      `no ${kind} '${name}' (${[...map.keys()].join(', ') || 'none declared'})`,
    );
  return x;
}

export class Externs {
  readonly counters = new Map<string, Counter>();
  readonly registers = new Map<string, Register>();
  readonly meters = new Map<string, Meter>();
  readonly #clock: () => bigint;
  #rng: number;

  constructor(j: J, clockNs: () => bigint, seed: number) {
    this.#clock = clockNs;
    this.#rng = seed >>> 0 || 0x9e3779b9;
    for (const c of (j.counter_arrays ?? []) as J[]) {
      const n = c.is_direct ? 0 : Number(c.size);
      this.counters.set(c.name, {
        name: c.name,
        packets: new Array(n).fill(0),
        bytes: new Array(n).fill(0),
      });
    }
    for (const r of (j.register_arrays ?? []) as J[]) {
      this.registers.set(r.name, {
        name: r.name,
        width: Number(r.bitwidth),
        values: new Array(Number(r.size)).fill(0n),
      });
    }
    for (const m of (j.meter_arrays ?? []) as J[]) {
      const n = m.is_direct ? 0 : Number(m.size);
      this.meters.set(m.name, {
        name: m.name,
        byBytes: m.type === 'bytes',
        configs: new Array(n).fill(undefined),
        state: [],
      });
    }
  }

  // ------------------------------------------------------------ data plane

  random(): number {
    // xorshift32: deterministic per seed, so executions replay.
    let x = this.#rng;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#rng = x >>> 0;
    return this.#rng;
  }

  meterColor(m: Meter, index: number, packetBytes: number): number {
    const cfg = m.configs[index];
    if (!cfg) return 0; // an unconfigured meter marks everything green, as BMv2's does
    const now = this.#clock();
    let st = m.state[index];
    if (!st) {
      st = { tc: cfg.cburst, tp: cfg.pburst, last: now };
      m.state[index] = st;
    }
    const dt = Number(now - st.last) / 1e9;
    st.last = now;
    st.tc = Math.min(cfg.cburst, st.tc + dt * cfg.cir);
    st.tp = Math.min(cfg.pburst, st.tp + dt * cfg.pir);
    const size = m.byBytes ? packetBytes : 1;
    // RFC 2698 trTCM, color-blind.
    if (st.tp < size) return 2;
    if (st.tc < size) {
      st.tp -= size;
      return 1;
    }
    st.tp -= size;
    st.tc -= size;
    return 0;
  }

  // ------------------------------------------------------------ control plane

  readCounter(name: string, index: number): { packets: number; bytes: number } {
    const c = externNamed(this.counters, name, 'counter');
    if (!Number.isInteger(index) || index < 0 || index >= c.packets.length) {
      throw new P4RuntimeError(
        'P4_INDEX_RANGE',
        `counter ${c.name} has ${c.packets.length} cells; index ${index} is out of range`,
      );
    }
    return { packets: c.packets[index]!, bytes: c.bytes[index]! };
  }

  readRegister(name: string, index: number): bigint {
    const r = externNamed(this.registers, name, 'register');
    if (!Number.isInteger(index) || index < 0 || index >= r.values.length) {
      throw new P4RuntimeError(
        'P4_INDEX_RANGE',
        `register ${r.name} has ${r.values.length} cells; index ${index} is out of range`,
      );
    }
    return r.values[index]!;
  }

  writeRegister(name: string, index: number, value: bigint | number): void {
    const r = externNamed(this.registers, name, 'register');
    if (!Number.isInteger(index) || index < 0 || index >= r.values.length) {
      throw new P4RuntimeError(
        'P4_INDEX_RANGE',
        `register ${r.name} has ${r.values.length} cells; index ${index} is out of range`,
      );
    }
    const v = BigInt(value);
    if (v < 0n || v > full(r.width))
      throw new P4RuntimeError(
        'P4_VALUE_WIDTH',
        `register ${r.name} holds bit<${r.width}>; ${v} does not fit`,
      );
    r.values[index] = v;
  }

  configureMeter(name: string, index: number, config: MeterConfig): void {
    const m = externNamed(this.meters, name, 'meter');
    if (!Number.isInteger(index) || index < 0 || (m.configs.length > 0 && index >= m.configs.length)) {
      throw new P4RuntimeError('P4_INDEX_RANGE', `meter ${m.name}: index ${index} is out of range`);
    }
    m.configs[index] = config;
    m.state[index] = undefined as never;
  }
}
