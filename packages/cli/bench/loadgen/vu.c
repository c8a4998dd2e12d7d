/* vhost-user front-end: guest RAM, the handshake QEMU does for vhost-user-fs, split rings from the
 * driver's side (EVENT_IDX both ways), and the --self-echo device. */
#include "loadgen.h"
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

uint8_t *ram;
size_t ram_size;
static size_t ram_used;
static int ram_fd = -1;
int vu_sock = -1;
static int event_idx;
static uint64_t proto;
atomic_int echo_stop;

enum {
  GET_FEATURES = 1, SET_FEATURES = 2, SET_OWNER = 3, SET_MEM_TABLE = 5, SET_VRING_NUM = 8,
  SET_VRING_ADDR = 9, SET_VRING_BASE = 10, SET_VRING_KICK = 12, SET_VRING_CALL = 13,
  GET_PROTOCOL_FEATURES = 15, SET_PROTOCOL_FEATURES = 16, GET_QUEUE_NUM = 17, SET_VRING_ENABLE = 18,
};
#define F_VERSION_1 32
#define F_EVENT_IDX 29
#define F_PROTOCOL_FEATURES 30
#define PF_MQ 0
#define PF_REPLY_ACK 3
#define FLAG_VERSION 1
#define FLAG_REPLY 4
#define FLAG_NEED_REPLY 8

uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void die(const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  /* One JSON line even on failure: the harness reports it instead of parsing garbage. */
  printf("{\"fatal\":\"");
  for (const char *c = msg; *c; c++) putchar(*c == '"' || *c == '\\' ? '\'' : *c);
  printf("\"}\n");
  fflush(stdout);
  _exit(3);
}

void ram_create(size_t size) {
  ram_size = (size + (2u << 20) - 1) & ~((size_t)(2u << 20) - 1);
  ram_fd = memfd_create("loadgen-ram", MFD_CLOEXEC);
  if (ram_fd < 0 || ftruncate(ram_fd, (off_t)ram_size) < 0) die("memfd: %s", strerror(errno));
  ram = mmap(NULL, ram_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ram_fd, 0);
  if (ram == MAP_FAILED) die("mmap %zu: %s", ram_size, strerror(errno));
}

void *ram_alloc(size_t len, size_t align) {
  size_t off = (ram_used + align - 1) & ~(align - 1);
  if (off + len > ram_size) die("guest RAM too small (%zu + %zu > %zu)", off, len, ram_size);
  ram_used = off + len;
  return ram + off;
}

/* --- the vhost-user socket --- */

struct msg { uint32_t request, flags, size; uint8_t payload[256]; } __attribute__((packed));

static void vu_send(uint32_t req, const void *payload, uint32_t size, int fd, int need_reply) {
  struct msg m = { req, FLAG_VERSION | (need_reply ? FLAG_NEED_REPLY : 0), size, {0} };
  memcpy(m.payload, payload, size);
  struct iovec iov = { &m, 12 + size };
  char ctl[CMSG_SPACE(sizeof(int))];
  struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
  if (fd >= 0) {
    memset(ctl, 0, sizeof ctl);
    mh.msg_control = ctl;
    mh.msg_controllen = sizeof ctl;
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
  }
  if (sendmsg(vu_sock, &mh, MSG_NOSIGNAL) != (ssize_t)(12 + size)) die("vhost-user send %u: %s", req, strerror(errno));
}

static void read_full(void *buf, size_t n) {
  uint8_t *p = buf;
  while (n) {
    struct pollfd pf = { vu_sock, POLLIN, 0 };
    if (poll(&pf, 1, 5000) <= 0) die("vhost-user: no reply within 5 s");
    ssize_t r = read(vu_sock, p, n);
    if (r <= 0) die("vhost-user: back-end closed the connection during the handshake");
    p += r;
    n -= (size_t)r;
  }
}

static uint64_t vu_reply_u64(uint32_t req) {
  struct msg m;
  read_full(&m, 12);
  if (m.request != req || !(m.flags & FLAG_REPLY) || m.size != 8) die("vhost-user: bad reply to %u (request %u size %u)", req, m.request, m.size);
  uint64_t v;
  read_full(&v, 8);
  return v;
}

static uint64_t vu_get(uint32_t req) {
  vu_send(req, NULL, 0, -1, 0);
  return vu_reply_u64(req);
}

/* A configuring message; with REPLY_ACK the back-end confirms it, so a refusal shows here. */
static void vu_set(uint32_t req, const void *payload, uint32_t size, int fd) {
  int ack = (proto >> PF_REPLY_ACK) & 1;
  vu_send(req, payload, size, fd, ack);
  if (ack && vu_reply_u64(req) != 0) die("vhost-user: back-end refused request %u", req);
}

static void vq_layout(struct vq *q, int index) {
  memset(q, 0, sizeof *q);
  q->index = index;
  q->desc = ram_alloc(sizeof(struct vdesc) * QSZ, 4096);
  q->avail = ram_alloc(sizeof(struct vavail), 4096);
  q->used = ram_alloc(sizeof(struct vused), 4096);
  q->kickfd = eventfd(0, EFD_CLOEXEC);
  q->callfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (q->kickfd < 0 || q->callfd < 0) die("eventfd: %s", strerror(errno));
}

/* --self-echo: rings in our own RAM, served by echo_device threads; EVENT_IDX on. */
void vq_setup_local(struct vq *q, int index) {
  event_idx = 1;
  vq_layout(q, index);
}

int vu_connect(const char *path, int nqueues, struct vq *qs) {
  vu_sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
  /* The socket file appears at bind(), before listen(): retry a refused connect for a while. */
  for (int tries = 0; connect(vu_sock, (struct sockaddr *)&sa, sizeof sa) < 0; tries++) {
    if ((errno != ECONNREFUSED && errno != ENOENT) || tries >= 500) die("connect %s: %s", path, strerror(errno));
    usleep(10000);
  }
  vu_send(SET_OWNER, NULL, 0, -1, 0);
  uint64_t feat = vu_get(GET_FEATURES);
  if (!(feat & (1ull << F_VERSION_1))) die("back-end lacks VIRTIO_F_VERSION_1");
  if (feat & (1ull << F_PROTOCOL_FEATURES)) {
    uint64_t offered = vu_get(GET_PROTOCOL_FEATURES);
    proto = offered & ((1ull << PF_MQ) | (1ull << PF_REPLY_ACK));
    vu_send(SET_PROTOCOL_FEATURES, &proto, 8, -1, 0);
    if (proto & (1ull << PF_MQ)) {
      uint64_t n = vu_get(GET_QUEUE_NUM);
      if (n < (uint64_t)nqueues) die("back-end has %llu queues, %d wanted", (unsigned long long)n, nqueues);
    } else if (nqueues > 2) die("back-end lacks the MQ protocol feature");
  }
  event_idx = (feat >> F_EVENT_IDX) & 1;
  uint64_t want = (1ull << F_VERSION_1) | (feat & ((1ull << F_EVENT_IDX) | (1ull << F_PROTOCOL_FEATURES)));
  vu_set(SET_FEATURES, &want, 8, -1);
  struct { uint32_t n, pad; uint64_t gpa, size, uaddr, off; } mt = { 1, 0, GPA_BASE, ram_size, (uint64_t)(uintptr_t)ram, 0 };
  vu_set(SET_MEM_TABLE, &mt, sizeof mt, ram_fd);
  for (int i = 0; i < nqueues; i++) {
    struct vq *q = &qs[i];
    vq_layout(q, i);
    struct { uint32_t index, num; } st = { (uint32_t)i, QSZ };
    vu_set(SET_VRING_NUM, &st, 8, -1);
    st.num = 0;
    vu_set(SET_VRING_BASE, &st, 8, -1);
    struct { uint32_t index, flags; uint64_t desc, used, avail, log; } va = {
      (uint32_t)i, 0, (uint64_t)(uintptr_t)q->desc, (uint64_t)(uintptr_t)q->used, (uint64_t)(uintptr_t)q->avail, 0 };
    vu_set(SET_VRING_ADDR, &va, sizeof va, -1);
    uint64_t idx = (uint64_t)i;
    vu_set(SET_VRING_KICK, &idx, 8, q->kickfd);
    vu_set(SET_VRING_CALL, &idx, 8, q->callfd);
  }
  for (int i = 0; i < nqueues; i++) {
    struct { uint32_t index, num; } st = { (uint32_t)i, 1 };
    if (feat & (1ull << F_PROTOCOL_FEATURES)) vu_set(SET_VRING_ENABLE, &st, 8, -1);
  }
  return event_idx;
}

/* --- driver side of a split ring --- */

static inline int need_event(uint16_t event, uint16_t new_idx, uint16_t old) {
  return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

void vq_push(struct vq *q, uint16_t head) {
  q->avail->ring[q->avail_idx & (QSZ - 1)] = head;
  q->avail_idx++;
}

/* Makes pushed chains visible and kicks only if the device asked for it. */
void vq_publish(struct vq *q) {
  uint16_t old = q->published, new_idx = q->avail_idx;
  if (old == new_idx) return;
  __atomic_store_n(&q->avail->idx, new_idx, __ATOMIC_RELEASE);
  q->published = new_idx;
  atomic_thread_fence(memory_order_seq_cst); /* the idx store before reading the device's wish */
  int kick = event_idx ? need_event(__atomic_load_n(&q->used->avail_event, __ATOMIC_RELAXED), new_idx, old)
                       : !(__atomic_load_n(&q->used->flags, __ATOMIC_RELAXED) & VRING_USED_F_NO_NOTIFY);
  if (kick) {
    uint64_t one = 1;
    q->kicks++;
    if (write(q->kickfd, &one, 8) != 8) die("kick: %s", strerror(errno));
  }
}

int vq_pop_used(struct vq *q, uint32_t *id, uint32_t *len) {
  if (q->last_used == __atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE)) return 0;
  struct vused_elem e = q->used->ring[q->last_used & (QSZ - 1)];
  q->last_used++;
  *id = e.id;
  *len = e.len;
  return 1;
}

/* Asks for a call at the next completion, then checks the ring once more (no lost wake-up).
 * Returns 1 if completions are already there. */
int vq_arm_and_check(struct vq *q) {
  if (event_idx) __atomic_store_n(&q->avail->used_event, q->last_used, __ATOMIC_RELAXED);
  atomic_thread_fence(memory_order_seq_cst);
  return q->last_used != __atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE);
}

/* Sleeps on the call eventfd. Returns 0 on timeout. */
int vq_wait(struct vq *q, int timeout_ms) {
  struct pollfd pf = { q->callfd, POLLIN, 0 };
  int r = poll(&pf, 1, timeout_ms);
  if (r < 0 && errno != EINTR) die("poll: %s", strerror(errno));
  if (r <= 0) return 0;
  uint64_t v;
  if (read(q->callfd, &v, 8) < 0 && errno != EAGAIN) die("call read: %s", strerror(errno));
  return 1;
}

/* --- the echo device: what a daemon does at no cost, to measure the generator alone --- */
void *echo_device(void *arg) {
  struct vq *q = arg;
  uint64_t spin_until = 0;
  for (;;) {
    uint16_t avail = __atomic_load_n(&q->avail->idx, __ATOMIC_ACQUIRE);
    if (avail == q->dev_last_avail) {
      if (atomic_load_explicit(&echo_stop, memory_order_relaxed)) return NULL;
      uint64_t t = now_ns();
      /* Poll 200 µs before sleeping: the ceiling should not pay the device's wake-up at QD 1. */
      if (!spin_until) spin_until = t + 200000;
      if (t < spin_until) { __builtin_ia32_pause(); continue; }
      /* Idle: ask for a kick, re-check, sleep on the kick eventfd. */
      __atomic_store_n(&q->used->avail_event, q->dev_last_avail, __ATOMIC_RELAXED);
      atomic_thread_fence(memory_order_seq_cst);
      if (__atomic_load_n(&q->avail->idx, __ATOMIC_ACQUIRE) != q->dev_last_avail) continue;
      struct pollfd pf = { q->kickfd, POLLIN, 0 };
      if (poll(&pf, 1, 100) > 0) {
        uint64_t v;
        if (read(q->kickfd, &v, 8) < 0) return NULL;
      }
      spin_until = 0;
      continue;
    }
    spin_until = 0;
    uint16_t old = q->dev_used;
    while (q->dev_last_avail != avail) {
      uint16_t head = q->avail->ring[q->dev_last_avail & (QSZ - 1)];
      q->dev_last_avail++;
      const struct vdesc *d = &q->desc[head];
      const struct fuse_in_header *ih = (const void *)(ram + (d->addr - GPA_BASE));
      uint32_t wlen = 0;
      struct fuse_out_header *oh = NULL;
      for (;;) {
        if (d->flags & VRING_DESC_F_WRITE) {
          if (!oh) oh = (void *)(ram + (d->addr - GPA_BASE));
          wlen += d->len;
        }
        if (!(d->flags & VRING_DESC_F_NEXT)) break;
        d = &q->desc[d->next];
      }
      if (oh) { oh->len = wlen; oh->error = 0; oh->unique = ih->unique; }
      q->used->ring[q->dev_used & (QSZ - 1)] = (struct vused_elem){ head, wlen };
      q->dev_used++;
    }
    __atomic_store_n(&q->used->idx, q->dev_used, __ATOMIC_RELEASE);
    atomic_thread_fence(memory_order_seq_cst);
    if (need_event(__atomic_load_n(&q->avail->used_event, __ATOMIC_RELAXED), q->dev_used, old)) {
      uint64_t one = 1;
      if (write(q->callfd, &one, 8) < 0) return NULL;
    }
  }
}
