// UNIX datagram sockets through libc (Node's dgram has no AF_UNIX): enough for a syslog client
// (socket + connect + send) and for a test's throwaway syslog server (socket + bind + recv).
import { DataType } from 'ffi-rs';
import { libcCall } from './libc';

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const MSG_DONTWAIT = 0x40;
export const EAGAIN = 11;

export class SysError extends Error {
  constructor(
    readonly call: string,
    readonly errno: number,
    detail: string,
  ) {
    super(`${call}: ${detail} (errno ${errno}${ERRNO_NAMES[errno] ? ` ${ERRNO_NAMES[errno]}` : ''})`);
  }
}
const ERRNO_NAMES: Record<number, string> = { 2: 'ENOENT', 11: 'EAGAIN', 13: 'EACCES', 20: 'ENOTDIR', 98: 'EADDRINUSE', 91: 'EPROTOTYPE', 111: 'ECONNREFUSED' };

function sockaddr(path: string): Buffer {
  const p = Buffer.from(path);
  if (p.length >= 108) throw new Error(`socket path too long: ${path}`);
  const b = Buffer.alloc(110);
  b.writeUInt16LE(AF_UNIX, 0);
  p.copy(b, 2);
  return b;
}

function newSocket(): number {
  const s = libcCall('socket', DataType.I32, [DataType.I32, DataType.I32, DataType.I32], [AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0]);
  if (s.value < 0) throw new SysError('socket', s.errno, 'cannot make a UNIX datagram socket');
  return s.value;
}

export function closeFd(fd: number): void {
  libcCall('close', DataType.I32, [DataType.I32], [fd]);
}

/** A datagram socket connected to `path`; throws SysError (ENOENT, ECONNREFUSED, ...) if it can't. */
export function connectDgram(path: string): number {
  const fd = newSocket();
  const addr = sockaddr(path);
  const r = libcCall('connect', DataType.I32, [DataType.I32, DataType.U8Array, DataType.I32], [fd, addr, addr.length]);
  if (r.value !== 0) {
    closeFd(fd);
    throw new SysError('connect', r.errno, `cannot connect to ${path}`);
  }
  return fd;
}

/** A datagram socket bound to `path` (for tests: a throwaway syslog server). */
export function bindDgram(path: string): number {
  const fd = newSocket();
  const addr = sockaddr(path);
  const r = libcCall('bind', DataType.I32, [DataType.I32, DataType.U8Array, DataType.I32], [fd, addr, addr.length]);
  if (r.value !== 0) {
    closeFd(fd);
    throw new SysError('bind', r.errno, `cannot bind ${path}`);
  }
  return fd;
}

/** Sends one datagram without blocking; returns 0 or the errno (EAGAIN when the reader lags). */
export function sendDgram(fd: number, data: Buffer): number {
  if (data.length === 0) return 0;
  const r = libcCall('send', DataType.I64, [DataType.I32, DataType.U8Array, DataType.I64, DataType.I32], [fd, data, data.length, MSG_DONTWAIT]);
  return r.value < 0 ? r.errno : 0;
}

/** Receives one datagram without blocking; null when none is queued. */
export function recvDgram(fd: number, max = 65536): Buffer | null {
  const b = Buffer.alloc(max);
  const r = libcCall('recv', DataType.I64, [DataType.I32, DataType.U8Array, DataType.I64, DataType.I32], [fd, b, max, MSG_DONTWAIT]);
  if (r.value < 0) {
    if (r.errno === EAGAIN) return null;
    throw new SysError('recv', r.errno, 'recv failed');
  }
  return b.subarray(0, r.value);
}
