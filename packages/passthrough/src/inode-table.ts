// nodeid -> host inode, as the Rust virtiofsd's InodeStore: each inode is held by an O_PATH fd (never a
// path, so renames on the host cannot redirect it), keyed by (st_dev, st_ino) so that two lookups of the
// same host inode share one nodeid, and counted by the kernel's lookups (FORGET decrements).
import { EBADF, FUSE_ROOT_ID, FsError } from '@vfsd/core';
import { SharedFd } from './shared-fd';
import { statxMntId } from './sys/libc';
import type { StatRecord } from './sys/stat';

export interface InodeEntry {
  readonly nodeid: bigint;
  readonly handle: SharedFd;
  readonly key: string;
  /** File type bits (S_IFMT) seen at lookup; a host inode never changes type. */
  readonly type: number;
  readonly dev: bigint;
  /** The mount a directory was found on (with mountIds; negative if the kernel did not say). */
  readonly mntId?: bigint;
  lookups: bigint;
}

const S_IFMT = 0o170000;

const S_IFDIR = 0o040000;

/** (st_dev, st_ino), and the mount id for a directory when mounts are told apart. */
export function inodeKey(stat: { dev: bigint; ino: bigint }, mntId?: bigint): string {
  return mntId === undefined ? `${stat.dev}:${stat.ino}` : `${stat.dev}:${stat.ino}:${mntId}`;
}

export class InodeTable {
  private readonly byId = new Map<bigint, InodeEntry>();
  private readonly byKey = new Map<string, InodeEntry>();
  private nextId = FUSE_ROOT_ID + 1n;

  /**
   * With `mountIds`, directories are keyed by their mount too (statx, about 7 µs per directory
   * lookup): one directory bind-mounted elsewhere in the share is then two inodes, each on its own
   * mount, so that it can be announced as a submount where it is one.
   */
  constructor(
    rootFd: number,
    rootStat: StatRecord,
    private readonly closeFd: (fd: number) => void,
    private readonly mountIds = false,
  ) {
    // The root's count never reaches 0: the kernel does not forget it, and we must not close it.
    this.insert(FUSE_ROOT_ID, rootFd, rootStat, 1n << 62n, this.mountIdOf(rootFd, rootStat));
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
    const mntId = this.mountIdOf(fd, stat);
    const known = this.byKey.get(inodeKey(stat, mntId));
    if (known) {
      known.lookups++;
      this.closeFd(fd);
      return known;
    }
    return this.insert(this.nextId++, fd, stat, 1n, mntId);
  }

  /**
   * Records one kernel lookup of an inode already in the table, found by its stat alone (no new fd:
   * what a LOOKUP at the open-file limit can still do). Undefined if the inode is not known.
   */
  addKnownLookup(stat: StatRecord): InodeEntry | undefined {
    // A directory keyed by its mount cannot be told apart without an fd: not found.
    if (this.mountIds && (stat.mode & S_IFMT) === S_IFDIR) return undefined;
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

  /**
   * Whether `inode` is on another mount than `parent`: another st_dev, or (with mountIds) the same
   * filesystem mounted again, a bind mount.
   */
  onOtherMount(parent: InodeEntry, inode: InodeEntry): boolean {
    if (parent.dev !== inode.dev) return true;
    return parent.mntId !== undefined && inode.mntId !== undefined && parent.mntId >= 0n && inode.mntId >= 0n && parent.mntId !== inode.mntId;
  }

  private mountIdOf(fd: number, stat: StatRecord): bigint | undefined {
    return this.mountIds && (stat.mode & S_IFMT) === S_IFDIR ? statxMntId(fd) : undefined;
  }

  /** Drops everything (shutdown), root included. */
  clear(): void {
    for (const entry of this.byId.values()) entry.handle.close();
    this.byId.clear();
    this.byKey.clear();
  }

  private insert(nodeid: bigint, fd: number, stat: StatRecord, lookups: bigint, mntId: bigint | undefined): InodeEntry {
    const entry: InodeEntry = {
      nodeid,
      handle: new SharedFd(fd, this.closeFd),
      key: inodeKey(stat, mntId),
      mntId,
      type: stat.mode & S_IFMT,
      dev: stat.dev,
      lookups,
    };
    this.byId.set(nodeid, entry);
    this.byKey.set(entry.key, entry);
    return entry;
  }
}
