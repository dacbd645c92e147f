/*
 * Compute kernels for the fuel-metering benchmark and the "instrumentation does not change
 * results" tests, built like fnv.c (clang + wasi-libc, no imports).
 *
 * Every entry reads its parameters from the input as little-endian u32s (missing ones read
 * as 0) and returns a small deterministic digest of its work, so metered and unmetered runs
 * can be compared byte for byte:
 *   fib     n                  -> u64 fib(n % 40) by naive recursion (call-heavy)
 *   hash    rounds             -> u64 FNV-1a 64 over the input bytes, `rounds` times (tight loop)
 *   matmul  n, seed            -> f64 sum of C = A * B for n x n (n <= 64) doubles from an LCG
 *   sort    n, seed            -> u64 digest of n (<= 16384) i32s from an LCG after quicksort
 *   interp  iterations         -> i64 result of a small stack-machine program (a loop summing
 *                                 i * i % 7) run by a switch-dispatch interpreter
 *   collatz count, start       -> u64 total Collatz steps over `count` odd numbers from
 *                                 start % 1000000 (a data-dependent loop)
 */

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define EXPORT(name) __attribute__((export_name(name)))

extern unsigned char __heap_base;
static uintptr_t heap_top;

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

static uint32_t param(const uint8_t *in, int32_t len, int i) {
  if (len < 4 * (i + 1)) return 0;
  const uint8_t *p = in + 4 * i;
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int64_t out_u64(uint64_t v) {
  uint8_t *out = alloc(8);
  memcpy(out, &v, 8);
  return (int64_t)(((uint64_t)(uintptr_t)out << 32) | 8u);
}

static uint64_t fib_rec(uint32_t n) { return n < 2 ? n : fib_rec(n - 1) + fib_rec(n - 2); }

EXPORT("fib") int64_t fib(const uint8_t *in, int32_t len) { return out_u64(fib_rec(param(in, len, 0) % 40)); }

EXPORT("hash") int64_t hash(const uint8_t *in, int32_t len) {
  uint32_t rounds = param(in, len, 0);
  uint64_t h = 0xcbf29ce484222325ull;
  for (uint32_t r = 0; r < rounds; r++)
    for (int32_t i = 0; i < len; i++) {
      h ^= in[i];
      h *= 0x100000001b3ull;
    }
  return out_u64(h);
}

static uint32_t lcg(uint32_t *s) {
  *s = *s * 1664525u + 1013904223u;
  return *s;
}

static double A[64 * 64], B[64 * 64], C[64 * 64];

EXPORT("matmul") int64_t matmul(const uint8_t *in, int32_t len) {
  uint32_t n = param(in, len, 0) % 65, seed = param(in, len, 1);
  for (uint32_t i = 0; i < n * n; i++) {
    A[i] = (double)(lcg(&seed) % 1000) / 7.0;
    B[i] = (double)(lcg(&seed) % 1000) / 13.0;
  }
  for (uint32_t i = 0; i < n; i++)
    for (uint32_t j = 0; j < n; j++) {
      double s = 0;
      for (uint32_t k = 0; k < n; k++) s += A[i * n + k] * B[k * n + j];
      C[i * n + j] = s;
    }
  double sum = 0;
  for (uint32_t i = 0; i < n * n; i++) sum += C[i];
  uint64_t bits;
  memcpy(&bits, &sum, 8);
  return out_u64(bits);
}

static int32_t V[16384];

static void quicksort(int32_t *a, int32_t lo, int32_t hi) {
  while (lo < hi) {
    int32_t p = a[(lo + hi) / 2], i = lo, j = hi;
    while (i <= j) {
      while (a[i] < p) i++;
      while (a[j] > p) j--;
      if (i <= j) {
        int32_t t = a[i];
        a[i++] = a[j];
        a[j--] = t;
      }
    }
    if (j - lo < hi - i) {
      quicksort(a, lo, j);
      lo = i;
    } else {
      quicksort(a, i, hi);
      hi = j;
    }
  }
}

EXPORT("sort") int64_t sort(const uint8_t *in, int32_t len) {
  uint32_t n = param(in, len, 0) % 16385, seed = param(in, len, 1);
  for (uint32_t i = 0; i < n; i++) V[i] = (int32_t)lcg(&seed);
  quicksort(V, 0, (int32_t)n - 1);
  uint64_t h = 0;
  for (uint32_t i = 0; i < n; i++) h = h * 31 + (uint32_t)V[i];
  return out_u64(h);
}

enum { PUSH, LOAD, STORE, ADD, MUL, MOD, LT, JZ, JMP, HALT };

EXPORT("interp") int64_t interp(const uint8_t *in, int32_t len) {
  /* vars: 0 = i, 1 = sum, 2 = limit.  while (i < limit) { sum += i * i % 7; i += 1 } */
  static const int32_t prog[] = {
      LOAD, 0, LOAD, 2, LT, JZ, 29, /* 0: exit to HALT */
      LOAD, 1, LOAD, 0, LOAD, 0, MUL, PUSH, 7, MOD, ADD, STORE, 1, /* 7 */
      LOAD, 0, PUSH, 1, ADD, STORE, 0, JMP, 0,             /* 20 */
      HALT};
  int64_t vars[3] = {0, 0, (int64_t)param(in, len, 0)};
  int64_t stack[16];
  int sp = 0;
  int pc = 0;
  for (;;) {
    switch (prog[pc++]) {
      case PUSH: stack[sp++] = prog[pc++]; break;
      case LOAD: stack[sp++] = vars[prog[pc++]]; break;
      case STORE: vars[prog[pc++]] = stack[--sp]; break;
      case ADD: sp--; stack[sp - 1] += stack[sp]; break;
      case MUL: sp--; stack[sp - 1] *= stack[sp]; break;
      case MOD: sp--; stack[sp - 1] %= stack[sp]; break;
      case LT: sp--; stack[sp - 1] = stack[sp - 1] < stack[sp]; break;
      case JZ: { int32_t t = prog[pc++]; if (stack[--sp] == 0) pc = t; break; }
      case JMP: pc = prog[pc]; break;
      default: return out_u64((uint64_t)vars[1]);
    }
  }
}

EXPORT("collatz") int64_t collatz(const uint8_t *in, int32_t len) {
  uint32_t count = param(in, len, 0), start = param(in, len, 1) % 1000000u | 1u;
  uint64_t steps = 0;
  for (uint32_t s = start; s < start + 2 * count; s += 2) {
    uint64_t x = s;
    while (x != 1) {
      x = (x & 1) ? 3 * x + 1 : x / 2;
      steps++;
    }
  }
  return out_u64(steps);
}
