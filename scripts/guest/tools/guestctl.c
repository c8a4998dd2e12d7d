/* guestctl: file operations busybox lacks, for the guest (static, in the initramfs) and the host.
 *   guestctl as UID GID GROUPS CMD [ARG...]
 *                                  runs CMD as UID:GID with the supplementary GROUPS (comma separated,
 *                                  "-" for none), as a login would
 *   guestctl FILE fsync-loop       appends 4 KiB records ("record N" then '.'s), fsyncs each and
 *                                  prints "acked N" once fsync returned; until killed or an error
 *   guestctl FILE getlk            prints "unlocked" or "locked type=W|R pid=N start=S len=L"
 *   guestctl FILE setlkw           waits for a write lock on the whole file, prints "acquired after N ms"
 *   guestctl FILE hold             takes a write lock at once (or fails), prints "held", releases at EOF on stdin
 *   guestctl FILE flock            takes flock(LOCK_EX|LOCK_NB), prints "flocked" (or fails)
 *   guestctl FILE hold-flock|hold-ofd
 *                                  as hold, with flock(LOCK_EX|LOCK_NB) or an OFD write lock
 *   guestctl FILE wait-flock|wait-ofd
 *                                  as setlkw, with flock(LOCK_EX) or F_OFD_SETLKW
 *   guestctl FILE setxattr K V     sets extended attribute K to V
 *   guestctl FILE getxattr K       prints the value of K
 *   guestctl FILE mmap-write TEXT  writes TEXT at offset 0 through a shared mapping, msync
 *   guestctl FILE mmap-read N      prints the first N bytes read through a mapping
 *   guestctl FILE migrate DIR NAME READY GO [VICTIM]
 *                                  for a live migration: holds FILE open for appending and DIR open,
 *                                  writes "before\n", looks NAME up, creates READY, waits for GO to
 *                                  exist (the host makes it after the switch-over), then writes
 *                                  "after\n" through the same fd, reads DIR through its open handle,
 *                                  looks NAME up again and closes both; prints what each step saw.
 *                                  VICTIM: also held open from the start, and fstat'ed after GO
 *                                  ("victim: ok" or "victim: <error>"), for a file the host deletes */
#define _GNU_SOURCE /* F_OFD_SETLK */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/file.h>
#include <sys/stat.h>
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
  if (!strcmp(argv[1], "as")) {
    if (argc < 6) { fprintf(stderr, "usage: guestctl as UID GID GROUPS CMD [ARG...]\n"); return 2; }
    gid_t groups[64];
    int n = 0;
    if (strcmp(argv[4], "-")) {
      for (char *p = strtok(argv[4], ","); p && n < 64; p = strtok(NULL, ",")) groups[n++] = (gid_t)atol(p);
    }
    if (setgroups(n, groups) < 0) return fail("setgroups");
    if (setgid((gid_t)atol(argv[3])) < 0) return fail("setgid");
    if (setuid((uid_t)atol(argv[2])) < 0) return fail("setuid");
    execvp(argv[5], argv + 5);
    return fail("exec");
  }
  const char *cmd = argv[2];
  if (!strcmp(cmd, "fsync-loop")) {
    int lfd = open(argv[1], O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (lfd < 0) return fail("open");
    char rec[4096];
    for (long n = 0;; n++) {
      memset(rec, '.', sizeof rec);
      int k = snprintf(rec, sizeof rec, "record %ld", n);
      rec[k] = ' ';
      rec[sizeof rec - 1] = '\n';
      if (write(lfd, rec, sizeof rec) != (ssize_t)sizeof rec) return fail("write");
      if (fsync(lfd) < 0) return fail("fsync");
      printf("acked %ld\n", n);
      fflush(stdout);
    }
  }
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
  if (!strcmp(cmd, "wait-flock") || !strcmp(cmd, "wait-ofd")) {
    long long t0 = now_ms();
    if (cmd[5] == 'f' ? flock(fd, LOCK_EX) < 0 : fcntl(fd, F_OFD_SETLKW, &fl) < 0) return fail(cmd);
    printf("acquired after %lld ms\n", now_ms() - t0);
    return 0;
  }
  if (!strcmp(cmd, "hold") || !strcmp(cmd, "hold-flock") || !strcmp(cmd, "hold-ofd")) {
    int r = !strcmp(cmd, "hold") ? fcntl(fd, F_SETLK, &fl) : cmd[5] == 'f' ? flock(fd, LOCK_EX | LOCK_NB) : fcntl(fd, F_OFD_SETLK, &fl);
    if (r < 0) return fail(cmd);
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
  if (!strcmp(cmd, "migrate") && (argc == 7 || argc == 8)) {
    int afd = open(argv[1], O_WRONLY | O_APPEND);
    if (afd < 0) return fail("open for append");
    int vfd = argc == 8 ? open(argv[7], O_RDONLY) : -1;
    if (argc == 8 && vfd < 0) return fail("open VICTIM");
    DIR *d = opendir(argv[3]);
    if (!d) return fail("opendir");
    struct stat st;
    if (write(afd, "before\n", 7) != 7) return fail("write before");
    if (stat(argv[4], &st) < 0) return fail("stat before");
    int r = open(argv[5], O_WRONLY | O_CREAT, 0644);
    if (r < 0) return fail("create READY");
    close(r);
    printf("ready\n");
    fflush(stdout);
    long long t0 = now_ms();
    while (access(argv[6], F_OK) < 0) {
      if (now_ms() - t0 > 600000) { fprintf(stderr, "guestctl: no %s after 600 s\n", argv[6]); return 1; }
      usleep(100000);
    }
    printf("go after %lld ms\n", now_ms() - t0);
    if (vfd >= 0) {
      if (fstat(vfd, &st) < 0) printf("victim: %s\n", strerror(errno));
      else printf("victim: ok\n");
      fflush(stdout);
    }
    if (write(afd, "after\n", 6) != 6) return fail("write after");
    if (fsync(afd) < 0) return fail("fsync");
    rewinddir(d);
    int entries = 0, found = 0;
    const char *base = strrchr(argv[4], '/');
    base = base ? base + 1 : argv[4];
    errno = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
      entries++;
      if (!strcmp(e->d_name, base)) found = 1;
    }
    if (errno) return fail("readdir");
    printf("readdir: %d entries, %s %s\n", entries, base, found ? "listed" : "missing");
    if (stat(argv[4], &st) < 0) return fail("stat after");
    printf("lookup after: size %lld\n", (long long)st.st_size);
    if (closedir(d) < 0) return fail("closedir");
    if (close(afd) < 0) return fail("close");
    printf("closed\n");
    return 0;
  }
  fprintf(stderr, "guestctl: unknown command %s\n", cmd);
  return 2;
}
