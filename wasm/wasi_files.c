/*
 * WASI command guest that runs file commands read from stdin, one per line, and prints one
 * result line per command, so tests can drive a filesystem through wasi-libc's real calls:
 *
 *   cat P          -> "cat P <contents>"             or "cat P err<errno>"
 *   write P TEXT   -> O_WRONLY|O_CREAT|O_TRUNC, write TEXT: "write P ok" / "write P err<errno>"
 *   append P TEXT  -> O_WRONLY|O_CREAT|O_APPEND
 *   excl P         -> O_WRONLY|O_CREAT|O_EXCL
 *   ls P           -> "ls P name,name/,..." (directories end in '/'; sorted by the host)
 *   stat P         -> "stat P file <size>" / "stat P dir" / "stat P err<errno>"
 *   mkdir P, rmdir P, rm P, mv A B, trunc P N -> "<cmd> P ok" / "<cmd> P err<errno>"
 *   argv / env     -> the arguments / environment, comma-separated
 * errno values are WASI's (wasi-libc uses them): EROFS 69, ENOENT 44, EEXIST 20, ENOSPC 51.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

static void status(const char *cmd, const char *path, int rc) {
  if (rc == 0)
    printf("%s %s ok\n", cmd, path);
  else
    printf("%s %s err%d\n", cmd, path, errno);
}

static void put(const char *cmd, const char *path, const char *text, int flags) {
  errno = 0;
  int fd = open(path, flags, 0644);
  if (fd < 0) {
    status(cmd, path, -1);
    return;
  }
  size_t n = text ? strlen(text) : 0;
  int rc = n == 0 || write(fd, text, n) == (ssize_t)n ? 0 : -1;
  close(fd);
  status(cmd, path, rc);
}

static void cat(const char *path) {
  errno = 0;
  int fd = open(path, O_RDONLY);
  if (fd < 0) {
    printf("cat %s err%d\n", path, errno);
    return;
  }
  printf("cat %s ", path);
  char buf[512];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) fwrite(buf, 1, (size_t)n, stdout);
  if (n < 0) printf(" err%d", errno);
  printf("\n");
  close(fd);
}

static void ls(const char *path) {
  errno = 0;
  DIR *d = opendir(path);
  if (d == NULL) {
    printf("ls %s err%d\n", path, errno);
    return;
  }
  printf("ls %s ", path);
  int first = 1;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    printf("%s%s%s", first ? "" : ",", e->d_name, e->d_type == DT_DIR ? "/" : "");
    first = 0;
  }
  printf("\n");
  closedir(d);
}

int main(int argc, char **argv) {
  static char line[4096];
  while (fgets(line, sizeof line, stdin) != NULL) {
    line[strcspn(line, "\n")] = 0;
    char *cmd = strtok(line, " ");
    if (cmd == NULL) continue;
    char *path = strtok(NULL, " ");
    char *rest = strtok(NULL, "");
    if (strcmp(cmd, "argv") == 0) {
      printf("argv ");
      for (int i = 0; i < argc; i++) printf("%s%s", i ? "," : "", argv[i]);
      printf("\n");
    } else if (strcmp(cmd, "env") == 0) {
      printf("env ");
      for (char **e = environ; e != NULL && *e != NULL; e++) printf("%s%s", e == environ ? "" : ",", *e);
      printf("\n");
    } else if (path == NULL) {
      printf("%s ? missing path\n", cmd);
    } else if (strcmp(cmd, "cat") == 0) {
      cat(path);
    } else if (strcmp(cmd, "write") == 0) {
      put(cmd, path, rest, O_WRONLY | O_CREAT | O_TRUNC);
    } else if (strcmp(cmd, "append") == 0) {
      put(cmd, path, rest, O_WRONLY | O_CREAT | O_APPEND);
    } else if (strcmp(cmd, "excl") == 0) {
      put(cmd, path, rest, O_WRONLY | O_CREAT | O_EXCL);
    } else if (strcmp(cmd, "ls") == 0) {
      ls(path);
    } else if (strcmp(cmd, "stat") == 0) {
      struct stat st;
      errno = 0;
      if (stat(path, &st) != 0)
        printf("stat %s err%d\n", path, errno);
      else if (S_ISDIR(st.st_mode))
        printf("stat %s dir\n", path);
      else
        printf("stat %s file %lld mtime=%lld\n", path, (long long)st.st_size, (long long)st.st_mtime);
    } else if (strcmp(cmd, "mkdir") == 0) {
      errno = 0;
      status(cmd, path, mkdir(path, 0755));
    } else if (strcmp(cmd, "rmdir") == 0) {
      errno = 0;
      status(cmd, path, rmdir(path));
    } else if (strcmp(cmd, "rm") == 0) {
      errno = 0;
      status(cmd, path, unlink(path));
    } else if (strcmp(cmd, "mv") == 0) {
      errno = 0;
      status(cmd, path, rest ? rename(path, rest) : -1);
    } else if (strcmp(cmd, "trunc") == 0) {
      errno = 0;
      status(cmd, path, truncate(path, rest ? atoll(rest) : 0));
    } else {
      printf("%s %s unknown\n", cmd, path);
    }
  }
  return 0;
}
