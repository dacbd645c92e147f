/*
 * WASI command guest that probes its capabilities and prints what it saw, one `key=value`
 * line each: arguments, environment, clocks, randomness, and the filesystem (read a file in
 * the preopen, then try to write, create, truncate, rename, unlink, mkdir and escape it).
 * Errors print as WASI errno numbers (wasi-libc's errno values are WASI's: EROFS = 69,
 * ENOTCAPABLE = 76, ENOENT = 44, EBADF = 8). The tests parse the lines.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static void try_open(const char *key, const char *path, int flags) {
  errno = 0;
  int fd = open(path, flags, 0644);
  if (fd >= 0) {
    printf("%s=ok\n", key);
    close(fd);
  } else {
    printf("%s=%d\n", key, errno);
  }
}

static void result(const char *key, int rc) { printf("%s=%d\n", key, rc == 0 ? 0 : errno); }

int main(int argc, char **argv) {
  printf("argc=%d\n", argc);
  printf("argv0=%s\n", argc > 0 ? argv[0] : "");
  int envc = 0;
  for (char **e = environ; e != NULL && *e != NULL; e++) envc++;
  printf("envc=%d\n", envc);
  const char *home = getenv("HOME");
  printf("home=%s\n", home ? home : "(unset)");

  printf("time=%lld\n", (long long)time(NULL));
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  clock_gettime(CLOCK_MONOTONIC, &b);
  printf("mono=%lld,%lld\n", (long long)a.tv_sec * 1000000000LL + a.tv_nsec,
         (long long)b.tv_sec * 1000000000LL + b.tv_nsec);
  struct timespec nap = {1, 0};
  nanosleep(&nap, NULL);
  clock_gettime(CLOCK_MONOTONIC, &b);
  printf("after_sleep=%lld\n", (long long)b.tv_sec * 1000000000LL + b.tv_nsec);

  unsigned char rnd[16];
  if (getentropy(rnd, sizeof rnd) == 0) {
    printf("random=");
    for (size_t i = 0; i < sizeof rnd; i++) printf("%02x", rnd[i]);
    printf("\n");
  } else {
    printf("random=err%d\n", errno);
  }

  FILE *f = fopen("data.txt", "r");
  if (f != NULL) {
    char buf[256];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    for (size_t i = 0; i < n; i++)
      if (buf[i] == '\n') buf[i] = '|';
    printf("read=%s\n", buf);
    fclose(f);
  } else {
    printf("read=err%d\n", errno);
  }
  int rfd = open("data.txt", O_RDONLY);
  if (rfd >= 0) {
    errno = 0;
    ssize_t w = write(rfd, "x", 1);
    printf("write_ro_fd=%d\n", w == 1 ? 0 : errno);
    close(rfd);
  } else {
    printf("write_ro_fd=err%d\n", errno);
  }
  struct stat st;
  if (stat("data.txt", &st) == 0) {
    printf("stat=size:%lld,mtime:%lld\n", (long long)st.st_size, (long long)st.st_mtime);
  } else {
    printf("stat=err%d\n", errno);
  }

  DIR *d = opendir(".");
  if (d != NULL) {
    printf("ls=");
    const char *sep = "";
    for (struct dirent *e = readdir(d); e != NULL; e = readdir(d)) {
      printf("%s%s", sep, e->d_name);
      sep = ",";
    }
    printf("\n");
    closedir(d);
  } else {
    printf("ls=err%d\n", errno);
  }

  try_open("open_write", "data.txt", O_WRONLY);
  try_open("open_create", "new.txt", O_WRONLY | O_CREAT);
  try_open("open_trunc", "data.txt", O_RDONLY | O_TRUNC);
  errno = 0;
  result("rename", rename("data.txt", "moved.txt"));
  errno = 0;
  result("unlink", unlink("data.txt"));
  errno = 0;
  result("mkdir", mkdir("newdir", 0755));
  try_open("escape_dotdot", "../outside.txt", O_RDONLY);
  try_open("escape_nested", "sub/../../outside.txt", O_RDONLY);
  try_open("escape_symlink", "link-out", O_RDONLY);
  try_open("inner_symlink", "link-in", O_RDONLY);
  try_open("absolute", "/etc/passwd", O_RDONLY);
  return 0;
}
