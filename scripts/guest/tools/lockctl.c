/* lockctl: POSIX record locks from the shell, for the guest (static, in the initramfs) and the host.
 *   lockctl FILE getlk   prints "unlocked" or "locked type=W|R pid=N start=S len=L"
 *   lockctl FILE setlkw  waits for a write lock on the whole file, prints "acquired after N ms", exits
 *   lockctl FILE hold    takes a write lock at once (or fails), prints "held", releases at EOF on stdin */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: lockctl FILE getlk|setlkw|hold\n");
    return 2;
  }
  int fd = open(argv[1], O_RDWR);
  if (fd < 0) {
    fprintf(stderr, "lockctl: open %s: %s\n", argv[1], strerror(errno));
    return 1;
  }
  struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
  if (!strcmp(argv[2], "getlk")) {
    if (fcntl(fd, F_GETLK, &fl) < 0) {
      fprintf(stderr, "lockctl: F_GETLK: %s\n", strerror(errno));
      return 1;
    }
    if (fl.l_type == F_UNLCK) printf("unlocked\n");
    else printf("locked type=%s pid=%d start=%lld len=%lld\n", fl.l_type == F_WRLCK ? "W" : "R", (int)fl.l_pid, (long long)fl.l_start, (long long)fl.l_len);
    return 0;
  }
  if (!strcmp(argv[2], "setlkw")) {
    long long t0 = now_ms();
    if (fcntl(fd, F_SETLKW, &fl) < 0) {
      fprintf(stderr, "lockctl: F_SETLKW: %s\n", strerror(errno));
      return 1;
    }
    printf("acquired after %lld ms\n", now_ms() - t0);
    return 0;
  }
  if (!strcmp(argv[2], "hold")) {
    if (fcntl(fd, F_SETLK, &fl) < 0) {
      fprintf(stderr, "lockctl: F_SETLK: %s\n", strerror(errno));
      return 1;
    }
    printf("held\n");
    fflush(stdout);
    char buf[64];
    while (read(0, buf, sizeof buf) > 0) {
    }
    return 0;
  }
  fprintf(stderr, "lockctl: unknown command %s\n", argv[2]);
  return 2;
}
