// libc calls that Node's fs lacks (openat with O_PATH, *at calls, statx into a reused buffer, OFD locks,
// flock, signals, thread ids, fs credentials), through koffi, in the project's libc convention (the same
// in vhost, passthrough and cli): libc loaded once per thread at module load (each worker thread loads
// its own copy of this module), every function declared once at module scope with its C prototype (no
// per-call lookup or type parsing), errno read with koffi.errno() right after the call. Calls return
// -errno instead of throwing (orErrno): the callers turn errno into SysErrno with check(name, ret) from
// ./errno or retry on EINTR, and a throw-free path keeps the worker loop simple.
import koffi from 'koffi';

const libc = koffi.load('libc.so.6');

/** `ret`, or -errno when the call failed (negative). Call right after the call. */
function orErrno(ret: number): number {
  return ret < 0 ? -koffi.errno() : ret;
}

/** A char * argument: bytes with a NUL (names are bytes, not always UTF-8). */
type CStr = Uint8Array;
/** A pointer argument the kernel reads or fills in place (koffi passes a Buffer's own bytes). */
type Ptr = Buffer;

const c = {
  close: libc.func('int close(int fd)') as (fd: number) => number,
  openat: libc.func('int openat(int dirfd, const char *name, int flags, uint32_t mode)') as (dirFd: number, name: CStr, flags: number, mode: number) => number,
  fcntlPtr: libc.func('int fcntl(int fd, int cmd, void *arg)') as (fd: number, cmd: number, arg: Ptr) => number,
  fcntlInt: libc.func('int fcntl(int fd, int cmd, int arg)') as (fd: number, cmd: number, arg: number) => number,
  faccessat: libc.func('int faccessat(int dirfd, const char *name, int mode, int flags)') as (dirFd: number, name: CStr, mode: number, flags: number) => number,
  prlimit: libc.func('int prlimit(int pid, int resource, const void *next, void *old)') as (pid: number, resource: number, next: Ptr | null, old: Ptr) => number,
  flock: libc.func('int flock(int fd, int op)') as (fd: number, op: number) => number,
  syscall1: libc.func('long syscall(long number)') as (nr: number) => number,
  // syscall(2) is variadic; integer and pointer arguments pass the same way on x86-64.
  syscallIntPtr: libc.func('long syscall(long number, long a, void *b)') as (nr: number, a: number, b: Ptr) => number,
  tgkill: libc.func('int tgkill(int pid, int tid, int sig)') as (pid: number, tid: number, sig: number) => number,
  sigaction: libc.func('int sigaction(int sig, const void *act, void *oldact)') as (sig: number, act: Ptr | null, oldact: Ptr | null) => number,
  pthreadSigmask: libc.func('int pthread_sigmask(int how, const void *set, void *oldset)') as (how: number, set: Ptr, old: null) => number,
  // void * results are BigInt addresses (null for NULL) in koffi.
  dlsym: libc.func('void *dlsym(void *handle, const char *name)') as (handle: null, name: string) => bigint | null,
  getdents64: libc.func('int64_t getdents64(int fd, void *buf, size_t size)') as (fd: number, buf: Ptr, size: number) => number,
  pread: libc.func('int64_t pread(int fd, void *buf, size_t count, int64_t offset)') as (fd: number, buf: Uint8Array, count: number, offset: number) => number,
  pwrite: libc.func('int64_t pwrite(int fd, const void *buf, size_t count, int64_t offset)') as (fd: number, buf: Uint8Array, count: number, offset: number) => number,
  // off_t results can use all 63 bits (directory cookies): koffi returns a BigInt when a Number would round.
  lseek: libc.func('int64_t lseek(int fd, int64_t offset, int whence)') as (fd: number, offset: bigint, whence: number) => number | bigint,
  mkdirat: libc.func('int mkdirat(int dirfd, const char *name, uint32_t mode)') as (dirFd: number, name: CStr, mode: number) => number,
  mknodat: libc.func('int mknodat(int dirfd, const char *name, uint32_t mode, uint64_t dev)') as (dirFd: number, name: CStr, mode: number, dev: number) => number,
  symlinkat: libc.func('int symlinkat(const char *target, int dirfd, const char *name)') as (target: CStr, dirFd: number, name: CStr) => number,
  readlinkat: libc.func('int64_t readlinkat(int dirfd, const char *name, void *buf, size_t size)') as (dirFd: number, name: CStr, buf: Ptr, size: number) => number,
  unlinkat: libc.func('int unlinkat(int dirfd, const char *name, int flags)') as (dirFd: number, name: CStr, flags: number) => number,
  renameat2: libc.func('int renameat2(int olddir, const char *oldname, int newdir, const char *newname, uint32_t flags)') as (oldDir: number, oldName: CStr, newDir: number, newName: CStr, flags: number) => number,
  linkat: libc.func('int linkat(int olddir, const char *oldname, int newdir, const char *newname, int flags)') as (oldDir: number, oldName: CStr, newDir: number, newName: CStr, flags: number) => number,
  fchownat: libc.func('int fchownat(int dirfd, const char *name, uint32_t uid, uint32_t gid, int flags)') as (dirFd: number, name: CStr, uid: number, gid: number, flags: number) => number,
  utimensat: libc.func('int utimensat(int dirfd, const char *name, const void *times, int flags)') as (dirFd: number, name: CStr, times: Ptr, flags: number) => number,
  fallocate: libc.func('int fallocate(int fd, int mode, int64_t offset, int64_t len)') as (fd: number, mode: number, offset: number, len: number) => number,
  copyFileRange: libc.func('int64_t copy_file_range(int fdin, void *offin, int fdout, void *offout, size_t len, uint32_t flags)') as (fdIn: number, offIn: Ptr, fdOut: number, offOut: Ptr, len: number, flags: number) => number,
  syncfs: libc.func('int syncfs(int fd)') as (fd: number) => number,
  fstatfs: libc.func('int fstatfs(int fd, void *buf)') as (fd: number, buf: Ptr) => number,
  getxattr: libc.func('int64_t getxattr(const char *path, const char *name, void *value, size_t size)') as (path: CStr, name: CStr, value: Ptr | null, size: number) => number,
  listxattr: libc.func('int64_t listxattr(const char *path, void *list, size_t size)') as (path: CStr, list: Ptr | null, size: number) => number,
  setxattr: libc.func('int setxattr(const char *path, const char *name, const void *value, size_t size, int flags)') as (path: CStr, name: CStr, value: Uint8Array, size: number, flags: number) => number,
  removexattr: libc.func('int removexattr(const char *path, const char *name)') as (path: CStr, name: CStr) => number,
  statx: libc.func('int statx(int dirfd, const char *name, int flags, uint32_t mask, void *buf)') as (dirFd: number, name: CStr, flags: number, mask: number, buf: Ptr) => number,
  nameToHandleAt: libc.func('int name_to_handle_at(int dirfd, const char *name, void *handle, void *mountid, int flags)') as (dirFd: number, name: CStr, handle: Ptr, mountId: Ptr, flags: number) => number,
  openByHandleAt: libc.func('int open_by_handle_at(int mountfd, void *handle, int flags)') as (mountFd: number, handle: Ptr, flags: number) => number,
  // setfsuid/setfsgid return the previous id and never set errno.
  setfsuid: libc.func('int setfsuid(uint32_t uid)') as (uid: number) => number,
  setfsgid: libc.func('int setfsgid(uint32_t gid)') as (gid: number) => number,
};

/** A NUL-terminated copy of a name for char* parameters (names are bytes, not always UTF-8). */
export function cString(name: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(name.length + 1);
  b.set(name, 0);
  b[name.length] = 0;
  return b;
}

// The per-request calls take one name each: it goes through a per-thread scratch buffer instead of a
// fresh copy (only during the synchronous call; a longer name gets its own copy).
const scratch = Buffer.allocUnsafe(4096);
function cName(name: Uint8Array): Uint8Array {
  if (name.length >= scratch.length) return cString(name);
  scratch.set(name, 0);
  scratch[name.length] = 0;
  return scratch;
}

/** The empty path for AT_EMPTY_PATH calls. */
const EMPTY = Buffer.alloc(1);

export function openat(dirFd: number, name: Uint8Array, flags: number, mode: number): number {
  return orErrno(c.openat(dirFd, cName(name), flags, mode));
}

/** fcntl with a pointer argument (struct flock); the kernel writes back into `arg` (passed in place). */
export function fcntlPtr(fd: number, cmd: number, arg: Buffer): number {
  return orErrno(c.fcntlPtr(fd, cmd, arg));
}

export function fcntlInt(fd: number, cmd: number, arg: number): number {
  return orErrno(c.fcntlInt(fd, cmd, arg));
}

export function faccessat(dirFd: number, name: Uint8Array, mode: number, flags: number): number {
  return orErrno(c.faccessat(dirFd, cName(name), mode, flags));
}

const RLIMIT_NOFILE = 7;

/** prlimit(pid, RLIMIT_NOFILE, new, old) (pid 0: this process): the old limits, or -errno. */
export function prlimitNofile(pid: number, next?: { soft: bigint; hard: bigint }): { soft: bigint; hard: bigint } | number {
  const ob = Buffer.alloc(16);
  let nb: Buffer | null = null;
  if (next) {
    nb = Buffer.alloc(16);
    nb.writeBigUInt64LE(next.soft, 0);
    nb.writeBigUInt64LE(next.hard, 8);
  }
  const r = orErrno(c.prlimit(pid, RLIMIT_NOFILE, nb, ob));
  if (r < 0) return r;
  return { soft: ob.readBigUInt64LE(0), hard: ob.readBigUInt64LE(8) };
}

export function flock(fd: number, operation: number): number {
  return orErrno(c.flock(fd, operation));
}

const SYS_gettid = 186; // x86-64

/** The kernel thread id of the calling thread (what tgkill targets). */
export function gettid(): number {
  return orErrno(c.syscall1(SYS_gettid));
}

export function tgkill(pid: number, tid: number, sig: number): number {
  return orErrno(c.tgkill(pid, tid, sig));
}

/** sigaction(sig, act, oldact); null is a null pointer. */
export function sigaction(sig: number, act: Buffer | null, oldact: Buffer | null): number {
  return orErrno(c.sigaction(sig, act, oldact));
}

export function pthreadSigmask(how: number, set: Buffer): number {
  // pthread_sigmask returns the error number itself (positive) instead of setting errno.
  const r = c.pthreadSigmask(how, set, null);
  return r > 0 ? -r : r;
}

/** dlsym(RTLD_DEFAULT, name): the address of a symbol already loaded in the process, 0n if none. */
export function dlsymDefault(name: string): bigint {
  return BigInt.asUintN(64, c.dlsym(null, name) ?? 0n);
}

// ---- calls for the namespace and data operations (all return -errno on failure) ----

/** A NUL-terminated path string (for /proc/self/fd/N). */
function cPath(p: string): Buffer {
  return Buffer.from(`${p}\0`);
}

export function getdents64(fd: number, buf: Buffer): number {
  return orErrno(c.getdents64(fd, buf, buf.length));
}

/**
 * pread/pwrite of one buffer at `offset`: bytes moved, or -errno. Half the cost of fs.readvSync or
 * fs.readSync for a page (0.9 against 1.6 µs here): most READs and WRITEs are one page descriptor.
 */
export function pread(fd: number, buf: Uint8Array, offset: number): number {
  return orErrno(c.pread(fd, buf, buf.byteLength, offset));
}

export function pwrite(fd: number, buf: Uint8Array, offset: number): number {
  return orErrno(c.pwrite(fd, buf, buf.byteLength, offset));
}

/** lseek with 64-bit offsets (directory cookies use all 63 bits): the new offset, or -errno. */
export function lseek(fd: number, offset: bigint, whence: number): bigint {
  const r = BigInt(c.lseek(fd, offset, whence));
  return r < 0n ? BigInt(-koffi.errno()) : r;
}

export function mkdirat(dirFd: number, name: Uint8Array, mode: number): number {
  return orErrno(c.mkdirat(dirFd, cName(name), mode));
}

export function mknodat(dirFd: number, name: Uint8Array, mode: number, dev: number): number {
  return orErrno(c.mknodat(dirFd, cName(name), mode, dev));
}

export function symlinkat(target: Uint8Array, dirFd: number, name: Uint8Array): number {
  return orErrno(c.symlinkat(cString(target), dirFd, cName(name)));
}

/** readlinkat(fd, "", buf, size): the target of the symlink an O_PATH fd holds. */
export function readlinkEmpty(fd: number, buf: Buffer): number {
  return orErrno(c.readlinkat(fd, EMPTY, buf, buf.length));
}

export function unlinkat(dirFd: number, name: Uint8Array, flags: number): number {
  return orErrno(c.unlinkat(dirFd, cName(name), flags));
}

export function renameat2(oldDir: number, oldName: Uint8Array, newDir: number, newName: Uint8Array, flags: number): number {
  return orErrno(c.renameat2(oldDir, cString(oldName), newDir, cName(newName), flags));
}

/** linkat(AT_FDCWD, "/proc/self/fd/N", newDir, newName, AT_SYMLINK_FOLLOW): links the inode behind fd. */
export function linkFd(fd: number, newDir: number, newName: Uint8Array): number {
  const AT_FDCWD = -100;
  const AT_SYMLINK_FOLLOW = 0x400;
  return orErrno(c.linkat(AT_FDCWD, cPath(`/proc/self/fd/${fd}`), newDir, cName(newName), AT_SYMLINK_FOLLOW));
}

/** fchownat(fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW); -1 leaves an id unchanged. */
export function fchownEmpty(fd: number, uid: number, gid: number): number {
  return orErrno(c.fchownat(fd, EMPTY, uid >>> 0, gid >>> 0, 0x1000 | 0x100));
}

/** utimensat on the inode behind fd (through /proc/self/fd/N); times: 32 bytes (two timespecs). */
export function utimensFd(fd: number, times: Buffer): number {
  return orErrno(c.utimensat(-100, cPath(`/proc/self/fd/${fd}`), times, 0));
}

export function fallocate(fd: number, mode: number, offset: number, len: number): number {
  return orErrno(c.fallocate(fd, mode, offset, len));
}

/** copy_file_range with explicit offsets (8-byte buffers, updated by the kernel). */
export function copyFileRange(fdIn: number, offIn: Buffer, fdOut: number, offOut: Buffer, len: number, flags: number): number {
  return orErrno(c.copyFileRange(fdIn, offIn, fdOut, offOut, len, flags));
}

export function syncfs(fd: number): number {
  return orErrno(c.syncfs(fd));
}

/** fstatfs into a 120-byte struct statfs (x86-64). */
export function fstatfs(fd: number, buf: Buffer): number {
  return orErrno(c.fstatfs(fd, buf));
}

// xattrs by path (the inode behind /proc/self/fd/N: O_PATH fds refuse the f*xattr calls).
export function getxattr(path: string, name: Uint8Array, buf: Buffer | null): number {
  return orErrno(c.getxattr(cPath(path), cName(name), buf, buf ? buf.length : 0));
}

export function listxattr(path: string, buf: Buffer | null): number {
  return orErrno(c.listxattr(cPath(path), buf, buf ? buf.length : 0));
}

export function setxattr(path: string, name: Uint8Array, value: Uint8Array, flags: number): number {
  // A zero-length value still needs a valid pointer: one byte, size 0.
  const v = value.length > 0 ? value : EMPTY;
  return orErrno(c.setxattr(cPath(path), cName(name), v, value.length, flags));
}

export function removexattr(path: string, name: Uint8Array): number {
  return orErrno(c.removexattr(cPath(path), cName(name)));
}

/** setfsuid(id): the thread's previous fsuid (setfsuid(-1) changes nothing and reports it). */
export function setfsuid(id: number): number {
  return c.setfsuid(id >>> 0);
}

export function setfsgid(id: number): number {
  return c.setfsgid(id >>> 0);
}

const SYS_setgroups = 116; // x86-64

/**
 * The calling thread's supplementary groups, for this thread only: the raw system call, since glibc's
 * setgroups() applies to every thread of the process. 0 or -errno.
 */
export function setThreadGroups(groups: Uint32Array): number {
  return orErrno(c.syscallIntPtr(SYS_setgroups, groups.length, Buffer.from(groups.buffer, groups.byteOffset, groups.byteLength)));
}

const AT_EMPTY_PATH = 0x1000;
const AT_SYMLINK_NOFOLLOW = 0x100;
const STATX_BASIC_STATS = 0x7ff;
const STATX_MNT_ID = 0x1000;
/** Offset of stx_mnt_id in struct statx (linux/stat.h). */
const STX_MNT_ID = 0x90;
/** sizeof(struct statx): the same on every architecture. */
export const STATX_SIZE = 256;

/**
 * statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS) into `buf` (STATX_SIZE bytes,
 * reused by the caller: sys/stat.ts statxBuffer().bytes): 0, or -errno. Works on O_PATH fds; decode
 * with sys/stat.ts decodeStatx.
 */
export function statInto(fd: number, buf: Buffer): number {
  return orErrno(c.statx(fd, EMPTY, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, buf));
}

/** statx of `name` in directory `dirFd`, not following a final symlink (lstat), into `buf`: 0 or -errno. */
export function statAtInto(dirFd: number, name: Uint8Array, buf: Buffer): number {
  return orErrno(c.statx(dirFd, cName(name), AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, buf));
}

/**
 * The mount id of the inode behind fd (statx STATX_MNT_ID on "" with AT_EMPTY_PATH; works on O_PATH
 * fds): two directories with the same st_dev can still be on different mounts (bind mounts).
 * Negative on failure: -errno, or -1 when the kernel did not report a mount id.
 */
export function statxMntId(fd: number): bigint {
  const buf = Buffer.alloc(STATX_SIZE);
  const r = orErrno(c.statx(fd, EMPTY, AT_EMPTY_PATH, STATX_MNT_ID, buf));
  if (r < 0) return BigInt(r);
  if ((buf.readUInt32LE(0) & STATX_MNT_ID) === 0) return -1n;
  return buf.readBigUInt64LE(STX_MNT_ID);
}

/** MAX_HANDLE_SZ of linux/fcntl.h (struct file_handle's f_handle). */
const MAX_HANDLE_SZ = 128;

/**
 * name_to_handle_at(fd, "", AT_EMPTY_PATH): the inode's file handle (struct file_handle: handle_bytes,
 * handle_type, f_handle, trimmed to its size) and its mount id; -errno if the filesystem has none
 * (EOPNOTSUPP) or the call fails.
 */
export function nameToHandleAt(fd: number): { handle: Buffer; mountId: number } | number {
  const fh = Buffer.alloc(8 + MAX_HANDLE_SZ);
  fh.writeUInt32LE(MAX_HANDLE_SZ, 0);
  const mnt = Buffer.alloc(4);
  const r = orErrno(c.nameToHandleAt(fd, EMPTY, fh, mnt, AT_EMPTY_PATH));
  if (r < 0) return r;
  return { handle: fh.subarray(0, 8 + fh.readUInt32LE(0)), mountId: mnt.readInt32LE(0) };
}

/** open_by_handle_at(mountFd, handle, flags): a new fd of the inode, or -errno (ESTALE once it is gone). */
export function openByHandleAt(mountFd: number, handle: Buffer, flags: number): number {
  return orErrno(c.openByHandleAt(mountFd, handle, flags));
}

/** close(2) itself: in a worker thread, Node's fs.closeSync warns about fds its thread did not open. */
export function closeRaw(fd: number): number {
  return c.close(fd);
}
