/**
 * A WASI guest's standard streams for one execution, the same for the preview 1 host (wasi.ts)
 * and the preview 2 host (preview2.ts): stdin reads the execution's input; stdout collects the
 * output, and a write past maxOutputBytes stops the guest (the `thunderpacOutputLimit` marker
 * abi.ts reads); stderr is kept up to WASI_MAX_STDERR_BYTES (wasi.ts), the rest dropped.
 *
 * Stringified into the worker script beside wasi.ts (see worker.ts): `createGuestStdio` must
 * stay self-contained. Callers hand it to createWasi rather than createWasi calling it by name,
 * as with seeded-random.ts: a bundler may rename imported bindings inside function bodies.
 */

export interface GuestStdio {
  /** Start an execution: stdin = input, stdout bounded by maxOutputBytes, stderr empty. */
  begin(input: Uint8Array, maxOutputBytes: number): void;
  /** Copy the next stdin bytes into dst; the count (0 at the end). */
  readStdin(dst: Uint8Array): number;
  /** Bytes of stdin not read yet. */
  stdinLeft(): number;
  /** Append to stdout; throws the output-limit marker past maxOutputBytes. */
  writeStdout(bytes: Uint8Array): void;
  /** Append to stderr, up to its cap; what is over it is dropped. */
  writeStderr(bytes: Uint8Array): void;
  /** Hand back what the guest wrote and let go of the input. */
  end(): { stdout: Uint8Array; stderr: Uint8Array };
}

export function createGuestStdio(): GuestStdio {
  const STDERR_CAP = 64 * 1024; // WASI_MAX_STDERR_BYTES; a literal, as this function is stringified
  let stdin: Uint8Array = new Uint8Array(0);
  let inPos = 0;
  let out: Uint8Array[] = [];
  let outLen = 0;
  let maxOut = 0;
  let err: Uint8Array[] = [];
  let errLen = 0;
  const join = (parts: Uint8Array[], n: number): Uint8Array => {
    const all = new Uint8Array(n);
    let p = 0;
    for (const c of parts) {
      all.set(c, p);
      p += c.byteLength;
    }
    return all;
  };
  return {
    begin(input, maxOutputBytes) {
      stdin = input;
      inPos = 0;
      out = [];
      outLen = 0;
      maxOut = maxOutputBytes;
      err = [];
      errLen = 0;
    },
    readStdin(dst) {
      const k = Math.min(dst.byteLength, stdin.byteLength - inPos);
      dst.set(stdin.subarray(inPos, inPos + k));
      inPos += k;
      return k;
    },
    stdinLeft() {
      return stdin.byteLength - inPos;
    },
    writeStdout(bytes) {
      if (bytes.byteLength === 0) return;
      if (outLen + bytes.byteLength > maxOut) {
        const e = new Error(`stdout passed ${maxOut} bytes`);
        Object.defineProperty(e, 'thunderpacOutputLimit', { value: outLen + bytes.byteLength });
        throw e;
      }
      out.push(bytes.slice()); // the guest's memory changes under the view: keep a copy
      outLen += bytes.byteLength;
    },
    writeStderr(bytes) {
      const k = Math.min(bytes.byteLength, STDERR_CAP - errLen);
      if (k <= 0) return;
      err.push(bytes.slice(0, k));
      errLen += k;
    },
    end() {
      const r = { stdout: join(out, outLen), stderr: join(err, errLen) };
      stdin = new Uint8Array(0);
      out = [];
      err = [];
      return r;
    },
  };
}
