// One error type below the FileSystem boundary: a positive errno. Node's fs errors carry a negative
// `errno`; libc wrappers return -errno. Both are normalised here.
import { getSystemErrorName } from 'node:util';
import { EIO } from '@vfsd/core/abi';

/** The package's one error from a libc call: syscall name and errno (its name in the message). */
export class SysErrno extends Error {
  constructor(readonly errno: number, readonly syscall: string) {
    super(`${syscall}: ${errnoName(errno)} (errno ${errno})`);
    this.name = 'SysErrno';
  }
}

/** ENOENT for 2, ... (Node's table of the platform's errno names). */
function errnoName(errno: number): string {
  try {
    return getSystemErrorName(-errno);
  } catch {
    return 'unknown error';
  }
}

/** check(name, ret): throws SysErrno for a negative (-errno) libc return, else returns it. */
export function check(syscall: string, r: number): number {
  if (r < 0) throw new SysErrno(-r, syscall);
  return r;
}

/** The positive errno of anything thrown by Node's fs or by check(); EIO when there is none. */
export function errnoOf(err: unknown): number {
  if (err instanceof SysErrno) return err.errno;
  if (typeof err === 'object' && err !== null && 'errno' in err) {
    const e = (err as { errno: unknown }).errno;
    if (typeof e === 'number' && e !== 0) return Math.abs(e);
  }
  return EIO;
}
