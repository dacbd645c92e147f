// The C baseline for bench/ebpf.ts: the same bpf() syscalls the TypeScript benchmark makes
// through the addon (single lookup/update, batch update/lookup) on the same map shape.
// Prints one JSON object. Build: clang -O2 -o map_ops map_ops.c -lbpf
#include <bpf/bpf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char** argv) {
  const uint32_t entries = argc > 1 ? (uint32_t)atoi(argv[1]) : 10000;
  const uint32_t ops = argc > 2 ? (uint32_t)atoi(argv[2]) : 200000;
  const uint32_t chunk = argc > 3 ? (uint32_t)atoi(argv[3]) : 1000;
  int fd = bpf_map_create(BPF_MAP_TYPE_HASH, "bench_c", 4, 8, entries, NULL);
  if (fd < 0) {
    perror("bpf_map_create");
    return 1;
  }
  uint64_t value = 1;
  double t0 = now_s();
  for (uint32_t i = 0; i < ops; i++) {
    uint32_t key = i % entries;
    value = i;
    if (bpf_map_update_elem(fd, &key, &value, BPF_ANY)) return perror("update"), 1;
  }
  double update_s = now_s() - t0;
  t0 = now_s();
  for (uint32_t i = 0; i < ops; i++) {
    uint32_t key = i % entries;
    if (bpf_map_lookup_elem(fd, &key, &value)) return perror("lookup"), 1;
  }
  double lookup_s = now_s() - t0;

  uint32_t* keys = malloc(sizeof(uint32_t) * entries);
  uint64_t* values = malloc(sizeof(uint64_t) * entries);
  for (uint32_t i = 0; i < entries; i++) keys[i] = i, values[i] = i;
  uint32_t rounds = ops / entries ? ops / entries : 1;
  LIBBPF_OPTS(bpf_map_batch_opts, opts);
  t0 = now_s();
  for (uint32_t r = 0; r < rounds; r++) {
    for (uint32_t start = 0; start < entries; start += chunk) {
      uint32_t count = entries - start < chunk ? entries - start : chunk;
      if (bpf_map_update_batch(fd, keys + start, values + start, &count, &opts)) return perror("update_batch"), 1;
    }
  }
  double batch_update_s = now_s() - t0;
  uint64_t token[1];
  t0 = now_s();
  uint64_t seen = 0;
  for (uint32_t r = 0; r < rounds; r++) {
    int first = 1;
    for (;;) {
      uint32_t count = chunk;
      int err = bpf_map_lookup_batch(fd, first ? NULL : token, token, keys, values, &count, &opts);
      first = 0;
      seen += count;
      if (err) break;  // ENOENT: end of map
    }
  }
  double batch_lookup_s = now_s() - t0;
  printf("{\"entries\":%u,\"ops\":%u,\"chunk\":%u,\"updateOpsPerS\":%.0f,\"lookupOpsPerS\":%.0f,"
         "\"batchUpdateOpsPerS\":%.0f,\"batchLookupOpsPerS\":%.0f}\n",
         entries, ops, chunk, ops / update_s, ops / lookup_s, (double)rounds * entries / batch_update_s,
         (double)seen / batch_lookup_s);
  return 0;
}
