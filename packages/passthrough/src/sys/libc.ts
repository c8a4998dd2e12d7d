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
