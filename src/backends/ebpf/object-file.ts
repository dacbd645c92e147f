/**
 * Reads a BPF object file for vetting: once, without blocking (a FIFO or device named as an
 * object must not hang the host), only a regular file, and no larger than the object limit.
 * Failures are BpfError EBPF_OPEN naming the path and errno, as libbpf's open would have been.
 */
import { closeSync, constants as fsConstants, fstatSync, openSync, readSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { BpfError } from './errors.js';
import { MAX_BPF_OBJECT_BYTES } from './object-vetting.js';

export function readObjectFile(path: string): Uint8Array {
  let fd: number;
  try {
    fd = openSync(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK | fsConstants.O_NOCTTY);
  } catch (err) {
    throw openError(path, err);
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) {
      throw new BpfError('EBPF_OPEN', `cannot open BPF object ${path}: not a regular file`, {
        errno: osConstants.errno.EINVAL,
        path,
      });
    }
    if (stat.size > MAX_BPF_OBJECT_BYTES) {
      throw new BpfError(
        'EBPF_OPEN',
        `cannot open BPF object ${path}: ${stat.size} bytes exceeds the ${MAX_BPF_OBJECT_BYTES}-byte limit`,
        { errno: osConstants.errno.EFBIG, path },
      );
    }
    // Read up to the limit plus one, whatever fstat said: a file that grows is still bounded.
    const buffer = Buffer.allocUnsafeSlow(Math.min(stat.size, MAX_BPF_OBJECT_BYTES) + 1);
    let length = 0;
    for (;;) {
      const got = readSync(fd, buffer, length, buffer.byteLength - length, null);
      if (got === 0) break;
      length += got;
      if (length === buffer.byteLength) {
        if (length > MAX_BPF_OBJECT_BYTES) {
          throw new BpfError(
            'EBPF_OPEN',
            `cannot open BPF object ${path}: larger than ${MAX_BPF_OBJECT_BYTES} bytes`,
            {
              errno: osConstants.errno.EFBIG,
              path,
            },
          );
        }
        break;
      }
    }
    return new Uint8Array(buffer.buffer, buffer.byteOffset, length);
  } catch (err) {
    throw err instanceof BpfError ? err : openError(path, err);
  } finally {
    closeSync(fd);
  }
}

function openError(path: string, err: unknown): BpfError {
  const code = (err as NodeJS.ErrnoException).code;
  const errno = code === undefined ? undefined : (osConstants.errno as Record<string, number>)[code];
  const reason = err instanceof Error ? err.message.replace(/^[A-Z]+: /, '') : String(err);
  return new BpfError('EBPF_OPEN', `cannot open BPF object ${path}: ${reason}`, { errno, path, cause: err });
}
