/*
 * WASI command guest: exits with the code given as decimal text on stdin, after a line on
 * stdout and one on stderr (so tests can see both streams survive a non-zero exit).
 */
#include <stdio.h>
#include <stdlib.h>

int main(void) {
  char buf[32] = {0};
  size_t n = fread(buf, 1, sizeof buf - 1, stdin);
  buf[n] = 0;
  int code = atoi(buf);
  printf("exiting with %d\n", code);
  fprintf(stderr, "bye %d\n", code);
  fflush(stdout);
  exit(code);
}
