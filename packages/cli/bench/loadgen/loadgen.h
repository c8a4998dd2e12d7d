/* The bench's load generator: a vhost-user front-end (QEMU plus the guest's virtio-fs driver, as far
 * as a daemon can tell) that keeps FUSE requests in flight on split rings in shared memfd RAM. */
#ifndef LOADGEN_H
#define LOADGEN_H
#define _GNU_SOURCE
#include <linux/fuse.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define QSZ 1024          /* ring entries, as QEMU's queue-size=1024 */
#define DESC_PER_SLOT 8   /* each slot owns a fixed run of descriptors: no free list to share */
#define MAX_SLOTS (QSZ / DESC_PER_SLOT)
#define MAX_QUEUES 16
#define GPA_BASE 0x40000000ull /* guest-physical address of RAM's first byte (not 0: a null lookalike) */
#define HIPRIO_SLOTS 32
#define FORGET_MAX 2048   /* nodeids one READDIRPLUS reply can bring */

#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2
#define VRING_USED_F_NO_NOTIFY 1

struct vdesc { uint64_t addr; uint32_t len; uint16_t flags, next; };
struct vavail { uint16_t flags, idx, ring[QSZ], used_event; };
struct vused_elem { uint32_t id, len; };
struct vused { uint16_t flags, idx; struct vused_elem ring[QSZ]; uint16_t avail_event; };

/* One virtqueue, driver side (and, in --self-echo, the echo device's side). */
struct vq {
  int index;
  struct vdesc *desc;
  struct vavail *avail;
  struct vused *used;
  uint16_t avail_idx;  /* next free avail slot (not yet published) */
  uint16_t published;  /* avail->idx as last published */
  uint16_t last_used;
  int kickfd, callfd;
  uint64_t kicks;
  /* echo device state */
  uint16_t dev_last_avail, dev_used;
};

/* A request slot: fixed descriptors and buffers, reused for every request it carries. */
struct slot {
  uint16_t head;
  int busy;
  uint8_t *in;      /* fuse_in_header + args (readable) */
  uint8_t *wdata;   /* WRITE payload (readable) */
  uint8_t *out;     /* fuse_out_header (writable, its own 16-byte descriptor) */
  uint8_t *body;    /* reply body (writable) */
  uint64_t unique, seq;
  uint64_t t0;      /* start of the op (ns): for composite ops, of its first request */
  uint32_t expect_len; /* exact used length expected on success (0: variable) */
  int opcode, kind, step, lock;
  uint64_t fh, nodeid, offset;
  uint32_t entries;
  char name[64];
  uint32_t nforget;
  uint64_t *forget;
};

struct hist { uint64_t n; uint64_t b[64 * 64]; };

struct worker {
  int qi;                 /* request queue index (1..Q) */
  struct vq *q;
  struct slot slots[MAX_SLOTS];
  int nslots;
  uint64_t rng;
  uint64_t ops, errors, bad;
  int first_errno;
  char bad_reason[160];
  struct hist hist;
  int setlkw_state;       /* 0 none, 1 waiting, 2 granted, 3 failed */
  int setlkw_errno;
  pthread_t thread, echo;
};

struct cfg {
  const char *socket;
  const char *workloads;
  int depth, queues;
  double seconds, warmup;
  double report;           /* --report: seconds between progress lines (0: none) */
  int self_echo, hold, marks;
  long count;              /* lookup-many */
  int dir_entries;         /* readdirplus: expected named entries */
  size_t body_max;
};

/* vu.c */
extern uint8_t *ram;
extern size_t ram_size;
extern int vu_sock;
static inline uint64_t gpa(const void *p) { return GPA_BASE + (uint64_t)((const uint8_t *)p - ram); }
void *ram_alloc(size_t len, size_t align);
void ram_create(size_t size);
int vu_connect(const char *path, int nqueues, struct vq *qs);
void vq_setup_local(struct vq *q, int index);
void vq_push(struct vq *q, uint16_t head);
void vq_publish(struct vq *q);
int vq_pop_used(struct vq *q, uint32_t *id, uint32_t *len);
int vq_arm_and_check(struct vq *q);
int vq_wait(struct vq *q, int timeout_ms);
void *echo_device(void *arg);
extern atomic_int echo_stop;

/* util */
uint64_t now_ns(void);
void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
#endif
