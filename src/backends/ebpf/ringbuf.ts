/**
 * RingBuffer: records a BPF program writes into a BPF_MAP_TYPE_RINGBUF map, delivered to a
 * JavaScript callback on the event loop; the wait happens on a native reader thread, never on
 * the loop (native/src/ringbuf.h).
 *
 * Back-pressure drops and counts instead of buffering without bound: when more than
 * `maxPending` records wait for JavaScript, further records are consumed from the ring and
 * counted in `stats().dropped`. Reservations that fail in the kernel because the ring itself is
 * full are for the BPF program to count (xdp_ratelimit counts them as RL_EVENTS_LOST).
 */
import { loadAddon } from './addon.js';
import type { NativeRingBuffer } from './addon.js';
import { type Codec, decode } from './codec.js';
import { BpfError, callNative } from './errors.js';
import type { BpfMap } from './map.js';

export interface RingBufferOptions {
  /** Records allowed to wait for the JS thread before new ones are dropped (default 65536). */
  readonly maxPending?: number;
  /** Do not keep the process alive just for this reader (like socket.unref()). */
  readonly unref?: boolean;
}

export interface RingBufferStats {
  readonly delivered: number;
  readonly dropped: number;
  readonly pending: number;
  readonly open: boolean;
}

export class RingBuffer {
  readonly #native: NativeRingBuffer;

  private constructor(native: NativeRingBuffer) {
    this.#native = native;
  }

  /** Reads raw records. A throwing callback surfaces as an uncaught exception; its batch's remaining records count as dropped. */
  static open(
    map: BpfMap<unknown, unknown>,
    onRecord: (record: Uint8Array) => void,
    options: RingBufferOptions = {},
  ): RingBuffer {
    if (map.info.typeName !== 'ringbuf') {
      throw new BpfError('EBPF_INVALID_ARG', `map '${map.name}' is ${map.info.typeName}, not a ring buffer`, {
        map: map.name,
      });
    }
    const addon = loadAddon();
    const fd = map.fd;
    const native = callNative(
      () =>
        new addon.RingBuffer(
          fd,
          (record) => onRecord(new Uint8Array(record.buffer, record.byteOffset, record.byteLength)),
          {
            ...(options.maxPending === undefined ? {} : { maxPending: options.maxPending }),
          },
        ),
    );
    if (options.unref === true) native.unref();
    return new RingBuffer(native);
  }

  /** Records decoded with `codec` (e.g. derived from the event struct's layout). */
  static openTyped<T>(
    map: BpfMap<unknown, unknown>,
    codec: Codec<T>,
    onRecord: (record: T) => void,
    options: RingBufferOptions = {},
  ): RingBuffer {
    return RingBuffer.open(map, (record) => onRecord(decode(codec, record)), options);
  }

  stats(): RingBufferStats {
    return this.#native.stats();
  }

  ref(): void {
    this.#native.ref();
  }

  unref(): void {
    this.#native.unref();
  }

  /** Stops the reader thread. Records already handed to the event loop are still delivered. */
  close(): void {
    this.#native.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
