/* loadgen: keeps DEPTH FUSE requests in flight per request queue against a virtio-fs daemon over
 * vhost-user (or against its own echo device with --self-echo) and prints one JSON line per phase.
 *
 *   loadgen --socket S --workload getattr[,lookup-many] --depth D [--queues Q] [--seconds T]
 *           [--warmup W] [--count N] [--dir-entries N] [--hold] [--marks] [--self-echo]
 * --hold waits for a line on stdin after setup and after each phase; --marks prints a mark at each
 * edge of the timed window and waits for a line (the harness samples /proc there).
 *   loadgen --hold-lock FILE      (holds a POSIX write lock on FILE until stdin closes)
 *
 * The share layout it expects (the harness makes it): file.txt, data.bin and wdata.bin (64 MiB
 * each), dir1000/ (the READDIRPLUS directory), many/f000000.. (lookup-many), lock.txt, cr/ (CREATE). */
#include "loadgen.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

enum kind { K_GETATTR, K_LOOKUP, K_READ4K, K_WRITE4K, K_READ1M, K_CREATE, K_READDIRPLUS, K_MIX, K_SETLKW_GETATTR, K_LOOKUP_MANY, K_SOAK, K_SETLKW, K_SETLK };
static const char *const kind_names[] = { "getattr", "lookup", "read4k", "write4k", "read1m", "create", "readdirplus", "mix", "setlkw-getattr", "lookup-many", "soak" };
#define NKINDS 11
enum { PH_WARMUP, PH_MEASURE, PH_STOP };

#define FILE_SIZE (64ull << 20)
#define RDP_BUF (128u << 10)

static struct cfg cfg = { .depth = 1, .queues = 1, .seconds = 2, .warmup = 0.3, .count = 100000, .dir_entries = 1000 };
static struct vq qs[MAX_QUEUES + 1];
static struct worker *workers;
static int nworkers;
static atomic_int phase;
static atomic_int workers_done;
static atomic_long many_next;
static int cur_kind;
static uint64_t stop_at;

/* What setup found: nodeids and file handles. */
static uint64_t file_node = 1, data_node = 1, data_fh, wdata_node = 1, wdata_fh, dir_node = 1, many_node = 1, cr_node = 1, lock_node = 1, lock_fh;

/* --- the hiprio queue (FORGETs), shared by the workers under a lock --- */
static struct { pthread_mutex_t mu; struct vq *q; uint8_t *buf[HIPRIO_SLOTS]; int busy[HIPRIO_SLOTS]; } hp = { .mu = PTHREAD_MUTEX_INITIALIZER };

static void hiprio_reap(void) {
  uint32_t id, len;
  while (vq_pop_used(hp.q, &id, &len))
    if (id / 2 < HIPRIO_SLOTS) hp.busy[id / 2] = 0;
}

/* A request without a reply on queue 0: the device hands its chain back with nothing written. */
static void hiprio_send(uint32_t opcode, uint64_t nodeid, const void *args, uint32_t arglen) {
  if (cfg.self_echo) return;
  pthread_mutex_lock(&hp.mu);
  int i;
  uint64_t t0 = now_ns();
  for (;;) {
    hiprio_reap();
    for (i = 0; i < HIPRIO_SLOTS && hp.busy[i]; i++) {}
    if (i < HIPRIO_SLOTS) break;
    if (!vq_arm_and_check(hp.q)) vq_wait(hp.q, 10);
    if (now_ns() - t0 > 5000000000ull) die("hiprio queue: no FORGET handed back in 5 s");
  }
  struct fuse_in_header *h = (void *)hp.buf[i];
  *h = (struct fuse_in_header){ .len = 40 + arglen, .opcode = opcode, .unique = 0, .nodeid = nodeid };
  memcpy(hp.buf[i] + 40, args, arglen);
  uint16_t head = (uint16_t)(i * 2);
  hp.q->desc[head] = (struct vdesc){ gpa(hp.buf[i]), 40, VRING_DESC_F_NEXT, (uint16_t)(head + 1) };
  hp.q->desc[head + 1] = (struct vdesc){ gpa(hp.buf[i] + 40), arglen, 0, 0 };
  hp.busy[i] = 1;
  vq_push(hp.q, head);
  vq_publish(hp.q);
  pthread_mutex_unlock(&hp.mu);
}

static void forget_one(uint64_t nodeid) {
  struct fuse_forget_in f = { .nlookup = 1 };
  hiprio_send(FUSE_FORGET, nodeid, &f, sizeof f);
}

static void forget_batch(const uint64_t *nodeids, uint32_t n) {
  static _Thread_local struct { struct fuse_batch_forget_in h; struct fuse_forget_one one[FORGET_MAX]; } b;
  b.h.count = n;
  for (uint32_t i = 0; i < n; i++) b.one[i] = (struct fuse_forget_one){ nodeids[i], 1 };
  hiprio_send(FUSE_BATCH_FORGET, 0, &b, (uint32_t)(sizeof b.h + n * sizeof b.one[0]));
}

/* --- requests --- */

static inline void *args_of(struct slot *s) { return s->in + sizeof(struct fuse_in_header); }

/* Lays the request out as the Linux driver does: in_header, args (readable); WRITE data (readable);
 * out_header alone in 16 bytes, reply body (writable, sized to the request). */
static void req(struct worker *w, struct slot *s, uint32_t opcode, uint64_t nodeid, uint32_t arglen, uint32_t wlen, uint32_t bodylen, uint32_t expect) {
  struct fuse_in_header *h = (void *)s->in;
  s->unique = (++s->seq << 20) | ((uint64_t)w->qi << 11) | ((uint64_t)(s - w->slots) << 1);
  *h = (struct fuse_in_header){ .len = 40 + arglen + wlen, .opcode = opcode, .unique = s->unique, .nodeid = nodeid, .pid = 4242 };
  struct vdesc *d = &w->q->desc[s->head];
  uint16_t n = 0, next = (uint16_t)(s->head + 1);
  d[n++] = (struct vdesc){ gpa(s->in), 40, VRING_DESC_F_NEXT, next++ };
  if (arglen) d[n++] = (struct vdesc){ gpa(s->in + 40), arglen, VRING_DESC_F_NEXT, next++ };
  if (wlen) d[n++] = (struct vdesc){ gpa(s->wdata), wlen, VRING_DESC_F_NEXT, next++ };
  d[n++] = (struct vdesc){ gpa(s->out), 16, (uint16_t)(VRING_DESC_F_WRITE | (bodylen ? VRING_DESC_F_NEXT : 0)), next++ };
  if (bodylen) d[n++] = (struct vdesc){ gpa(s->body), bodylen, VRING_DESC_F_WRITE, 0 };
  s->opcode = (int)opcode;
  s->expect_len = expect;
  s->busy = 1;
  vq_push(w->q, s->head);
}

static uint64_t rnd(struct worker *w) {
  w->rng ^= w->rng >> 12;
  w->rng ^= w->rng << 25;
  w->rng ^= w->rng >> 27;
  return w->rng * 2685821657736338717ull;
}

static void req_name(struct worker *w, struct slot *s, uint32_t opcode, uint64_t parent, const char *name, uint32_t prefix, uint32_t bodylen) {
  size_t n = strlen(name) + 1;
  memcpy((uint8_t *)args_of(s) + prefix, name, n);
  req(w, s, opcode, parent, prefix + (uint32_t)n, 0, bodylen, bodylen ? 16 + bodylen : 16);
}

static void req_read(struct worker *w, struct slot *s, uint64_t node, uint64_t fh, uint64_t off, uint32_t size, int dir) {
  struct fuse_read_in *a = args_of(s);
  *a = (struct fuse_read_in){ .fh = fh, .offset = off, .size = size, .flags = dir ? O_RDONLY | O_DIRECTORY : O_RDONLY };
  req(w, s, dir ? FUSE_READDIRPLUS : FUSE_READ, node, sizeof *a, 0, size, dir ? 0 : 16 + size);
}

static void req_getattr(struct worker *w, struct slot *s) {
  struct fuse_getattr_in *a = args_of(s);
  *a = (struct fuse_getattr_in){ 0 };
  req(w, s, FUSE_GETATTR, file_node, sizeof *a, 0, sizeof(struct fuse_attr_out), 16 + sizeof(struct fuse_attr_out));
}

/* Starts a new op on a free slot. Returns 0 when there is nothing left to do (lookup-many). */
static int start_op(struct worker *w, struct slot *s, uint64_t now) {
  int kind = s->lock ? K_SETLKW : cur_kind;
  if (kind == K_MIX) {
    uint64_t r = rnd(w) % 10;
    kind = r < 4 ? K_GETATTR : r < 7 ? K_LOOKUP : r < 9 ? K_READ4K : K_WRITE4K;
  } else if (kind == K_SOAK) {
    /* npm run soak: every kind of request a guest keeps sending, listings of 1,000 entries rarely. */
    uint64_t r = rnd(w) % 100;
    kind = r < 28 ? K_GETATTR : r < 48 ? K_LOOKUP : r < 63 ? K_READ4K : r < 78 ? K_WRITE4K : r < 88 ? K_CREATE : r < 98 ? K_SETLK : K_READDIRPLUS;
  } else if (kind == K_SETLKW_GETATTR) kind = K_GETATTR;
  s->kind = kind;
  s->t0 = now;
  switch (kind) {
  case K_GETATTR: req_getattr(w, s); break;
  case K_LOOKUP: req_name(w, s, FUSE_LOOKUP, 1, "file.txt", 0, sizeof(struct fuse_entry_out)); break;
  case K_READ4K: req_read(w, s, data_node, data_fh, (rnd(w) % (FILE_SIZE / 4096)) * 4096, 4096, 0); break;
  case K_READ1M:
    req_read(w, s, data_node, data_fh, s->offset, 1u << 20, 0);
    s->offset = (s->offset + (1u << 20) * (uint64_t)w->nslots) % FILE_SIZE;
    break;
  case K_WRITE4K: {
    struct fuse_write_in *a = args_of(s);
    *a = (struct fuse_write_in){ .fh = wdata_fh, .offset = (rnd(w) % (FILE_SIZE / 4096)) * 4096, .size = 4096, .flags = O_RDWR };
    req(w, s, FUSE_WRITE, wdata_node, sizeof *a, 4096, sizeof(struct fuse_write_out), 16 + sizeof(struct fuse_write_out));
    break;
  }
  case K_CREATE: {
    struct fuse_create_in *a = args_of(s);
    *a = (struct fuse_create_in){ .flags = O_RDWR | O_CREAT | O_EXCL, .mode = 0100644, .umask = 022 };
    snprintf(s->name, sizeof s->name, "c%d.%d-%d-%llu", (int)getpid(), w->qi, (int)(s - w->slots), (unsigned long long)s->seq);
    req_name(w, s, FUSE_CREATE, cr_node, s->name, sizeof *a, sizeof(struct fuse_entry_out) + sizeof(struct fuse_open_out));
    break;
  }
  case K_READDIRPLUS: {
    struct fuse_open_in *a = args_of(s);
    *a = (struct fuse_open_in){ .flags = O_RDONLY | O_DIRECTORY };
    s->entries = 0;
    req(w, s, FUSE_OPENDIR, dir_node, sizeof *a, 0, sizeof(struct fuse_open_out), 16 + sizeof(struct fuse_open_out));
    break;
  }
  case K_LOOKUP_MANY: {
    long i = atomic_fetch_add(&many_next, 1);
    if (i >= cfg.count) return 0;
    snprintf(s->name, sizeof s->name, "f%06ld", i);
    req_name(w, s, FUSE_LOOKUP, many_node, s->name, 0, sizeof(struct fuse_entry_out));
    break;
  }
  case K_SETLK: {
    /* A write lock on a range of its own (no conflicts: errors would be the daemon's), then its unlock. */
    struct fuse_lk_in *a = args_of(s);
    uint64_t id = (uint64_t)w->qi * MAX_SLOTS + (uint64_t)(s - w->slots);
    *a = (struct fuse_lk_in){ .fh = lock_fh, .owner = 0x10000 + id, .lk = { id * 16, id * 16 + 15, F_WRLCK, 1 } };
    s->step = 0;
    req(w, s, FUSE_SETLK, lock_node, sizeof *a, 0, 0, 16);
    break;
  }
  case K_SETLKW: {
    struct fuse_lk_in *a = args_of(s);
    *a = (struct fuse_lk_in){ .fh = lock_fh, .owner = 0x5e7, .lk = { 0, INT64_MAX, F_WRLCK, 4242 } };
    req(w, s, FUSE_SETLKW, lock_node, sizeof *a, 0, 0, 16);
    break;
  }
  }
  return 1;
}

static void op_done(struct worker *w, struct slot *s, uint64_t now) {
  if (atomic_load_explicit(&phase, memory_order_relaxed) == PH_MEASURE) {
    uint64_t v = now - s->t0;
    int idx;
    if (v < 64) idx = (int)v;
    else {
      int e = 63 - __builtin_clzll(v);
      idx = (e - 5) * 64 + (int)((v >> (e - 6)) & 63);
    }
    w->hist.b[idx]++;
    w->hist.n++;
    w->ops++;
  }
}

static void mark_bad(struct worker *w, struct slot *s, const char *why, uint32_t len) {
  if (!w->bad++) {
    const struct fuse_out_header *oh = (const void *)s->out;
    snprintf(w->bad_reason, sizeof w->bad_reason, "opcode %d: %s (used len %u, out.len %u, error %d, unique %llx want %llx)", s->opcode, why, len,
             oh->len, oh->error, (unsigned long long)oh->unique, (unsigned long long)s->unique);
  }
}

/* Handles a reply: checks it, goes on with a composite op, or completes the op. Returns 1 if the
 * slot is free for a new op. */
static int on_reply(struct worker *w, struct slot *s, uint32_t len, uint64_t now) {
  const struct fuse_out_header *oh = (const void *)s->out;
  s->busy = 0;
  if (len < 16 || oh->unique != s->unique || oh->len != len) return mark_bad(w, s, "malformed reply", len), 1;
  if (s->kind == K_SETLKW) {
    w->setlkw_state = oh->error ? 3 : 2;
    w->setlkw_errno = oh->error;
    return 0; /* never sent again */
  }
  if (oh->error) {
    if (!w->errors++) w->first_errno = oh->error;
    return 1;
  }
  if (s->expect_len && len != s->expect_len) return mark_bad(w, s, "wrong length", len), 1;
  int stopping = atomic_load_explicit(&phase, memory_order_relaxed) == PH_STOP;
  switch (s->opcode) {
  case FUSE_WRITE:
    if (((const struct fuse_write_out *)s->body)->size != 4096) return mark_bad(w, s, "short write", len), 1;
    break;
  case FUSE_CREATE: {
    const struct fuse_entry_out *e = (const void *)s->body;
    const struct fuse_open_out *o = (const void *)(s->body + sizeof *e);
    s->nodeid = e->nodeid;
    if (stopping) return forget_one(s->nodeid), 1;
    struct fuse_release_in *a = args_of(s);
    *a = (struct fuse_release_in){ .fh = o->fh, .flags = O_RDWR };
    req(w, s, FUSE_RELEASE, s->nodeid, sizeof *a, 0, 0, 16);
    return 0;
  }
  case FUSE_RELEASE:
    req_name(w, s, FUSE_UNLINK, cr_node, s->name, 0, 0);
    return 0;
  case FUSE_SETLK:
    if (s->step == 0) {
      struct fuse_lk_in *a = args_of(s);
      a->lk.type = F_UNLCK;
      s->step = 1;
      req(w, s, FUSE_SETLK, lock_node, sizeof *a, 0, 0, 16);
      return 0;
    }
    break;
  case FUSE_UNLINK:
    forget_one(s->nodeid); /* the kernel drops the unlinked inode at once */
    break;
  case FUSE_OPENDIR:
    s->fh = ((const struct fuse_open_out *)s->body)->fh;
    s->offset = 0;
    req_read(w, s, dir_node, s->fh, 0, RDP_BUF, 1);
    return 0;
  case FUSE_READDIRPLUS: {
    if (len > 16) {
      uint32_t n = 0, off = 0, total = len - 16;
      while (off + FUSE_NAME_OFFSET_DIRENTPLUS <= total) {
        const struct fuse_direntplus *d = (const void *)(s->body + off);
        uint32_t sz = (uint32_t)FUSE_DIRENTPLUS_SIZE(d);
        if (off + sz > total) return mark_bad(w, s, "truncated direntplus", len), 1;
        int dot = d->dirent.namelen <= 2 && d->dirent.name[0] == '.' && (d->dirent.namelen == 1 || d->dirent.name[1] == '.');
        if (!dot) s->entries++;
        if (d->entry_out.nodeid && !dot && n < FORGET_MAX) s->forget[n++] = d->entry_out.nodeid;
        s->offset = d->dirent.off;
        off += sz;
      }
      if (n) forget_batch(s->forget, n);
      if (!stopping) {
        req_read(w, s, dir_node, s->fh, s->offset, RDP_BUF, 1);
        return 0;
      }
      s->step = 1; /* cut short by the end of the run: not a whole listing */
    } else s->step = 0;
    struct fuse_release_in *a = args_of(s);
    *a = (struct fuse_release_in){ .fh = s->fh, .flags = O_RDONLY | O_DIRECTORY };
    req(w, s, FUSE_RELEASEDIR, dir_node, sizeof *a, 0, 0, 16);
    return 0;
  }
  case FUSE_RELEASEDIR:
    if (s->step) return 1;
    if (s->entries != (uint32_t)cfg.dir_entries) {
      char why[64];
      snprintf(why, sizeof why, "listing had %u entries, %d expected", s->entries, cfg.dir_entries);
      return mark_bad(w, s, why, len), 1;
    }
    break;
  }
  op_done(w, s, now);
  return 1;
}

static void *worker_main(void *arg) {
  struct worker *w = arg;
  struct vq *q = w->q;
  uint64_t now = now_ns(), last_progress = now;
  int inflight = 0;
  for (int i = 0; i < w->nslots; i++)
    if (start_op(w, &w->slots[i], now)) inflight++;
  // One SETLKW, on the first queue: with several queues the others' GETATTRs show what it costs them.
  if (cur_kind == K_SETLKW_GETATTR && w == &workers[0]) {
    struct slot *s = &w->slots[w->nslots];
    s->lock = 1;
    start_op(w, s, now);
    w->setlkw_state = 1;
  }
  vq_publish(q);
  for (;;) {
    uint32_t id, len;
    while (vq_pop_used(q, &id, &len)) {
      now = now_ns();
      last_progress = now;
      uint32_t si = id / DESC_PER_SLOT;
      if (id % DESC_PER_SLOT || si > (uint32_t)w->nslots || !w->slots[si].busy) die("queue %d: used id %u is no request in flight", w->qi, id);
      struct slot *s = &w->slots[si];
      int is_lock = s->kind == K_SETLKW;
      if (on_reply(w, s, len, now) && !is_lock) {
        inflight--;
        if (atomic_load_explicit(&phase, memory_order_relaxed) != PH_STOP && start_op(w, s, now)) inflight++;
      }
      vq_publish(q); /* refill as each one completes, not in batches */
    }
    if (!inflight) break;
    if (atomic_load_explicit(&phase, memory_order_relaxed) == PH_STOP && now_ns() > stop_at + 2000000000ull) break; /* drain cap */
    if (vq_arm_and_check(q)) continue;
    if (!vq_wait(q, 100) && now_ns() - last_progress > 10000000000ull)
      die("stall: queue %d had %d requests in flight and no reply for 10 s", w->qi, inflight);
  }
  atomic_fetch_add(&workers_done, 1);
  return NULL;
}

/* --- setup: synchronous requests on queue 1 before the workers start --- */

static const struct fuse_out_header *sync_req(struct worker *w, struct slot *s) {
  vq_publish(w->q);
  uint64_t t0 = now_ns();
  uint32_t id, len;
  while (!vq_pop_used(w->q, &id, &len)) {
    if (!vq_arm_and_check(w->q)) vq_wait(w->q, 100);
    if (now_ns() - t0 > 5000000000ull) die("setup: opcode %d had no reply in 5 s", s->opcode);
  }
  const struct fuse_out_header *oh = (const void *)s->out;
  s->busy = 0;
  if (id != s->head || len < 16 || oh->unique != s->unique) die("setup: malformed reply to opcode %d", s->opcode);
  return oh;
}

static uint64_t setup_lookup(struct worker *w, uint64_t parent, const char *name) {
  struct slot *s = &w->slots[0];
  req_name(w, s, FUSE_LOOKUP, parent, name, 0, sizeof(struct fuse_entry_out));
  const struct fuse_out_header *oh = sync_req(w, s);
  if (oh->error) die("setup: LOOKUP %s: error %d", name, oh->error);
  return ((const struct fuse_entry_out *)s->body)->nodeid;
}

static uint64_t setup_open(struct worker *w, uint64_t node, int flags) {
  struct slot *s = &w->slots[0];
  struct fuse_open_in *a = args_of(s);
  *a = (struct fuse_open_in){ .flags = (uint32_t)flags };
  req(w, s, FUSE_OPEN, node, sizeof *a, 0, sizeof(struct fuse_open_out), 0);
  const struct fuse_out_header *oh = sync_req(w, s);
  if (oh->error) die("setup: OPEN: error %d", oh->error);
  return ((const struct fuse_open_out *)s->body)->fh;
}

static void setup_init(struct worker *w) {
  struct slot *s = &w->slots[0];
  struct fuse_init_in *a = args_of(s);
  /* What a 6.x kernel asks for, less what would change the request format or the semantics
   * (writeback cache, security contexts, supplementary groups, no-open). */
  *a = (struct fuse_init_in){ .major = FUSE_KERNEL_VERSION, .minor = FUSE_KERNEL_MINOR_VERSION, .max_readahead = 131072,
    .flags = FUSE_ASYNC_READ | FUSE_POSIX_LOCKS | FUSE_ATOMIC_O_TRUNC | FUSE_EXPORT_SUPPORT | FUSE_BIG_WRITES | FUSE_DONT_MASK |
             FUSE_FLOCK_LOCKS | FUSE_AUTO_INVAL_DATA | FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO | FUSE_ASYNC_DIO |
             FUSE_PARALLEL_DIROPS | FUSE_HANDLE_KILLPRIV | FUSE_ABORT_ERROR | FUSE_MAX_PAGES | FUSE_CACHE_SYMLINKS |
             FUSE_EXPLICIT_INVAL_DATA | FUSE_INIT_EXT };
  req(w, s, FUSE_INIT, 0, sizeof *a, 0, sizeof(struct fuse_init_out), 0);
  const struct fuse_out_header *oh = sync_req(w, s);
  const struct fuse_init_out *o = (const void *)s->body;
  if (oh->error || oh->len < 16 + 24 || o->major != 7) die("setup: INIT failed (error %d, len %u)", oh->error, oh->len);
}

static void setup_phase(struct worker *w, int kind) {
  switch (kind) {
  case K_GETATTR: case K_LOOKUP: file_node = setup_lookup(w, 1, "file.txt"); break;
  case K_SETLKW_GETATTR:
    file_node = setup_lookup(w, 1, "file.txt");
    lock_node = setup_lookup(w, 1, "lock.txt");
    lock_fh = setup_open(w, lock_node, O_RDWR);
    break;
  case K_SOAK:
    cr_node = setup_lookup(w, 1, "cr");
    dir_node = setup_lookup(w, 1, "dir1000");
    lock_node = setup_lookup(w, 1, "lock.txt");
    lock_fh = setup_open(w, lock_node, O_RDWR);
    /* fall through */
  case K_MIX: file_node = setup_lookup(w, 1, "file.txt"); /* fall through */
  case K_READ4K: case K_READ1M: case K_WRITE4K:
    data_node = setup_lookup(w, 1, "data.bin");
    data_fh = setup_open(w, data_node, O_RDONLY);
    wdata_node = setup_lookup(w, 1, "wdata.bin");
    wdata_fh = setup_open(w, wdata_node, O_RDWR);
    break;
  case K_CREATE: cr_node = setup_lookup(w, 1, "cr"); break;
  case K_READDIRPLUS: dir_node = setup_lookup(w, 1, "dir1000"); break;
  case K_LOOKUP_MANY: many_node = setup_lookup(w, 1, "many"); break;
  }
}

/* --- phases and output --- */

static double pct_us(const struct hist *h, double p) {
  uint64_t want = (uint64_t)(p * (double)h->n), c = 0;
  for (int i = 0; i < 64 * 64; i++) {
    c += h->b[i];
    if (c > want) {
      if (i < 64) return i / 1000.0;
      int e = i / 64 + 5;
      uint64_t lo = (64ull + (uint64_t)(i % 64)) << (e - 6), width = 1ull << (e - 6);
      return (double)(lo + width / 2) / 1000.0;
    }
  }
  return 0;
}

static void sleep_watching(double seconds) {
  uint64_t until = now_ns() + (uint64_t)(seconds * 1e9);
  for (;;) {
    uint64_t t = now_ns();
    if (t >= until || atomic_load(&workers_done) == nworkers) return;
    int ms = (int)((until - t) / 1000000) + 1;
    if (cfg.self_echo) { usleep((useconds_t)(ms < 50 ? ms : 50) * 1000); continue; }
    struct pollfd pf = { vu_sock, POLLIN | POLLRDHUP, 0 };
    if (poll(&pf, 1, ms < 50 ? ms : 50) > 0) {
      char c[256];
      ssize_t r = recv(vu_sock, c, sizeof c, MSG_DONTWAIT);
      if (r == 0 || (pf.revents & (POLLHUP | POLLERR))) die("the daemon closed the connection (revents 0x%x)", pf.revents);
      if (r < 0 && errno != EAGAIN && errno != EINTR) die("vhost-user socket: %s", strerror(errno));
      if (r > 0) fprintf(stderr, "loadgen: %zd unexpected bytes from the daemon on the vhost-user socket\n", r);
    }
  }
}

/* --marks: the harness samples the daemon's CPU at the timed window's edges; we wait for its ack. */
static void mark(const char *what) {
  if (!cfg.marks) return;
  printf("{\"mark\":\"%s\"}\n", what);
  fflush(stdout);
  char line[64];
  if (!fgets(line, sizeof line, stdin)) die("stdin closed at mark %s", what);
}

static double cpu_us(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

/* --report S: a line every S seconds of the timed window with the ops and errors so far (read
 * from the workers' counters as they go: a report, not a measurement). */
static void report_every(double every, double seconds) {
  uint64_t t0 = now_ns();
  for (double t = every;; t += every) {
    double left = seconds - (t - every);
    if (left <= 0) return;
    sleep_watching(left < every ? left : every);
    uint64_t ops = 0, errors = 0, bad = 0;
    for (int i = 0; i < nworkers; i++) ops += workers[i].ops, errors += workers[i].errors, bad += workers[i].bad;
    printf("{\"report\":%.3f,\"ops\":%llu,\"errors\":%llu,\"bad\":%llu}\n", (double)(now_ns() - t0) / 1e9, (unsigned long long)ops,
           (unsigned long long)errors, (unsigned long long)bad);
    fflush(stdout);
  }
}

static void run_phase(int kind) {
  cur_kind = kind;
  atomic_store(&phase, kind == K_LOOKUP_MANY ? PH_MEASURE : PH_WARMUP);
  atomic_store(&workers_done, 0);
  atomic_store(&many_next, 0);
  for (int i = 0; i < nworkers; i++) {
    struct worker *w = &workers[i];
    w->ops = w->errors = w->bad = 0;
    w->first_errno = w->setlkw_state = w->setlkw_errno = 0;
    w->bad_reason[0] = 0;
    memset(&w->hist, 0, sizeof w->hist);
    for (int j = 0; j <= w->nslots; j++) {
      w->slots[j].offset = (uint64_t)j << 20;
      w->slots[j].lock = 0;
    }
  }
  uint64_t t0 = now_ns();
  double c0 = cpu_us();
  for (int i = 0; i < nworkers; i++) pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]);
  if (kind != K_LOOKUP_MANY) {
    sleep_watching(cfg.warmup);
    mark("start");
    t0 = now_ns();
    c0 = cpu_us();
    atomic_store(&phase, PH_MEASURE);
    if (cfg.report > 0) report_every(cfg.report, cfg.seconds);
    else sleep_watching(cfg.seconds);
    mark("end");
    stop_at = now_ns();
    atomic_store(&phase, PH_STOP);
  } else {
    while (atomic_load(&workers_done) < nworkers) sleep_watching(3600);
  }
  uint64_t t1 = now_ns();
  double c1 = cpu_us();
  stop_at = t1;
  for (int i = 0; i < nworkers; i++) pthread_join(workers[i].thread, NULL);

  static struct hist all;
  memset(&all, 0, sizeof all);
  uint64_t ops = 0, errors = 0, bad = 0, kicks = 0;
  int first_errno = 0;
  const char *bad_reason = "";
  const char *lk = "none";
  char lkbuf[32];
  for (int i = 0; i < nworkers; i++) {
    struct worker *w = &workers[i];
    ops += w->ops;
    for (int j = 0; j < 64 * 64; j++) all.b[j] += w->hist.b[j];
    all.n += w->hist.n;
    if (w->errors && !errors) first_errno = w->first_errno;
    errors += w->errors;
    if (w->bad && !bad) bad_reason = w->bad_reason;
    bad += w->bad;
    kicks += w->q->kicks;
    if (w->setlkw_state == 1) lk = "waiting";
    else if (w->setlkw_state == 2) lk = "granted";
    else if (w->setlkw_state == 3) snprintf(lkbuf, sizeof lkbuf, "errno %d", w->setlkw_errno), lk = lkbuf;
  }
  double secs = (double)(t1 - t0) / 1e9;
  printf("{\"workload\":\"%s\",\"depth\":%d,\"queues\":%d,\"self_echo\":%s,\"ops\":%llu,\"seconds\":%.3f,\"ops_per_sec\":%.0f,"
         "\"p50_us\":%.1f,\"p99_us\":%.1f,\"errors\":%llu,\"first_errno\":%d,\"bad\":%llu,\"bad_reason\":\"%s\","
         "\"loadgen_cpu_us_per_op\":%.3f,\"kicks\":%llu,\"setlkw\":\"%s\"}\n",
         kind_names[kind], cfg.depth, cfg.queues, cfg.self_echo ? "true" : "false", (unsigned long long)ops, secs,
         secs > 0 ? (double)ops / secs : 0, pct_us(&all, 0.5), pct_us(&all, 0.99), (unsigned long long)errors, first_errno,
         (unsigned long long)bad, bad_reason, ops ? (c1 - c0) / (double)ops : 0, (unsigned long long)kicks, lk);
  fflush(stdout);
}

static void hold_point(const char *what) {
  if (!cfg.hold) return;
  printf("{\"hold\":\"%s\"}\n", what);
  fflush(stdout);
  char line[64];
  if (!fgets(line, sizeof line, stdin)) return;
}

static int hold_lock(const char *path) {
  int fd = open(path, O_RDWR | O_CLOEXEC);
  struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
  if (fd < 0 || fcntl(fd, F_SETLK, &fl) < 0) die("lock %s: %s", path, strerror(errno));
  printf("{\"locked\":true}\n");
  fflush(stdout);
  char buf[64];
  while (read(0, buf, sizeof buf) > 0) {}
  return 0;
}

static size_t body_for(int kind) {
  switch (kind) {
  case K_READ4K: case K_MIX: return 4096;
  case K_READ1M: return 1u << 20;
  case K_READDIRPLUS: case K_SOAK: return RDP_BUF;
  default: return 256;
  }
}

int main(int argc, char **argv) {
  int kinds[8], nk = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--hold-lock") && v) return hold_lock(v);
    else if (!strcmp(a, "--self-echo")) cfg.self_echo = 1;
    else if (!strcmp(a, "--hold")) cfg.hold = 1;
    else if (!strcmp(a, "--marks")) cfg.marks = 1;
    else if (!v) die("option %s needs a value", a);
    else if (!strcmp(a, "--socket")) cfg.socket = v, i++;
    else if (!strcmp(a, "--workload")) cfg.workloads = v, i++;
    else if (!strcmp(a, "--depth")) cfg.depth = atoi(v), i++;
    else if (!strcmp(a, "--queues")) cfg.queues = atoi(v), i++;
    else if (!strcmp(a, "--seconds")) cfg.seconds = atof(v), i++;
    else if (!strcmp(a, "--warmup")) cfg.warmup = atof(v), i++;
    else if (!strcmp(a, "--report")) cfg.report = atof(v), i++;
    else if (!strcmp(a, "--count")) cfg.count = atol(v), i++;
    else if (!strcmp(a, "--dir-entries")) cfg.dir_entries = atoi(v), i++;
    else die("unknown option %s", a);
  }
  if (!cfg.workloads || (!cfg.socket && !cfg.self_echo)) die("usage: loadgen --socket S --workload W[,W2] --depth D [--queues Q] [--seconds T] [--self-echo] [--hold]");
  if (cfg.depth < 1 || cfg.depth >= MAX_SLOTS) die("depth must be 1..%d", MAX_SLOTS - 1);
  if (cfg.queues < 1 || cfg.queues > MAX_QUEUES) die("queues must be 1..%d", MAX_QUEUES);
  char list[128];
  snprintf(list, sizeof list, "%s", cfg.workloads);
  for (char *t = strtok(list, ","); t && nk < 8; t = strtok(NULL, ",")) {
    int k;
    for (k = 0; k < NKINDS && strcmp(t, kind_names[k]); k++) {}
    if (k == NKINDS) die("unknown workload %s", t);
    kinds[nk++] = k;
    if (body_for(k) > cfg.body_max) cfg.body_max = body_for(k);
  }
  if (cfg.self_echo) for (int i = 0; i < nk; i++)
    if (kinds[i] == K_CREATE || kinds[i] == K_READDIRPLUS || kinds[i] == K_SETLKW_GETATTR) die("--self-echo serves single-request workloads only");

  /* Guest RAM: rings, then per slot its buffers, then the hiprio buffers. */
  int nslots = cfg.depth + 1; /* + the SETLKW slot */
  size_t per_slot = 4096 + 4096 + 4096 + ((cfg.body_max + 4095) & ~(size_t)4095);
  size_t size = (size_t)(cfg.queues + 1) * 64 * 1024 + (size_t)cfg.queues * (size_t)nslots * per_slot + HIPRIO_SLOTS * 36864 + (1u << 20);
  ram_create(size);
  if (cfg.self_echo) for (int i = 0; i <= cfg.queues; i++) vq_setup_local(&qs[i], i);
  else vu_connect(cfg.socket, cfg.queues + 1, qs);
  hp.q = &qs[0];
  for (int i = 0; i < HIPRIO_SLOTS; i++) hp.buf[i] = ram_alloc(40 + 8 + FORGET_MAX * 16, 64);

  nworkers = cfg.queues;
  workers = calloc((size_t)nworkers, sizeof *workers);
  for (int i = 0; i < nworkers; i++) {
    struct worker *w = &workers[i];
    w->qi = i + 1;
    w->q = &qs[i + 1];
    w->nslots = cfg.depth;
    w->rng = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1);
    for (int j = 0; j < nslots; j++) {
      struct slot *s = &w->slots[j];
      s->head = (uint16_t)(j * DESC_PER_SLOT);
      s->in = ram_alloc(4096, 4096);
      s->wdata = ram_alloc(4096, 4096);
      memset(s->wdata, 0x5a, 4096);
      s->out = ram_alloc(64, 64);
      s->body = ram_alloc(cfg.body_max, 4096);
      s->forget = calloc(FORGET_MAX, sizeof(uint64_t));
    }
    if (cfg.self_echo) pthread_create(&w->echo, NULL, echo_device, w->q);
  }
  if (!cfg.self_echo) {
    setup_init(&workers[0]);
    for (int i = 0; i < nk; i++) setup_phase(&workers[0], kinds[i]);
  }
  hold_point("ready");
  for (int i = 0; i < nk; i++) {
    run_phase(kinds[i]);
    hold_point("phase");
  }
  if (cfg.self_echo) {
    atomic_store(&echo_stop, 1);
    for (int i = 0; i < nworkers; i++) pthread_join(workers[i].echo, NULL);
  }
  return 0;
}
