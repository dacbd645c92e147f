/**
 * Build: the compiled, content-addressed bundle of one program.
 *
 * `id = sha256(canonical manifest)`. The manifest names every artifact by digest and size, so
 * the id covers the artifacts' bytes too: change one byte of a `.wasm` and the build id changes,
 * and a stored build whose artifact no longer matches its digest is detected on load.
 */

import { canonicalDigest, DIGEST_PATTERN, sha256Hex } from './canonical.js';
import { IntegrityError, ValidationError } from './errors.js';
import { assertSchema } from './schema.js';
import type { BackendName, Schema } from './types.js';

export interface ArtifactRef {
  readonly digest: string;
  readonly size: number;
  /** e.g. application/wasm, application/x-bpf-elf, application/json+bmv2, application/onnx */
  readonly mediaType: string;
}

export interface BuildManifest {
  /** Manifest format version; bump when the meaning of a field changes. */
  readonly v: 1;
  readonly kind: BackendName;
  readonly name: string;
  /** sha256 of the program as the user handed it in (source text, .wasm, .onnx, ELF). */
  readonly sourceDigest: string;
  readonly inputSchema: Schema;
  readonly outputSchema: Schema;
  /** Tools that produced the artifacts and their versions (clang, binaryen, thunderpac...). */
  readonly toolchain: Readonly<Record<string, string>>;
  readonly artifacts: Readonly<Record<string, ArtifactRef>>;
}

export interface Build {
  readonly id: string;
  readonly manifest: BuildManifest;
  readonly artifacts: ReadonlyMap<string, Uint8Array>;
}

export interface BuildInput {
  readonly kind: BackendName;
  readonly name: string;
  readonly source: Uint8Array;
  readonly artifacts: Readonly<Record<string, { readonly bytes: Uint8Array; readonly mediaType: string }>>;
  readonly inputSchema: Schema;
  readonly outputSchema: Schema;
  readonly toolchain?: Readonly<Record<string, string>>;
}

export function buildId(manifest: BuildManifest): string {
  return canonicalDigest(manifest);
}

export function createBuild(input: BuildInput): Build {
  assertSchema(input.inputSchema, 'inputSchema');
  assertSchema(input.outputSchema, 'outputSchema');
  const refs: Record<string, ArtifactRef> = {};
  const bytes = new Map<string, Uint8Array>();
  for (const name of Object.keys(input.artifacts).sort()) {
    const a = input.artifacts[name]!;
    refs[name] = { digest: sha256Hex(a.bytes), size: a.bytes.byteLength, mediaType: a.mediaType };
    bytes.set(name, a.bytes);
  }
  const manifest: BuildManifest = {
    v: 1,
    kind: input.kind,
    name: input.name,
    sourceDigest: sha256Hex(input.source),
    inputSchema: input.inputSchema,
    outputSchema: input.outputSchema,
    toolchain: { ...(input.toolchain ?? {}) },
    artifacts: refs,
  };
  return { id: buildId(manifest), manifest, artifacts: bytes };
}

/**
 * Re-derive a build from a manifest and artifact bytes (e.g. read back from the store),
 * checking every digest. `expectedId` is the id the caller looked it up by.
 */
export function openBuild(
  manifest: BuildManifest,
  artifacts: ReadonlyMap<string, Uint8Array>,
  expectedId?: string,
): Build {
  const id = buildId(manifest);
  if (expectedId !== undefined && id !== expectedId) {
    throw new IntegrityError(`build manifest does not hash to its id`, expectedId, id);
  }
  for (const [name, ref] of Object.entries(manifest.artifacts)) {
    if (!DIGEST_PATTERN.test(ref.digest)) {
      throw new ValidationError(
        'type',
        `manifest.artifacts.${name}.digest`,
        'sha256 hex',
        String(ref.digest),
      );
    }
    const bytes = artifacts.get(name);
    if (!bytes) throw new IntegrityError(`build ${id}: artifact '${name}' is missing`, ref.digest);
    const actual = sha256Hex(bytes);
    if (actual !== ref.digest) {
      throw new IntegrityError(
        `build ${id}: artifact '${name}' does not match its digest`,
        ref.digest,
        actual,
      );
    }
  }
  return { id, manifest, artifacts };
}

/** The one artifact a single-artifact build (a .wasm, a BPF object) carries under `name`. */
export function artifact(build: Build, name: string): Uint8Array {
  const bytes = build.artifacts.get(name);
  if (!bytes) throw new IntegrityError(`build ${build.id} has no artifact '${name}'`);
  return bytes;
}
