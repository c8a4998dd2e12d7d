// libc calls that Node's fs lacks (openat with O_PATH, OFD locks, flock, signals, thread ids), through
// ffi-rs. Loaded in every thread that uses it; the main thread must load it too (see ensureLibc) or a
// worker's exit crashes the process. Calls return -errno instead of throwing: the callers turn errno
// into FsError or retry on EINTR, and a throw-free path keeps the worker loop simple.
import { DataType, load, open } from 'ffi-rs';

const LIB = 'vfsd-passthrough-libc';
let opened = false;

/** Opens libc for ffi-rs in the calling thread (idempotent). */
export function ensureLibc(): void {
  if (!opened) {
    open({ library: LIB, path: 'libc.so.6' });
    opened = true;
  }
}

type Param = DataType.I32 | DataType.I64 | DataType.U8Array | DataType.String;
const { I32, I64, U8Array } = DataType;

interface ErrnoResult {
  value: number;
  errnoCode: number;
}

/** Calls funcName; returns its value, or -errno when it returned a negative value. */
function call(funcName: string, retType: DataType.I32 | DataType.I64, paramsType: Param[], paramsValue: unknown[]): number {
  ensureLibc();
  const r = load({ library: LIB, funcName, retType, paramsType, paramsValue, errno: true }) as unknown as ErrnoResult;
  return r.value < 0 ? -r.errnoCode : r.value;
}

/** A NUL-terminated copy of a name for char* parameters (names are bytes, not always UTF-8). */
export function cString(name: Uint8Array): Buffer {
  const b = Buffer.alloc(name.length + 1);
  b.set(name, 0);
  return b;
}

export function openat(dirFd: number, name: Uint8Array, flags: number, mode: number): number {
  return call('openat', DataType.I32, [DataType.I32, DataType.U8Array, DataType.I32, DataType.I32], [dirFd, cString(name), flags, mode]);
}

/** fcntl with a pointer argument (struct flock); the kernel writes back into `arg` (ffi-rs passes it zero-copy). */
export function fcntlPtr(fd: number, cmd: number, arg: Buffer): number {
  return call('fcntl', DataType.I32, [DataType.I32, DataType.I32, DataType.U8Array], [fd, cmd, arg]);
}

export function fcntlInt(fd: number, cmd: number, arg: number): number {
  return call('fcntl', DataType.I32, [DataType.I32, DataType.I32, DataType.I32], [fd, cmd, arg]);
}

export function faccessat(dirFd: number, name: Uint8Array, mode: number, flags: number): number {
  return call('faccessat', DataType.I32, [DataType.I32, DataType.U8Array, DataType.I32, DataType.I32], [dirFd, cString(name), mode, flags]);
}

const RLIMIT_NOFILE = 7;

/** prlimit(pid, RLIMIT_NOFILE, new, old) (pid 0: this process): the old limits, or -errno. */
export function prlimitNofile(pid: number, next?: { soft: bigint; hard: bigint }): { soft: bigint; hard: bigint } | number {
  const nb = Buffer.alloc(16);
  const ob = Buffer.alloc(16);
  if (next) {
    nb.writeBigUInt64LE(next.soft, 0);
    nb.writeBigUInt64LE(next.hard, 8);
  }
  const r = call('prlimit', DataType.I32, [DataType.I32, DataType.I32, next ? DataType.U8Array : DataType.I64, DataType.U8Array], [pid, RLIMIT_NOFILE, next ? nb : 0, ob]);
  if (r < 0) return r;
  return { soft: ob.readBigUInt64LE(0), hard: ob.readBigUInt64LE(8) };
}

export function flock(fd: number, operation: number): number {
  return call('flock', DataType.I32, [DataType.I32, DataType.I32], [fd, operation]);
}

const SYS_gettid = 186; // x86-64

/** The kernel thread id of the calling thread (what tgkill targets). */
export function gettid(): number {
  return call('syscall', DataType.I64, [DataType.I64], [SYS_gettid]);
}

export function tgkill(pid: number, tid: number, sig: number): number {
  return call('tgkill', DataType.I32, [DataType.I32, DataType.I32, DataType.I32], [pid, tid, sig]);
}

/** sigaction(sig, act, oldact); a null pointer is passed as the integer 0. */
export function sigaction(sig: number, act: Buffer | null, oldact: Buffer | null): number {
  return call(
    'sigaction',
    DataType.I32,
    [DataType.I32, act ? DataType.U8Array : DataType.I64, oldact ? DataType.U8Array : DataType.I64],
    [sig, act ?? 0, oldact ?? 0],
  );
}

export function pthreadSigmask(how: number, set: Buffer): number {
  // pthread_sigmask returns the error number itself (positive) instead of setting errno.
  const r = call('pthread_sigmask', DataType.I32, [DataType.I32, DataType.U8Array, DataType.I64], [how, set, 0]);
  return r > 0 ? -r : r;
}

/** dlsym(RTLD_DEFAULT, name): the address of a symbol already loaded in the process, 0n if none. */
export function dlsymDefault(name: string): bigint {
  ensureLibc();
  const r = load({ library: LIB, funcName: 'dlsym', retType: DataType.BigInt, paramsType: [DataType.I64, DataType.String], paramsValue: [0, name] });
  return BigInt.asUintN(64, BigInt(r as unknown as bigint));
}

// ---- calls for the namespace and data operations (all return -errno on failure) ----

/** A NUL-terminated path string (for /proc/self/fd/N and "" with AT_EMPTY_PATH). */
function cPath(p: string): Buffer {
  return cString(Buffer.from(p));
}

export function getdents64(fd: number, buf: Buffer): number {
  return call('getdents64', I64, [I32, U8Array, I64], [fd, buf, buf.length]);
}

/** lseek with 64-bit offsets (directory cookies use all 63 bits): the new offset, or -errno. */
export function lseek(fd: number, offset: bigint, whence: number): bigint {
  ensureLibc();
  const r = load({ library: LIB, funcName: 'lseek', retType: DataType.BigInt, paramsType: [I32, DataType.BigInt, I32], paramsValue: [fd, offset, whence], errno: true }) as unknown as { value: bigint; errnoCode: number };
  return r.value < 0n ? BigInt(-r.errnoCode) : r.value;
}

export function mkdirat(dirFd: number, name: Uint8Array, mode: number): number {
  return call('mkdirat', I32, [I32, U8Array, I32], [dirFd, cString(name), mode]);
}

export function mknodat(dirFd: number, name: Uint8Array, mode: number, dev: number): number {
  return call('mknodat', I32, [I32, U8Array, I32, I64], [dirFd, cString(name), mode, dev]);
}

export function symlinkat(target: Uint8Array, dirFd: number, name: Uint8Array): number {
  return call('symlinkat', I32, [U8Array, I32, U8Array], [cString(target), dirFd, cString(name)]);
}

/** readlinkat(fd, "", buf, size): the target of the symlink an O_PATH fd holds. */
export function readlinkEmpty(fd: number, buf: Buffer): number {
  return call('readlinkat', I64, [I32, U8Array, U8Array, I64], [fd, cPath(''), buf, buf.length]);
}

export function unlinkat(dirFd: number, name: Uint8Array, flags: number): number {
  return call('unlinkat', I32, [I32, U8Array, I32], [dirFd, cString(name), flags]);
}

export function renameat2(oldDir: number, oldName: Uint8Array, newDir: number, newName: Uint8Array, flags: number): number {
  return call('renameat2', I32, [I32, U8Array, I32, U8Array, I32], [oldDir, cString(oldName), newDir, cString(newName), flags]);
}

/** linkat(AT_FDCWD, "/proc/self/fd/N", newDir, newName, AT_SYMLINK_FOLLOW): links the inode behind fd. */
export function linkFd(fd: number, newDir: number, newName: Uint8Array): number {
  const AT_FDCWD = -100;
  const AT_SYMLINK_FOLLOW = 0x400;
  return call('linkat', I32, [I32, U8Array, I32, U8Array, I32], [AT_FDCWD, cPath(`/proc/self/fd/${fd}`), newDir, cString(newName), AT_SYMLINK_FOLLOW]);
}

/** fchownat(fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW); -1 leaves an id unchanged. */
export function fchownEmpty(fd: number, uid: number, gid: number): number {
  return call('fchownat', I32, [I32, U8Array, I32, I32, I32], [fd, cPath(''), uid, gid, 0x1000 | 0x100]);
}

/** utimensat on the inode behind fd (through /proc/self/fd/N); times: 32 bytes (two timespecs). */
export function utimensFd(fd: number, times: Buffer): number {
  return call('utimensat', I32, [I32, U8Array, U8Array, I32], [-100, cPath(`/proc/self/fd/${fd}`), times, 0]);
}

export function fallocate(fd: number, mode: number, offset: number, len: number): number {
  return call('fallocate', I32, [I32, I32, I64, I64], [fd, mode, offset, len]);
}

/** copy_file_range with explicit offsets (8-byte buffers, updated by the kernel). */
export function copyFileRange(fdIn: number, offIn: Buffer, fdOut: number, offOut: Buffer, len: number, flags: number): number {
  return call('copy_file_range', I64, [I32, U8Array, I32, U8Array, I64, I32], [fdIn, offIn, fdOut, offOut, len, flags]);
}

export function syncfs(fd: number): number {
  return call('syncfs', I32, [I32], [fd]);
}

/** fstatfs into a 120-byte struct statfs (x86-64). */
export function fstatfs(fd: number, buf: Buffer): number {
  return call('fstatfs', I32, [I32, U8Array], [fd, buf]);
}

// xattrs by path (the inode behind /proc/self/fd/N: O_PATH fds refuse the f*xattr calls).
export function getxattr(path: string, name: Uint8Array, buf: Buffer | null): number {
  if (!buf) return call('getxattr', I64, [U8Array, U8Array, I64, I64], [cPath(path), cString(name), 0, 0]);
  return call('getxattr', I64, [U8Array, U8Array, U8Array, I64], [cPath(path), cString(name), buf, buf.length]);
}

export function listxattr(path: string, buf: Buffer | null): number {
  if (!buf) return call('listxattr', I64, [U8Array, I64, I64], [cPath(path), 0, 0]);
  return call('listxattr', I64, [U8Array, U8Array, I64], [cPath(path), buf, buf.length]);
}

export function setxattr(path: string, name: Uint8Array, value: Uint8Array, flags: number): number {
  // A zero-length U8Array is still a valid pointer for ffi-rs? Pass one byte and size 0 to be safe.
  const v = value.length > 0 ? Buffer.from(value) : Buffer.alloc(1);
  return call('setxattr', I32, [U8Array, U8Array, U8Array, I64, I32], [cPath(path), cString(name), v, value.length, flags]);
}

export function removexattr(path: string, name: Uint8Array): number {
  return call('removexattr', I32, [U8Array, U8Array], [cPath(path), cString(name)]);
}

const AT_EMPTY_PATH = 0x1000;
const STATX_MNT_ID = 0x1000;
/** Offset of stx_mnt_id in struct statx (linux/stat.h). */
const STX_MNT_ID = 0x90;

/**
 * The mount id of the inode behind fd (statx STATX_MNT_ID on "" with AT_EMPTY_PATH; works on O_PATH
 * fds): two directories with the same st_dev can still be on different mounts (bind mounts).
 * Negative on failure: -errno, or -1 when the kernel did not report a mount id.
 */
export function statxMntId(fd: number): bigint {
  const buf = Buffer.alloc(256);
  const r = call('statx', I32, [I32, U8Array, I32, I32, U8Array], [fd, Buffer.alloc(1), AT_EMPTY_PATH, STATX_MNT_ID, buf]);
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
  const r = call('name_to_handle_at', I32, [I32, U8Array, U8Array, U8Array, I32], [fd, Buffer.alloc(1), fh, mnt, AT_EMPTY_PATH]);
  if (r < 0) return r;
  return { handle: fh.subarray(0, 8 + fh.readUInt32LE(0)), mountId: mnt.readInt32LE(0) };
}

/** open_by_handle_at(mountFd, handle, flags): a new fd of the inode, or -errno (ESTALE once it is gone). */
export function openByHandleAt(mountFd: number, handle: Buffer, flags: number): number {
  return call('open_by_handle_at', I32, [I32, U8Array, I32], [mountFd, handle, flags]);
}
