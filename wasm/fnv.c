/*
 * A C guest for the thunderpac guest ABI, built with clang + wasi-libc (see Makefile).
 *
 * Entries, each NAME(ptr, len) -> (out_ptr << 32) | out_len, negative = guest error:
 *   fnv  - summary of the input bytes, 1036 bytes little-endian:
 *            u64 FNV-1a 64 hash | u32 byte count | u32 histogram[256]
 *   sort - the input bytes in ascending order (wasi-libc's qsort: proves libc links in)
 *   fib  - input u32 n (little-endian, 4 bytes), output u64 fib(n) computed by naive
 *          recursion: a pure compute kernel for benchmarks. -1 = input is not 4 bytes,
 *          -2 = n > 92 (fib(93) overflows 63 bits).
 *
 * No imports: the guest uses only the parts of libc (memset, memcpy, qsort) that need no WASI calls.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT(name) __attribute__((export_name(name)))

/* Defined by wasm-ld: first byte after static data and the stack. */
extern unsigned char __heap_base;
static uintptr_t heap_top;

/* Bump allocator: one instance serves one execution, so nothing is ever freed. Traps when
   memory cannot grow (the host would otherwise write the input over address 0). */
EXPORT("alloc") void *alloc(int32_t len) {
  if (heap_top == 0) heap_top = (uintptr_t)&__heap_base;
  uintptr_t p = (heap_top + 7u) & ~(uintptr_t)7u;
  uintptr_t end = p + (uint32_t)len;
  uintptr_t have = __builtin_wasm_memory_size(0) * 65536u;
  if (end < p) __builtin_trap();
  if (end > have) {
    size_t pages = (end - have + 65535u) / 65536u;
    if (__builtin_wasm_memory_grow(0, pages) == (size_t)-1) __builtin_trap();
  }
  heap_top = end;
  return (void *)p;
}

static int64_t pack(const void *ptr, uint32_t len) {
  return (int64_t)(((uint64_t)(uintptr_t)ptr << 32) | len);
}

static void put_u32(uint8_t *out, uint32_t v) {
  for (int i = 0; i < 4; i++) out[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *out, uint64_t v) {
  for (int i = 0; i < 8; i++) out[i] = (uint8_t)(v >> (8 * i));
}

EXPORT("fnv") int64_t fnv(const uint8_t *in, int32_t len) {
  uint32_t hist[256];
  memset(hist, 0, sizeof hist);
  uint64_t h = 0xcbf29ce484222325ull;
  for (int32_t i = 0; i < len; i++) {
    h ^= in[i];
    h *= 0x100000001b3ull;
    hist[in[i]]++;
  }
  uint8_t *out = alloc(8 + 4 + sizeof hist);
  put_u64(out, h);
  put_u32(out + 8, (uint32_t)len);
  /* wasm32 is little-endian, so the histogram's bytes are already in output order */
  memcpy(out + 12, hist, sizeof hist);
  return pack(out, 8 + 4 + sizeof hist);
}

static int cmp_u8(const void *a, const void *b) {
  return (int)*(const uint8_t *)a - (int)*(const uint8_t *)b;
}

EXPORT("sort") int64_t sort(const uint8_t *in, int32_t len) {
  uint8_t *out = alloc(len);
  memcpy(out, in, (size_t)len);
  qsort(out, (size_t)len, 1, cmp_u8);
  return pack(out, (uint32_t)len);
}

static uint64_t fib_rec(uint32_t n) {
  return n < 2 ? n : fib_rec(n - 1) + fib_rec(n - 2);
}

EXPORT("fib") int64_t fib(const uint8_t *in, int32_t len) {
  if (len != 4) return -1;
  uint32_t n = (uint32_t)in[0] | (uint32_t)in[1] << 8 | (uint32_t)in[2] << 16 | (uint32_t)in[3] << 24;
  if (n > 92) return -2;
  uint8_t *out = alloc(8);
  put_u64(out, fib_rec(n));
  return pack(out, 8);
}
