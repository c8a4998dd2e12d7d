// nodeid -> host inode, as the Rust virtiofsd's InodeStore: each inode is held by an O_PATH fd (never a
// path, so renames on the host cannot redirect it), keyed by (st_dev, st_ino) so that two lookups of the
// same host inode share one nodeid, and counted by the kernel's lookups (FORGET decrements).
import { EBADF, FUSE_ROOT_ID, FsError } from '@vfsd/core';
import { SharedFd } from './shared-fd';
import type { StatRecord } from './sys/stat';

export interface InodeEntry {
  readonly nodeid: bigint;
  readonly handle: SharedFd;
  readonly key: string;
  /** File type bits (S_IFMT) seen at lookup; a host inode never changes type. */
  readonly type: number;
  lookups: bigint;
}

const S_IFMT = 0o170000;

export function inodeKey(stat: { dev: bigint; ino: bigint }): string {
  return `${stat.dev}:${stat.ino}`;
}

export class InodeTable {
  private readonly byId = new Map<bigint, InodeEntry>();
  private readonly byKey = new Map<string, InodeEntry>();
  private nextId = FUSE_ROOT_ID + 1n;

  constructor(
    rootFd: number,
    rootStat: StatRecord,
    private readonly closeFd: (fd: number) => void,
  ) {
    // The root's count never reaches 0: the kernel does not forget it, and we must not close it.
    this.insert(FUSE_ROOT_ID, rootFd, rootStat, 1n << 62n);
  }

  get size(): number {
    return this.byId.size;
  }

  get(nodeid: bigint): InodeEntry | undefined {
    return this.byId.get(nodeid);
  }

  /** The inode with its fd pinned for one call; unpin with entry.handle.unpin(). EBADF if unknown. */
  pin(nodeid: bigint): InodeEntry {
    const entry = this.byId.get(nodeid);
    if (!entry || !entry.handle.pin()) throw new FsError(EBADF, `unknown nodeid ${nodeid}`);
    return entry;
  }

  /**
   * Records one kernel lookup of the inode behind a freshly opened O_PATH fd. A known inode gets its
   * count raised and the new fd is closed (one fd per inode).
   */
  addLookup(fd: number, stat: StatRecord): InodeEntry {
    const known = this.byKey.get(inodeKey(stat));
    if (known) {
      known.lookups++;
      this.closeFd(fd);
      return known;
    }
    return this.insert(this.nextId++, fd, stat, 1n);
  }

  /**
   * Records one kernel lookup of an inode already in the table, found by its stat alone (no new fd:
   * what a LOOKUP at the open-file limit can still do). Undefined if the inode is not known.
   */
  addKnownLookup(stat: StatRecord): InodeEntry | undefined {
    const known = this.byKey.get(inodeKey(stat));
    if (known) known.lookups++;
    return known;
  }

  /** FORGET: drops n lookups; at zero the inode leaves the table and its fd closes (once unpinned). */
  forget(nodeid: bigint, n: bigint): InodeEntry | undefined {
    const entry = this.byId.get(nodeid);
    if (!entry || nodeid === FUSE_ROOT_ID) return undefined;
    entry.lookups = entry.lookups > n ? entry.lookups - n : 0n;
    if (entry.lookups > 0n) return undefined;
    this.byId.delete(nodeid);
    this.byKey.delete(entry.key);
    entry.handle.close();
    return entry;
  }

  /** Drops everything (shutdown), root included. */
  clear(): void {
    for (const entry of this.byId.values()) entry.handle.close();
    this.byId.clear();
    this.byKey.clear();
  }

  private insert(nodeid: bigint, fd: number, stat: StatRecord, lookups: bigint): InodeEntry {
    const entry: InodeEntry = {
      nodeid,
      handle: new SharedFd(fd, this.closeFd),
      key: inodeKey(stat),
      type: stat.mode & S_IFMT,
      lookups,
    };
    this.byId.set(nodeid, entry);
    this.byKey.set(entry.key, entry);
    return entry;
  }
}
