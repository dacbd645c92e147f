/*
 * A C guest for the thunderpac guest ABI (see Makefile): the feature extractor of the
 * provenance DAG example (a P4 router → this guest → the ONNX Iris classifier models/mlp@1,
 * test/dag-*.test.ts and `thunderpac dag run`).
 *
 * Entry, NAME(ptr, len) -> (out_ptr << 32) | out_len, negative = guest error:
 *   features - input: an Ethernet frame (what a P4 program emitted); output: 4 float32
 *              little-endian (16 bytes), scaled into the ranges of the Iris measurements the
 *              model was trained on (cm):
 *                f0 = 4.0 + (ipv4.ttl mod 40) / 10              (sepal length)
 *                f1 = 2.0 + (ipv4.totalLen mod 25) / 10          (sepal width)
 *                f2 = 1.0 + (L4 destination port mod 60) / 10    (petal length; 0 without TCP/UDP)
 *                f3 = 0.1 + (ipv4.protocol mod 25) / 10          (petal width)
 *              -1 = shorter than an Ethernet + IPv4 header, -2 = not IPv4 (etherType 0x0800).
 *
 * Integer arithmetic, then one float division per feature: the same frame always gives the
 * same bits. No imports.
 */

#include <stddef.h>
#include <stdint.h>

#define EXPORT(name) __attribute__((export_name(name)))

extern unsigned char __heap_base;
static uintptr_t heap_top;

/* Bump allocator: one instance serves one execution, so nothing is ever freed. */
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

static uint32_t be16(const uint8_t *p) { return ((uint32_t)p[0] << 8) | p[1]; }

EXPORT("features") int64_t features(const uint8_t *in, int32_t len) {
  if (len < 14 + 20) return -1;
  if (be16(in + 12) != 0x0800) return -2;
  const uint8_t *ip = in + 14;
  uint32_t ihl = (uint32_t)(ip[0] & 0x0f) * 4u;
  uint32_t total = be16(ip + 2);
  uint32_t ttl = ip[8];
  uint32_t proto = ip[9];
  uint32_t dport = 0;
  if ((proto == 6 || proto == 17) && ihl >= 20 && (uint32_t)len >= 14u + ihl + 4u)
    dport = be16(ip + ihl + 2);
  float *out = alloc(16);
  out[0] = 4.0f + (float)(ttl % 40u) / 10.0f;
  out[1] = 2.0f + (float)(total % 25u) / 10.0f;
  out[2] = 1.0f + (float)(dport % 60u) / 10.0f;
  out[3] = 0.1f + (float)(proto % 25u) / 10.0f;
  return pack(out, 16);
}
