// libc calls that Node's own modules do not offer (recvmsg with SCM_RIGHTS, mmap, memfd, eventfd),
// through koffi. The project's libc convention (the same in vhost, passthrough and cli): libc loaded
// once per thread at module load, every function declared once at module scope with its C prototype
// (a declaration costs about 12 µs, a call about 0.2 µs), errno read with koffi.errno() right after the
// call by orErrno (the value, or -errno), and check(name, ret) throwing the package's error for -errno.
import { getSystemErrorName } from 'node:util';
import koffi from 'koffi';

const libc = koffi.load('libc.so.6');

const strerror = libc.func('const char *strerror(int errnum)') as (errno: number) => string;

/** An errno-carrying error from a libc call, named like Node's system errors. */
export class SysError extends Error {
  /** The errno's name (ENOENT...), as Node's errors have it. */
  readonly code: string;

  constructor(
    readonly syscall: string,
    readonly errno: number,
    detail: string = strerror(errno),
  ) {
    const code = errnoName(errno);
    super(`${syscall}: ${detail} (errno ${errno} ${code})`);
    this.name = 'SysError';
    this.code = code;
  }
}

/** ENOENT for 2, ... (Node's table of the platform's errno names). */
export function errnoName(errno: number): string {
  try {
    return getSystemErrorName(-errno);
  } catch {
    return 'unknown error';
  }
}

/** `ret`, or -errno when the call failed (negative): wrap the call itself, nothing may run in between. */
export function orErrno(ret: number): number {
  return ret < 0 ? -koffi.errno() : ret;
}

/** `ret` from orErrno; throws SysError when it is -errno. */
export function check(name: string, ret: number): number {
  if (ret < 0) throw new SysError(name, -ret);
  return ret;
}

export const AF_UNIX = 1;
export const SOCK_STREAM = 1;
export const SOCK_CLOEXEC = 0x80000;
export const SOCK_NONBLOCK = 0x800;
export const SHUT_RDWR = 2;
export const MSG_CMSG_CLOEXEC = 0x40000000;
export const MSG_CTRUNC = 0x8;
export const MSG_NOSIGNAL = 0x4000;
export const SOL_SOCKET = 1;
export const SCM_RIGHTS = 1;
export const EFD_CLOEXEC = 0x80000;
export const EFD_NONBLOCK = 0x800;
export const MFD_CLOEXEC = 1;
export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const MAP_SHARED = 1;
export const MAP_PRIVATE = 2;
export const MAP_ANONYMOUS = 0x20;
export const F_GETFL = 3;
export const F_SETFL = 4;
export const O_NONBLOCK = 0x800;
export const O_ASYNC = 0x2000;
export const F_SETOWN = 8;
export const F_DUPFD_CLOEXEC = 1030;
export const EAGAIN = 11;
export const EINTR = 4;

/** struct sockaddr_un for a path (Linux: 108 bytes of sun_path). */
export function sockaddrUn(path: string): Buffer {
  const bytes = Buffer.from(path);
  if (bytes.length >= 108) throw new Error(`socket path too long (${bytes.length} bytes, max 107): ${path}`);
  const sa = Buffer.alloc(110);
  sa.writeUInt16LE(AF_UNIX, 0);
  bytes.copy(sa, 2);
  return sa;
}

const c = {
  socket: libc.func('int socket(int domain, int type, int protocol)') as (domain: number, type: number, protocol: number) => number,
  bind: libc.func('int bind(int fd, const void *addr, uint32_t len)') as (fd: number, addr: Buffer, len: number) => number,
  listen: libc.func('int listen(int fd, int backlog)') as (fd: number, backlog: number) => number,
  connect: libc.func('int connect(int fd, const void *addr, uint32_t len)') as (fd: number, addr: Buffer, len: number) => number,
  accept4: libc.func('int accept4(int fd, void *addr, void *len, int flags)') as (fd: number, addr: null, len: null, flags: number) => number,
  shutdown: libc.func('int shutdown(int fd, int how)') as (fd: number, how: number) => number,
  eventfd: libc.func('int eventfd(uint32_t initval, int flags)') as (initval: number, flags: number) => number,
  memfdCreate: libc.func('int memfd_create(const char *name, uint32_t flags)') as (name: string, flags: number) => number,
  fcntl: libc.func('int fcntl(int fd, int cmd, int arg)') as (fd: number, cmd: number, arg: number) => number,
  pipe2: libc.func('int pipe2(int *fds, int flags)') as (fds: Int32Array, flags: number) => number,
  // void * results are BigInt addresses in koffi.
  mmap: libc.func('void *mmap(void *addr, size_t length, int prot, int flags, int fd, int64_t offset)') as (addr: null, length: number, prot: number, flags: number, fd: number, offset: number) => bigint | null,
  munmap: libc.func('int munmap(void *addr, size_t length)') as (addr: bigint, length: number) => number,
  recvmsg: libc.func('int64_t recvmsg(int fd, void *msghdr, int flags)') as (fd: number, msghdr: bigint, flags: number) => number,
  sendmsg: libc.func('int64_t sendmsg(int fd, const void *msghdr, int flags)') as (fd: number, msghdr: bigint, flags: number) => number,
  flock: libc.func('int flock(int fd, int op)') as (fd: number, op: number) => number,
  getpid: libc.func('int getpid(void)') as () => number,
  close: libc.func('int close(int fd)') as (fd: number) => number,
  syscall1: libc.func('long syscall(long number, long a)') as (n: number, a: number) => number,
  schedSetaffinity: libc.func('int sched_setaffinity(int pid, size_t size, const void *mask)') as (pid: number, size: number, mask: Buffer) => number,
  schedGetcpu: libc.func('int sched_getcpu(void)') as () => number,
  write: libc.func('int64_t write(int fd, const void *buf, size_t count)') as (fd: number, buf: Buffer, count: number) => number,
};

export function socket(domain: number, type: number, protocol: number): number {
  return check('socket', orErrno(c.socket(domain, type, protocol)));
}

export function bind(fd: number, addr: Buffer): void {
  check('bind', orErrno(c.bind(fd, addr, addr.length)));
}

export function listen(fd: number, backlog: number): void {
  check('listen', orErrno(c.listen(fd, backlog)));
}

export function connect(fd: number, addr: Buffer): void {
  check('connect', orErrno(c.connect(fd, addr, addr.length)));
}

/** Blocking accept; run it off the main thread. */
export function accept4(fd: number, flags: number): number {
  return check('accept4', orErrno(c.accept4(fd, null, null, flags)));
}

export function shutdown(fd: number, how: number): void {
  check('shutdown', orErrno(c.shutdown(fd, how)));
}

export function eventfd(initval: number, flags: number): number {
  return check('eventfd', orErrno(c.eventfd(initval, flags)));
}

export function memfdCreate(name: string, flags: number): number {
  return check('memfd_create', orErrno(c.memfdCreate(name, flags)));
}

export function fcntl(fd: number, cmd: number, arg: number): number {
  return check('fcntl', orErrno(c.fcntl(fd, cmd, arg)));
}

/** A pipe: [read end, write end] (the front-end's channel of a device-state transfer, in tests). */
export function pipe2(flags = 0): [number, number] {
  const fds = new Int32Array(2);
  check('pipe2', orErrno(c.pipe2(fds, flags)));
  return [fds[0], fds[1]];
}

export function setNonBlocking(fd: number, on: boolean): void {
  const flags = fcntl(fd, F_GETFL, 0);
  fcntl(fd, F_SETFL, on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK);
}

/** A memory mapping visible from JS as a Buffer without copies. Unmap only when no view is used again. */
export interface Mapping {
  readonly address: bigint;
  readonly length: number;
  readonly buffer: Buffer;
}

const MAP_FAILED = 0xffffffffffffffffn;

export function mmap(length: number, prot: number, flags: number, fd: number, offset: number): Mapping {
  const address = c.mmap(null, length, prot, flags, fd, offset);
  if (address === null || BigInt.asUintN(64, address) === MAP_FAILED) throw new SysError('mmap', koffi.errno());
  // koffi.view: an ArrayBuffer over the mapped memory itself (no copy, nothing freed on collection).
  return { address, length, buffer: Buffer.from(koffi.view(address, length)) };
}

export function munmap(m: Mapping): void {
  check('munmap', orErrno(c.munmap(m.address, m.length)));
}

/** recvmsg with the msghdr at `msghdr` (an address in memory that stays mapped, as the structs it points to). */
export function recvmsg(fd: number, msghdr: bigint, flags: number): number {
  return check('recvmsg', orErrno(c.recvmsg(fd, msghdr, flags)));
}

export function sendmsg(fd: number, msghdr: bigint, flags: number): number {
  return check('sendmsg', orErrno(c.sendmsg(fd, msghdr, flags)));
}

export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const EWOULDBLOCK = 11;

/** flock(2): Node's fs has no file locks. Returns false when another process holds the lock. */
export function tryFlock(fd: number, op: number): boolean {
  const r = orErrno(c.flock(fd, op | LOCK_NB));
  if (r === 0) return true;
  if (r === -EWOULDBLOCK) return false;
  throw new SysError('flock', -r);
}

/** write(2) of `buf`: bytes written, or -errno. */
export function writeFd(fd: number, buf: Buffer): number {
  return orErrno(c.write(fd, buf, buf.length));
}

export function getpid(): number {
  return c.getpid();
}

/** A copy of `fd` (close-on-exec) that lives on after `fd` is closed: what another thread is handed. */
export function dupFd(fd: number): number {
  return check('fcntl(F_DUPFD_CLOEXEC)', fcntl(fd, F_DUPFD_CLOEXEC, 0));
}

const SYS_gettid = 186; // x86-64

/** The calling thread's kernel id (its /proc/PID/task/TID). */
export function gettid(): number {
  return c.syscall1(SYS_gettid, 0);
}

/** Binds the calling thread (pid 0) to `cpus` (sched_setaffinity affects one thread). */
export function bindThreadToCpus(cpus: readonly number[]): void {
  const mask = Buffer.alloc(128); // 1024 CPUs, glibc's cpu_set_t
  for (const cpu of cpus) {
    if (!Number.isInteger(cpu) || cpu < 0 || cpu >= 1024) throw new SysError('sched_setaffinity', 22, `no CPU ${cpu}`);
    mask[cpu >> 3] |= 1 << (cpu & 7);
  }
  check('sched_setaffinity', orErrno(c.schedSetaffinity(0, mask.length, mask)));
}

/** The CPU the calling thread runs on now. */
export function currentCpu(): number {
  return c.schedGetcpu();
}

/** close(2) itself: in a worker thread, Node's fs.closeSync warns about fds its thread did not open. */
export function closeRaw(fd: number): number {
  return orErrno(c.close(fd));
}
