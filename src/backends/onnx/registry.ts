/**
 * The model registry: models/<name>/<version>/{model.onnx, checksums.txt, sample_io.json,
 * VAL_REPORT.json}, loaded by `name@version` (or `name`, the highest version).
 *
 * Trust rules, checked on every load from disk (a cached model was verified when it was read):
 *   - checksums.txt (sha256sum format) must list model.onnx, and every file it lists must match;
 *     a mismatch is a ModelSecurityError naming the expected and the actual digest;
 *   - a configured `sha256` pin must match too (checksums.txt sits next to the model, so
 *     whoever can swap the model can swap it: the pin, kept in configuration, cannot be);
 *   - a model without checksums.txt, or a file outside the model directory (symlinks resolved),
 *     is untrusted: refused unless `allowUntrusted`, in which case it is loaded, logged
 *     (logger + the thunderpac:onnx:untrusted-model channel) and counted.
 */

import { channel } from 'node:diagnostics_channel';
import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import type { Build } from '../../runtime/build.js';
import { sha256Hex } from '../../runtime/canonical.js';
import { NotFoundError, ValidationError } from '../../runtime/errors.js';
import { jsonDepth, MAX_JSON_DEPTH } from '../../runtime/json-depth.js';
import { packagePath } from '../../runtime/package-root.js';
import { createOnnxBuild } from './backend.js';
import { ModelSecurityError } from './errors.js';
import { tensorsFromJson } from './tensors-json.js';
import type { OnnxSessionOptions } from './ort.js';

export const UNTRUSTED_MODEL_CHANNEL = 'thunderpac:onnx:untrusted-model';
const untrustedChannel = channel(UNTRUSTED_MODEL_CHANNEL);

export const MODEL_FILE = 'model.onnx';
export const CHECKSUMS_FILE = 'checksums.txt';
export const SAMPLE_FILE = 'sample_io.json';
export const REPORT_FILE = 'VAL_REPORT.json';

const SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;

/** models/ of this package: the models it ships. */
export function defaultModelDir(): string {
  return packagePath('models');
}

export interface ModelConfig {
  readonly name: string;
  readonly version: string;
  /** Load at registry start instead of on first use. */
  readonly preload?: boolean;
  /** Expected sha256 of model.onnx, kept outside the model directory. */
  readonly sha256?: string;
}

export interface RegistryOptions {
  /** The model directory (models/ of this repository by default). */
  readonly dir: string;
  /** The models this registry serves; absent: every name/version found under `dir`. */
  readonly models?: readonly ModelConfig[];
  readonly allowUntrusted?: boolean;
  /** Where untrusted-model warnings go (default: process.emitWarning). */
  readonly logger?: (message: string) => void;
}

export interface SampleTensorJson {
  readonly dtype: string;
  readonly shape: number[];
  readonly data: number[];
}

export interface SampleIo {
  readonly inputs: Record<string, SampleTensorJson>;
  readonly outputs: Record<string, SampleTensorJson>;
}

export interface LoadedModel {
  readonly name: string;
  readonly version: string;
  /** Directory of the model (absent for a file loaded from outside the registry). */
  readonly dir: string | null;
  readonly path: string;
  readonly bytes: Uint8Array;
  /** sha256 hex of model.onnx. */
  readonly digest: string;
  readonly trusted: boolean;
  readonly sample: SampleIo | null;
}

export interface RegistryStats {
  loads: number;
  untrustedLoads: number;
  refused: number;
}

export interface ModelEntry {
  readonly name: string;
  readonly version: string;
  readonly dir: string;
}

export function parseModelRef(ref: string): { name: string; version: string | undefined } {
  const at = ref.indexOf('@');
  const name = at < 0 ? ref : ref.slice(0, at);
  const version = at < 0 ? undefined : ref.slice(at + 1);
  if (!SEGMENT.test(name)) throw new ValidationError('type', 'model', 'a model name [A-Za-z0-9_.-]', ref);
  if (version !== undefined && !SEGMENT.test(version)) {
    throw new ValidationError('type', 'model.version', 'a version [A-Za-z0-9_.-]', ref);
  }
  return { name, version };
}

/** Versions compare numerically where they are numbers ("10" > "9"), else as strings. */
function compareVersions(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

export function parseChecksums(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]{64}) [ *]?(\S+)\s*$/.exec(line.trim());
    if (m) out.set(m[2]!, m[1]!);
  }
  return out;
}

/**
 * sample_io.json checked field by field: checksums.txt need not cover it, so it is input like
 * any other. A bad one is a ValidationError whose path names the file and the JSON path.
 */
export function parseSampleIo(text: string, file: string): SampleIo {
  const depth = jsonDepth(text);
  if (depth > MAX_JSON_DEPTH) {
    throw new ValidationError(
      'size',
      file,
      `JSON nested at most ${MAX_JSON_DEPTH} deep`,
      `deeper than ${MAX_JSON_DEPTH}`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ValidationError('type', file, 'JSON', `invalid JSON (${(err as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ValidationError(
      'type',
      file,
      'an object {inputs, outputs}',
      Array.isArray(json) ? 'an array' : String(json),
    );
  }
  for (const part of ['inputs', 'outputs'] as const) {
    const tensors = (json as Record<string, unknown>)[part];
    if (tensors === undefined) throw new ValidationError('missing', `${file}: ${part}`, 'tensors', 'nothing');
    // tensorsFromJson checks every field of every tensor and names the first bad one.
    const parsed = tensorsFromJson(tensors, `${file}: ${part}`);
    for (const [name, t] of Object.entries(parsed)) {
      const elements = t.shape.reduce((a, b) => a * b, 1);
      if (t.data.length !== elements) {
        throw new ValidationError(
          'size',
          `${file}: ${part}.${name}.data`,
          `${elements} elements (shape ${JSON.stringify(t.shape)})`,
          `${t.data.length}`,
        );
      }
    }
  }
  return json as SampleIo;
}

export class ModelRegistry {
  readonly dir: string;
  readonly stats: RegistryStats = { loads: 0, untrustedLoads: 0, refused: 0 };
  readonly #realDir: string;
  readonly #config: readonly ModelConfig[] | undefined;
  readonly #allowUntrusted: boolean;
  readonly #log: (message: string) => void;
  readonly #cache = new Map<string, LoadedModel>();
  readonly #builds = new Map<string, Promise<Build>>();

  constructor(options: RegistryOptions) {
    this.dir = resolve(options.dir);
    this.#realDir = existsSync(this.dir) ? realpathSync(this.dir) : this.dir;
    this.#config = options.models;
    this.#allowUntrusted = options.allowUntrusted ?? false;
    this.#log = options.logger ?? ((m) => process.emitWarning(m, 'ThunderpacUntrustedModel'));
    for (const m of options.models ?? []) parseModelRef(`${m.name}@${m.version}`);
  }

  /** Every model this registry serves, sorted by name then version. */
  list(): ModelEntry[] {
    if (this.#config) {
      return this.#config.map((m) => ({
        name: m.name,
        version: m.version,
        dir: join(this.dir, m.name, m.version),
      }));
    }
    const out: ModelEntry[] = [];
    if (!existsSync(this.dir)) return out;
    for (const name of readdirSync(this.dir).sort()) {
      if (!SEGMENT.test(name) || !statSync(join(this.dir, name)).isDirectory()) continue;
      const versions = readdirSync(join(this.dir, name))
        .filter((v) => SEGMENT.test(v) && existsSync(join(this.dir, name, v, MODEL_FILE)))
        .sort(compareVersions);
      for (const version of versions) out.push({ name, version, dir: join(this.dir, name, version) });
    }
    return out;
  }

  /** `name` → its highest configured version; `name@version` → checked to be served. */
  resolve(ref: string): ModelEntry {
    const { name, version } = parseModelRef(ref);
    const candidates = this.list().filter(
      (e) => e.name === name && (version === undefined || e.version === version),
    );
    const entry = candidates.at(-1);
    if (!entry) throw new NotFoundError('model', ref);
    return entry;
  }

  /** Load every model configured with `preload: true` (or all, when `all`). */
  preload(all = false): LoadedModel[] {
    const wanted = this.#config ? this.#config.filter((m) => all || m.preload) : all ? this.list() : [];
    return wanted.map((m) => this.get(`${m.name}@${m.version}`));
  }

  /** The model, read and verified on first use and cached afterwards (lazy load). */
  get(ref: string): LoadedModel {
    const entry = this.resolve(ref);
    const key = `${entry.name}@${entry.version}`;
    let m = this.#cache.get(key);
    if (!m) {
      m = this.load(key);
      this.#cache.set(key, m);
    }
    return m;
  }

  /** Read the model from disk and verify it, every time (no cache). */
  load(ref: string): LoadedModel {
    const entry = this.resolve(ref);
    const label = `${entry.name}@${entry.version}`;
    const modelPath = join(entry.dir, MODEL_FILE);
    this.#checkInside(modelPath, label);
    const bytes = readFileSync(modelPath);
    const digest = sha256Hex(bytes);
    const pin = this.#config?.find((c) => c.name === entry.name && c.version === entry.version)?.sha256;
    if (pin !== undefined && pin !== digest) {
      this.stats.refused++;
      throw new ModelSecurityError(
        'MODEL_DIGEST_PIN',
        label,
        `model ${label}: sha256 of ${MODEL_FILE} is ${digest}, configuration pins ${pin}`,
        pin,
        digest,
      );
    }
    const checksumsPath = join(entry.dir, CHECKSUMS_FILE);
    let trusted = true;
    if (!existsSync(checksumsPath)) {
      trusted = false;
      this.#untrusted(label, `model ${label} has no ${CHECKSUMS_FILE}`);
    } else {
      const sums = parseChecksums(readFileSync(checksumsPath, 'utf8'));
      if (!sums.has(MODEL_FILE)) {
        trusted = false;
        this.#untrusted(label, `model ${label}: ${CHECKSUMS_FILE} does not list ${MODEL_FILE}`);
      }
      for (const [file, expected] of sums) {
        const path = join(entry.dir, file);
        this.#checkInside(path, label);
        const actual =
          file === MODEL_FILE ? digest : existsSync(path) ? sha256Hex(readFileSync(path)) : 'missing';
        if (actual !== expected) {
          this.stats.refused++;
          throw new ModelSecurityError(
            'MODEL_CHECKSUM_MISMATCH',
            label,
            `model ${label}: ${file} has sha256 ${actual}, ${CHECKSUMS_FILE} expects ${expected}`,
            expected,
            actual,
          );
        }
      }
    }
    this.stats.loads++;
    const samplePath = join(entry.dir, SAMPLE_FILE);
    const sample = existsSync(samplePath)
      ? parseSampleIo(readFileSync(samplePath, 'utf8'), samplePath)
      : null;
    return {
      name: entry.name,
      version: entry.version,
      dir: entry.dir,
      path: modelPath,
      bytes,
      digest,
      trusted,
      sample,
    };
  }

  /**
   * The onnx build of a model (cached per model digest and session options). Its name is
   * `name@version`; its manifest carries the model digest and the session options.
   */
  build(ref: string, options?: Partial<OnnxSessionOptions>): Promise<Build> {
    const m = this.get(ref);
    return this.buildOf(m, options);
  }

  buildOf(m: LoadedModel, options?: Partial<OnnxSessionOptions>): Promise<Build> {
    const key = `${m.digest}:${JSON.stringify(options ?? {})}`;
    let b = this.#builds.get(key);
    if (!b) {
      b = createOnnxBuild(m.bytes, {
        name: `${m.name}@${m.version}`,
        ...(options && { sessionOptions: options }),
      });
      this.#builds.set(key, b);
      b.catch(() => this.#builds.delete(key));
    }
    return b;
  }

  /** A model file named by path: trusted only inside the model directory with a checksum. */
  loadFile(path: string): LoadedModel {
    const abs = resolve(path);
    const real = existsSync(abs) ? realpathSync(abs) : abs;
    if (real.startsWith(this.#realDir + sep)) {
      const rel = real.slice(this.#realDir.length + 1).split(sep);
      if (rel.length === 3 && rel[2] === MODEL_FILE) return this.load(`${rel[0]}@${rel[1]}`);
    }
    this.#untrusted(abs, `model file ${abs} is outside the model directory ${this.dir}`);
    if (!existsSync(abs)) throw new NotFoundError('model file', abs);
    const bytes = readFileSync(abs);
    this.stats.loads++;
    return {
      name: abs,
      version: 'untrusted',
      dir: null,
      path: abs,
      bytes,
      digest: sha256Hex(bytes),
      trusted: false,
      sample: null,
    };
  }

  #checkInside(path: string, label: string): void {
    const real = existsSync(path) ? realpathSync(path) : resolve(path);
    if (!real.startsWith(this.#realDir + sep)) {
      this.#untrusted(label, `model ${label}: ${path} resolves to ${real}, outside ${this.dir}`);
    }
  }

  #untrusted(model: string, why: string): void {
    if (!this.#allowUntrusted) {
      this.stats.refused++;
      throw new ModelSecurityError(
        'MODEL_UNTRUSTED',
        model,
        `${why}; refused (untrusted models are not allowed)`,
      );
    }
    this.stats.untrustedLoads++;
    this.#log(`${why}; loading it because untrusted models are allowed`);
    if (untrustedChannel.hasSubscribers) untrustedChannel.publish({ model, reason: why });
  }
}
