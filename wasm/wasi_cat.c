/*
 * WASI command guest: copies stdin to stdout, upper-cased, and reports the byte count on
 * stderr. Exercises fd_read/fd_write on the standard streams (the command execution form).
 */
#include <ctype.h>
#include <stdio.h>

int main(void) {
  char buf[4096];
  size_t total = 0;
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) {
    for (size_t i = 0; i < n; i++) buf[i] = (char)toupper((unsigned char)buf[i]);
    if (fwrite(buf, 1, n, stdout) != n) return 2;
    total += n;
  }
  fprintf(stderr, "cat: %zu bytes\n", total);
  return 0;
}
