// The calls a pool worker (or the main thread, inline) can run: small, serialisable, one syscall or a
// short fixed sequence each. The filesystem composes them; nothing here knows about FUSE.
import type { FlockRecord } from '../sys/flock-struct';
import type { StatRecord } from '../sys/stat';

export interface OpTable {
  /** fstat on any fd, O_PATH included. */
  fstat: { req: { fd: number }; res: StatRecord };
  /** openat(dirFd, name, O_PATH|O_NOFOLLOW|O_CLOEXEC) then fstat: a new O_PATH fd and its stat. */
  lookupAt: { req: { dirFd: number; name: Uint8Array }; res: { fd: number; stat: StatRecord } };
  /** A new open file description for the inode behind an O_PATH fd (open of /proc/self/fd/N). */
  reopen: { req: { fd: number; flags: number }; res: number };
  close: { req: { fd: number }; res: undefined };
  /** close(dup(fd)): what FLUSH asks for (network filesystems write back on close). */
  flushFd: { req: { fd: number }; res: undefined };
  /** fcntl(fd, F_OFD_GETLK | F_OFD_SETLK | F_OFD_SETLKW, &lock); resolves with the struct after the call. */
  ofdLock: { req: { fd: number; cmd: number; lock: FlockRecord }; res: FlockRecord };
  /** flock(fd, operation). */
  flock: { req: { fd: number; operation: number }; res: undefined };
}

export type OpKind = keyof OpTable;
export type Op<K extends OpKind = OpKind> = { [P in K]: { kind: P } & OpTable[P]['req'] }[K];
export type OpResult<K extends OpKind> = OpTable[K]['res'];

/** What running an op gives back: a value, or a positive errno. */
export type OpOutcome<K extends OpKind = OpKind> = { ok: true; value: OpResult<K> } | { ok: false; errno: number };

/** How a running op learns it was cancelled, and announces that it is about to block. */
export interface CancelToken {
  isCancelled(): boolean;
  /** Called just before a call that may block indefinitely. */
  enteringBlockingCall(): void;
}

export const NEVER_CANCELLED: CancelToken = { isCancelled: () => false, enteringBlockingCall: () => undefined };
