// POSIX and flock locks of the guest, taken on the host as open-file-description (OFD) locks. A POSIX
// lock belongs to a lock owner (a guest process), but a host process holds it for all its threads; an
// OFD lock belongs to a file description. So each (inode, lock owner) gets a description of its own
// (opened through /proc/self/fd/<O_PATH fd>), and the owner's locks are F_OFD_* locks on it: owners
// conflict with each other exactly as the guest processes would. Closing the description (FLUSH for
// POSIX owners, RELEASE with FLOCK_UNLOCK for flock owners) drops the owner's locks.
import { EACCES, EINVAL, EISDIR, EROFS, ETXTBSY, FsError, type FuseFileLock } from '@vfsd/core/abi';
import type { InodeEntry } from './inode-table';
import { flockToFuse, fuseToFlock } from './lock-range';
import type { SubmitOptions, WorkerPool } from './pool/worker-pool';
import { SharedFd } from './shared-fd';
import {
  F_OFD_GETLK,
  F_OFD_SETLK,
  F_OFD_SETLKW,
  F_UNLCK,
  F_WRLCK,
  LOCK_EX,
  LOCK_NB,
  LOCK_SH,
  LOCK_UN,
  O_NOCTTY,
  O_NONBLOCK,
  O_RDONLY,
  O_RDWR,
  O_WRONLY,
} from './sys/constants';

export type LockKind = 'posix' | 'flock';

// O_NONBLOCK: opening a FIFO must not wait for a peer; the description only ever carries locks.
const DESCRIPTION_FLAGS = O_NONBLOCK | O_NOCTTY;
// A write lock needs a writable description, a read lock a readable one: try both, then either.
const ACCESS_MODES = [O_RDWR, O_RDONLY, O_WRONLY];
const RETRY_ERRNOS = new Set([EACCES, EISDIR, EROFS, ETXTBSY]);

export class LockTable {
  /** nodeid -> `${kind}:${owner}` -> the owner's description (being opened, or open). */
  private readonly descriptions = new Map<bigint, Map<string, Promise<SharedFd>>>();

  constructor(
    private readonly pool: WorkerPool,
    private readonly closeFd: (fd: number) => void,
  ) {}

  /** F_OFD_GETLK from the owner's description: the first lock of another owner that conflicts. */
  async getlk(inode: InodeEntry, owner: bigint, lk: FuseFileLock, opts: SubmitOptions): Promise<FuseFileLock> {
    const asked = fuseToFlock(lk);
    if (asked.type === F_UNLCK) throw new FsError(EINVAL, 'GETLK of F_UNLCK');
    const file = await this.pinned(inode, 'posix', owner, opts);
    try {
      const found = await this.pool.submit({ kind: 'ofdLock', fd: file.fd, cmd: F_OFD_GETLK, lock: asked }, opts);
      return flockToFuse(found, lk);
    } finally {
      file.unpin();
    }
  }

  /** SETLK / SETLKW (wait). A waiting call runs in the pool's waiter lane and gives up on opts.signal. */
  async setlk(inode: InodeEntry, owner: bigint, lk: FuseFileLock, wait: boolean, kind: LockKind, opts: SubmitOptions): Promise<void> {
    const rec = fuseToFlock(lk);
    const unlock = rec.type === F_UNLCK;
    // Nothing to unlock on a description that was never opened.
    if (unlock && !this.descriptions.get(inode.nodeid)?.has(`${kind}:${owner}`)) return;
    const file = await this.pinned(inode, kind, owner, opts);
    const mayBlock = wait && !unlock;
    try {
      if (kind === 'flock') {
        const operation = (unlock ? LOCK_UN : rec.type === F_WRLCK ? LOCK_EX : LOCK_SH) | (wait ? 0 : LOCK_NB);
        await this.pool.submit({ kind: 'flock', fd: file.fd, operation }, { ...opts, mayBlock });
      } else {
        const cmd = mayBlock ? F_OFD_SETLKW : F_OFD_SETLK;
        await this.pool.submit({ kind: 'ofdLock', fd: file.fd, cmd, lock: rec }, { ...opts, mayBlock });
      }
    } finally {
      file.unpin();
    }
  }

  /** Closes the owner's description on the inode, which drops its locks (once no call uses it). */
  dropOwner(nodeid: bigint, kind: LockKind, owner: bigint): void {
    const perInode = this.descriptions.get(nodeid);
    const key = `${kind}:${owner}`;
    const pending = perInode?.get(key);
    if (!perInode || !pending) return;
    perInode.delete(key);
    if (perInode.size === 0) this.descriptions.delete(nodeid);
    pending.then((file) => file.close(), () => undefined);
  }

  /** Closes every description of the inode (it was forgotten). */
  dropInode(nodeid: bigint): void {
    const perInode = this.descriptions.get(nodeid);
    if (!perInode) return;
    this.descriptions.delete(nodeid);
    for (const pending of perInode.values()) pending.then((file) => file.close(), () => undefined);
  }

  clear(): void {
    for (const nodeid of [...this.descriptions.keys()]) this.dropInode(nodeid);
  }

  /** Descriptions currently open or being opened (for tests and monitoring). */
  get size(): number {
    let n = 0;
    for (const m of this.descriptions.values()) n += m.size;
    return n;
  }

  /** The owner's description, opened on first use, pinned for one call. */
  private async pinned(inode: InodeEntry, kind: LockKind, owner: bigint, opts: SubmitOptions): Promise<SharedFd> {
    const key = `${kind}:${owner}`;
    for (;;) {
      let perInode = this.descriptions.get(inode.nodeid);
      if (!perInode) {
        perInode = new Map();
        this.descriptions.set(inode.nodeid, perInode);
      }
      let pending = perInode.get(key);
      if (!pending) {
        pending = this.openDescription(inode, opts);
        perInode.set(key, pending);
        const map = perInode;
        const mine = pending;
        // A failed open is forgotten so that the next call tries again.
        pending.catch(() => {
          if (map.get(key) === mine) map.delete(key);
        });
      }
      const file = await pending;
      if (file.pin()) return file;
      // Dropped (FLUSH) while we waited for it: open a fresh one.
    }
  }

  private async openDescription(inode: InodeEntry, opts: SubmitOptions): Promise<SharedFd> {
    if (!inode.handle.pin()) throw new FsError(EINVAL, 'inode forgotten');
    try {
      let lastErr: unknown;
      for (const mode of ACCESS_MODES) {
        try {
          const fd = await this.pool.submit({ kind: 'reopen', fd: inode.handle.fd, flags: mode | DESCRIPTION_FLAGS }, { unique: opts.unique, depth: opts.depth });
          return new SharedFd(fd, this.closeFd);
        } catch (err) {
          lastErr = err;
          if (!(err instanceof FsError) || !RETRY_ERRNOS.has(err.errno)) throw err;
        }
      }
      throw lastErr;
    } finally {
      inode.handle.unpin();
    }
  }
}
