// A bounded UDP sender for the veth packets/s benchmark: sends `count` datagrams of `size`
// bytes to DST:PORT with sendmmsg (64 per call) and prints {"sent", "seconds"}. Only ever run
// inside a benchmark-made network namespace, towards the other end of its veth pair.
// Build: clang -O2 -o udp_flood udp_flood.c
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64

int main(int argc, char** argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: udp_flood DST PORT COUNT SIZE\n");
    return 2;
  }
  struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
  if (inet_pton(AF_INET, argv[1], &dst.sin_addr) != 1) return fprintf(stderr, "bad address\n"), 2;
  const long count = atol(argv[3]);
  const size_t size = (size_t)atol(argv[4]);
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0 || connect(fd, (struct sockaddr*)&dst, sizeof(dst))) return perror("socket"), 1;
  char* payload = calloc(1, size);
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  memset(msgs, 0, sizeof(msgs));
  for (int i = 0; i < BATCH; i++) {
    iov[i].iov_base = payload;
    iov[i].iov_len = size;
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  long sent = 0;
  while (sent < count) {
    int n = (int)(count - sent < BATCH ? count - sent : BATCH);
    int done = sendmmsg(fd, msgs, (unsigned)n, 0);
    if (done < 0) continue;  // ENOBUFS under load: retry, the count stays exact
    sent += done;
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  printf("{\"sent\":%ld,\"seconds\":%.6f}\n", sent, (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9);
  return 0;
}
