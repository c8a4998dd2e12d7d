// Executes an Op synchronously in the calling thread: in a pool worker, or inline on the main thread.
import * as fs from 'node:fs';
import { check, errnoOf } from '../sys/errno';
import { F_DUPFD_CLOEXEC, F_OFD_SETLKW, LOCK_NB, O_CLOEXEC, O_NOFOLLOW, O_PATH } from '../sys/constants';
import { decodeFlock, encodeFlock } from '../sys/flock-struct';
import { fcntlInt, fcntlPtr, flock, openat } from '../sys/libc';
import { fstatRecord } from '../sys/stat';
import type { CancelToken, Op, OpKind, OpOutcome, OpResult } from './ops';

const EINTR = 4;

/**
 * Runs a call that may block until it returns something other than EINTR, unless cancelled: the flag is
 * checked before entering (a cancel signal that arrived earlier was lost) and after each EINTR (a stray
 * signal aimed at a previous request must not fail this one).
 */
function interruptible(cancel: CancelToken, blocking: boolean, fn: () => number): number {
  for (;;) {
    if (cancel.isCancelled()) return -EINTR;
    if (blocking) cancel.enteringBlockingCall();
    const r = fn();
    if (r !== -EINTR) return r;
  }
}

function lookupAt(dirFd: number, name: Uint8Array): OpResult<'lookupAt'> {
  const fd = check('openat', openat(dirFd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC, 0));
  try {
    return { fd, stat: fstatRecord(fd) };
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
}

function run(op: Op, cancel: CancelToken): OpResult<OpKind> {
  switch (op.kind) {
    case 'fstat':
      return fstatRecord(op.fd);
    case 'lookupAt':
      return lookupAt(op.dirFd, op.name);
    case 'reopen':
      // The magic link resolves to the inode itself, never through a path a guest could swap.
      return fs.openSync(`/proc/self/fd/${op.fd}`, (op.flags & ~O_NOFOLLOW) | O_CLOEXEC);
    case 'close':
      fs.closeSync(op.fd);
      return undefined;
    case 'flushFd':
      fs.closeSync(check('fcntl(F_DUPFD_CLOEXEC)', fcntlInt(op.fd, F_DUPFD_CLOEXEC, 0)));
      return undefined;
    case 'ofdLock': {
      const buf = encodeFlock(op.lock);
      check('fcntl(OFD lock)', interruptible(cancel, op.cmd === F_OFD_SETLKW, () => fcntlPtr(op.fd, op.cmd, buf)));
      return decodeFlock(buf);
    }
    case 'flock':
      check('flock', interruptible(cancel, (op.operation & LOCK_NB) === 0, () => flock(op.fd, op.operation)));
      return undefined;
  }
}

export function runOp<K extends OpKind>(op: Op<K>, cancel: CancelToken): OpOutcome<K> {
  try {
    return { ok: true, value: run(op as Op, cancel) as OpResult<K> };
  } catch (err) {
    return { ok: false, errno: errnoOf(err) };
  }
}
