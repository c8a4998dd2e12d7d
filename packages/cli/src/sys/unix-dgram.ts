// UNIX datagram sockets through libc (Node's dgram has no AF_UNIX): enough for a syslog client
// (socket + connect + send) and for a test's throwaway syslog server (socket + bind + recv).
import { SysError, bind, close, connect, recv, send, socket } from './libc';

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const MSG_DONTWAIT = 0x40;
export const EAGAIN = 11;

export { SysError };

function sockaddr(path: string): Buffer {
  const p = Buffer.from(path);
  if (p.length >= 108) throw new Error(`socket path too long: ${path}`);
  const b = Buffer.alloc(110);
  b.writeUInt16LE(AF_UNIX, 0);
  p.copy(b, 2);
  return b;
}

function newSocket(): number {
  const s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) throw new SysError('socket', -s, 'cannot make a UNIX datagram socket');
  return s;
}

export function closeFd(fd: number): void {
  close(fd);
}

/** A datagram socket connected to `path`; throws SysError (ENOENT, ECONNREFUSED, ...) if it can't. */
export function connectDgram(path: string): number {
  const fd = newSocket();
  const addr = sockaddr(path);
  const r = connect(fd, addr);
  if (r !== 0) {
    closeFd(fd);
    throw new SysError('connect', -r, `cannot connect to ${path}`);
  }
  return fd;
}

/** A datagram socket bound to `path` (for tests: a throwaway syslog server). */
export function bindDgram(path: string): number {
  const fd = newSocket();
  const addr = sockaddr(path);
  const r = bind(fd, addr);
  if (r !== 0) {
    closeFd(fd);
    throw new SysError('bind', -r, `cannot bind ${path}`);
  }
  return fd;
}

/** Sends one datagram without blocking; returns 0 or the errno (EAGAIN when the reader lags). */
export function sendDgram(fd: number, data: Buffer): number {
  if (data.length === 0) return 0;
  const r = send(fd, data, MSG_DONTWAIT);
  return r < 0 ? -r : 0;
}

/** Receives one datagram without blocking; null when none is queued. */
export function recvDgram(fd: number, max = 65536): Buffer | null {
  const b = Buffer.alloc(max);
  const r = recv(fd, b, MSG_DONTWAIT);
  if (r < 0) {
    if (r === -EAGAIN) return null;
    throw new SysError('recv', -r, 'recv failed');
  }
  return b.subarray(0, r);
}
