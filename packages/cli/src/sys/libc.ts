// The libc calls the command makes itself (Node has no AF_UNIX datagrams, mount or pivot_root), through
// koffi, in the project's libc convention (the same in vhost, passthrough and cli): libc loaded once at
// module load, every function declared once at module scope with its C prototype, errno read with
// koffi.errno() right after the call by orErrno (the value, or -errno), and check(name, ret) throwing
// SysError for -errno. The helpers and the error are vhost's (koffi keeps one errno per thread, whichever
// library handle made the call).
import koffi from 'koffi';
import { SysError, check, orErrno } from '@vfsd/vhost';

export { SysError, check };

const libc = koffi.load('libc.so.6');

const c = {
  socket: libc.func('int socket(int domain, int type, int protocol)') as (domain: number, type: number, protocol: number) => number,
  bind: libc.func('int bind(int fd, const void *addr, uint32_t len)') as (fd: number, addr: Buffer, len: number) => number,
  connect: libc.func('int connect(int fd, const void *addr, uint32_t len)') as (fd: number, addr: Buffer, len: number) => number,
  close: libc.func('int close(int fd)') as (fd: number) => number,
  send: libc.func('int64_t send(int fd, const void *buf, size_t len, int flags)') as (fd: number, buf: Buffer, len: number, flags: number) => number,
  recv: libc.func('int64_t recv(int fd, void *buf, size_t len, int flags)') as (fd: number, buf: Buffer, len: number, flags: number) => number,
  flock: libc.func('int flock(int fd, int op)') as (fd: number, op: number) => number,
  mount: libc.func('int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)') as (source: string, target: string, fstype: string, flags: number, data: string) => number,
  umount2: libc.func('int umount2(const char *target, int flags)') as (target: string, flags: number) => number,
  // pivot_root has no glibc wrapper: syscall(2), declared with the two arguments it takes.
  syscall2s: libc.func('long syscall(long number, const char *a, const char *b)') as (nr: number, a: string, b: string) => number,
};

export function socket(domain: number, type: number, protocol: number): number {
  return orErrno(c.socket(domain, type, protocol));
}

export function bind(fd: number, addr: Buffer): number {
  return orErrno(c.bind(fd, addr, addr.length));
}

export function connect(fd: number, addr: Buffer): number {
  return orErrno(c.connect(fd, addr, addr.length));
}

export function close(fd: number): number {
  return orErrno(c.close(fd));
}

export function send(fd: number, data: Buffer, flags: number): number {
  return orErrno(c.send(fd, data, data.length, flags));
}

export function recv(fd: number, buf: Buffer, flags: number): number {
  return orErrno(c.recv(fd, buf, buf.length, flags));
}

export function flock(fd: number, op: number): number {
  return orErrno(c.flock(fd, op));
}

export function mount(source: string, target: string, fstype: string, flags: number): number {
  return orErrno(c.mount(source, target, fstype, flags, ''));
}

export function umount2(target: string, flags: number): number {
  return orErrno(c.umount2(target, flags));
}

/** pivot_root(2) has no glibc wrapper: its syscall number. */
export const SYS_PIVOT_ROOT: Record<string, number> = { x64: 155, arm64: 41, riscv64: 41, ppc64: 203, s390x: 217 };

export function pivotRoot(newRoot: string, putOld: string): number {
  return orErrno(c.syscall2s(SYS_PIVOT_ROOT[process.arch], newRoot, putOld));
}
