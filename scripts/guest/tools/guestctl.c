/* guestctl: file operations busybox lacks, for the guest (static, in the initramfs) and the host.
 *   guestctl FILE getlk            prints "unlocked" or "locked type=W|R pid=N start=S len=L"
 *   guestctl FILE setlkw           waits for a write lock on the whole file, prints "acquired after N ms"
 *   guestctl FILE hold             takes a write lock at once (or fails), prints "held", releases at EOF on stdin
 *   guestctl FILE flock            takes flock(LOCK_EX|LOCK_NB), prints "flocked" (or fails)
 *   guestctl FILE setxattr K V     sets extended attribute K to V
 *   guestctl FILE getxattr K       prints the value of K
 *   guestctl FILE mmap-write TEXT  writes TEXT at offset 0 through a shared mapping, msync
 *   guestctl FILE mmap-read N      prints the first N bytes read through a mapping */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int fail(const char *what) {
  fprintf(stderr, "guestctl: %s: %s\n", what, strerror(errno));
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: guestctl FILE getlk|setlkw|hold|flock|setxattr K V|getxattr K|mmap-write TEXT|mmap-read N\n");
    return 2;
  }
  const char *cmd = argv[2];
  int fd = open(argv[1], O_RDWR);
  if (fd < 0) return fail("open");
  struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
  if (!strcmp(cmd, "getlk")) {
    if (fcntl(fd, F_GETLK, &fl) < 0) return fail("F_GETLK");
    if (fl.l_type == F_UNLCK) printf("unlocked\n");
    else printf("locked type=%s pid=%d start=%lld len=%lld\n", fl.l_type == F_WRLCK ? "W" : "R", (int)fl.l_pid, (long long)fl.l_start, (long long)fl.l_len);
    return 0;
  }
  if (!strcmp(cmd, "setlkw")) {
    long long t0 = now_ms();
    if (fcntl(fd, F_SETLKW, &fl) < 0) return fail("F_SETLKW");
    printf("acquired after %lld ms\n", now_ms() - t0);
    return 0;
  }
  if (!strcmp(cmd, "hold")) {
    if (fcntl(fd, F_SETLK, &fl) < 0) return fail("F_SETLK");
    printf("held\n");
    fflush(stdout);
    char buf[64];
    while (read(0, buf, sizeof buf) > 0) {
    }
    return 0;
  }
  if (!strcmp(cmd, "flock")) {
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) return fail("flock");
    printf("flocked\n");
    return 0;
  }
  if (!strcmp(cmd, "setxattr") && argc == 5) {
    if (fsetxattr(fd, argv[3], argv[4], strlen(argv[4]), 0) < 0) return fail("setxattr");
    return 0;
  }
  if (!strcmp(cmd, "getxattr") && argc == 4) {
    char v[4096];
    ssize_t n = fgetxattr(fd, argv[3], v, sizeof v - 1);
    if (n < 0) return fail("getxattr");
    v[n] = 0;
    printf("%s\n", v);
    return 0;
  }
  if (!strcmp(cmd, "mmap-write") && argc == 4) {
    size_t n = strlen(argv[3]);
    if (ftruncate(fd, n) < 0) return fail("ftruncate");
    char *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) return fail("mmap");
    memcpy(p, argv[3], n);
    if (msync(p, n, MS_SYNC) < 0) return fail("msync");
    return 0;
  }
  if (!strcmp(cmd, "mmap-read") && argc == 4) {
    size_t n = (size_t)atol(argv[3]);
    char *p = mmap(NULL, n, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) return fail("mmap");
    fwrite(p, 1, n, stdout);
    printf("\n");
    return 0;
  }
  fprintf(stderr, "guestctl: unknown command %s\n", cmd);
  return 2;
}
