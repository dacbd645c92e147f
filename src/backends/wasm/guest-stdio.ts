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
  // Each stream is one buffer grown by doubling, not a list of the guest's writes: a guest
  // making a million one-byte writes would otherwise hold a million small objects on the
  // engine heap (hundreds of bytes each), far past what its output bytes are allowed.
  const sink = () => {
    let buf = new Uint8Array(256);
    let len = 0;
    return {
      get length() {
        return len;
      },
      append(bytes: Uint8Array): void {
        if (len + bytes.byteLength > buf.byteLength) {
          let size = buf.byteLength * 2;
          while (size < len + bytes.byteLength) size *= 2;
          const next = new Uint8Array(size);
          next.set(buf.subarray(0, len));
          buf = next;
        }
        buf.set(bytes, len); // a copy: the guest's memory changes under the view
        len += bytes.byteLength;
      },
      take(): Uint8Array {
        const all = buf.slice(0, len);
        buf = new Uint8Array(256);
        len = 0;
        return all;
      },
    };
  };
  let stdin: Uint8Array = new Uint8Array(0);
  let inPos = 0;
  let out = sink();
  let maxOut = 0;
  let err = sink();
  return {
    begin(input, maxOutputBytes) {
      stdin = input;
      inPos = 0;
      out = sink();
      maxOut = maxOutputBytes;
      err = sink();
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
      if (out.length + bytes.byteLength > maxOut) {
        const e = new Error(`stdout passed ${maxOut} bytes`);
        Object.defineProperty(e, 'thunderpacOutputLimit', { value: out.length + bytes.byteLength });
        throw e;
      }
      out.append(bytes);
    },
    writeStderr(bytes) {
      const k = Math.min(bytes.byteLength, STDERR_CAP - err.length);
      if (k <= 0) return;
      err.append(bytes.subarray(0, k));
    },
    end() {
      const r = { stdout: out.take(), stderr: err.take() };
      stdin = new Uint8Array(0);
      return r;
    },
  };
}
