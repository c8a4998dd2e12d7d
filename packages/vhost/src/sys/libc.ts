// libc calls that Node's own modules do not offer (recvmsg with SCM_RIGHTS, mmap, memfd, eventfd),
// through ffi-rs. Each ffi-rs call costs several microseconds: these are for setup and the control
// plane; the data path uses Node's fs on the fds (read/write of eventfds) and zero-copy Buffers.
import { DataType, JsExternal, createExternalBuffer, load, open } from 'ffi-rs';

const LIB = 'libc';
let opened = false;

function ensureOpen(): void {
  if (!opened) {
    open({ library: LIB, path: 'libc.so.6' });
    opened = true;
  }
}

/** An errno-carrying error from a libc call, named like Node's system errors. */
export class SysError extends Error {
  constructor(
    readonly syscall: string,
    readonly errno: number,
    detail: string,
  ) {
    super(`${syscall}: ${detail} (errno ${errno})`);
    this.name = 'SysError';
  }
}

type Scalar = DataType.I32 | DataType.I64 | DataType.External | DataType.U8Array | DataType.String;

interface ErrnoResult<T> {
  value: T;
  errnoCode: number;
  errnoMessage: string;
}

function call<T>(funcName: string, retType: Scalar, paramsType: Scalar[], paramsValue: unknown[]): ErrnoResult<T> {
  ensureOpen();
  return load({
    library: LIB,
    funcName,
    retType,
    paramsType,
    paramsValue,
    errno: true,
  }) as unknown as ErrnoResult<T>;
}

function check(name: string, r: ErrnoResult<number>): number {
  if (r.value < 0) throw new SysError(name, r.errnoCode, r.errnoMessage);
  return r.value;
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

export function socket(domain: number, type: number, protocol: number): number {
  return check('socket', call<number>('socket', DataType.I32, [DataType.I32, DataType.I32, DataType.I32], [domain, type, protocol]));
}

export function bind(fd: number, addr: Buffer): void {
  check('bind', call<number>('bind', DataType.I32, [DataType.I32, DataType.U8Array, DataType.I32], [fd, addr, addr.length]));
}

export function listen(fd: number, backlog: number): void {
  check('listen', call<number>('listen', DataType.I32, [DataType.I32, DataType.I32], [fd, backlog]));
}

export function connect(fd: number, addr: Buffer): void {
  check('connect', call<number>('connect', DataType.I32, [DataType.I32, DataType.U8Array, DataType.I32], [fd, addr, addr.length]));
}

/** Blocking accept; run it off the main thread. */
export function accept4(fd: number, flags: number): number {
  return check('accept4', call<number>('accept4', DataType.I32, [DataType.I32, DataType.I64, DataType.I64, DataType.I32], [fd, 0, 0, flags]));
}

export function shutdown(fd: number, how: number): void {
  check('shutdown', call<number>('shutdown', DataType.I32, [DataType.I32, DataType.I32], [fd, how]));
}

export function eventfd(initval: number, flags: number): number {
  return check('eventfd', call<number>('eventfd', DataType.I32, [DataType.I32, DataType.I32], [initval, flags]));
}

export function memfdCreate(name: string, flags: number): number {
  return check('memfd_create', call<number>('memfd_create', DataType.I32, [DataType.String, DataType.I32], [name, flags]));
}

export function fcntl(fd: number, cmd: number, arg: number): number {
  return check('fcntl', call<number>('fcntl', DataType.I32, [DataType.I32, DataType.I32, DataType.I32], [fd, cmd, arg]));
}

export function setNonBlocking(fd: number, on: boolean): void {
  const flags = fcntl(fd, F_GETFL, 0);
  fcntl(fd, F_SETFL, on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK);
}

/** The numeric address behind an ffi-rs pointer (memcpy of 0 bytes returns its destination). */
export function addressOf(p: JsExternal): bigint {
  const r = call<number>('memcpy', DataType.I64, [DataType.External, DataType.External, DataType.I64], [p, p, 0]);
  return BigInt.asUintN(64, BigInt(r.value));
}

/** A memory mapping visible from JS as a Buffer without copies. Unmap only when no view is used again. */
export interface Mapping {
  readonly pointer: JsExternal;
  readonly address: bigint;
  readonly length: number;
  readonly buffer: Buffer;
}

export function mmap(length: number, prot: number, flags: number, fd: number, offset: number): Mapping {
  const r = call<JsExternal>('mmap', DataType.External, [DataType.I64, DataType.I64, DataType.I32, DataType.I32, DataType.I32, DataType.I64], [0, length, prot, flags, fd, offset]);
  const address = addressOf(r.value);
  if (address === 0xffffffffffffffffn) throw new SysError('mmap', r.errnoCode, r.errnoMessage);
  return { pointer: r.value, address, length, buffer: createExternalBuffer(r.value, length) };
}

export function munmap(m: Mapping): void {
  check('munmap', call<number>('munmap', DataType.I32, [DataType.External, DataType.I64], [m.pointer, m.length]));
}

export function recvmsg(fd: number, msghdr: JsExternal, flags: number): number {
  return check('recvmsg', call<number>('recvmsg', DataType.I64, [DataType.I32, DataType.External, DataType.I32], [fd, msghdr, flags]));
}

export function sendmsg(fd: number, msghdr: JsExternal, flags: number): number {
  return check('sendmsg', call<number>('sendmsg', DataType.I64, [DataType.I32, DataType.External, DataType.I32], [fd, msghdr, flags]));
}

export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const EWOULDBLOCK = 11;

/** flock(2): Node's fs has no file locks. Returns false when another process holds the lock. */
export function tryFlock(fd: number, op: number): boolean {
  const r = call<number>('flock', DataType.I32, [DataType.I32, DataType.I32], [fd, op | LOCK_NB]);
  if (r.value === 0) return true;
  if (r.errnoCode === EWOULDBLOCK) return false;
  throw new SysError('flock', r.errnoCode, r.errnoMessage);
}

export function getpid(): number {
  return call<number>('getpid', DataType.I32, [], []).value;
}
