// nodeid -> host inode, as the Rust virtiofsd's InodeStore: each inode is held by an O_PATH fd (never a
// path, so renames on the host cannot redirect it), keyed by (st_dev, st_ino) so that two lookups of the
// same host inode share one nodeid, and counted by the kernel's lookups (FORGET decrements).
//
// With file handles (--inode-file-handles), an inode is also held by its handle (name_to_handle_at):
// its O_PATH fd is then only a cache, closed when too many are open and reopened by handle on next use,
// so the number of inodes a guest may know is no longer bounded by the open-file limit.
import { EBADF, EIO, FUSE_ROOT_ID, FsError } from '@vfsd/core/abi';
import { InodeKeys } from './inode-keys';
import type { FdCells } from './fd-cells';
import { SharedFd } from './shared-fd';
import * as fs from 'node:fs';
import { O_CLOEXEC, O_DIRECTORY, O_PATH, O_RDONLY } from './sys/constants';
import { useCred } from './sys/creds';
import { nameToHandleAt, openByHandleAt, statxMntId } from './sys/libc';
import type { StatRecord } from './sys/stat';

export interface InodeEntry {
  readonly nodeid: bigint;
  /** The O_PATH fd; pin it (InodeTable.pin) for as long as a call uses it. Replaced when reopened by handle. */
  handle: SharedFd;
  /** st_ino: with dev (and mntId) the host identity the table finds it by. */
  readonly ino: bigint;
  /** File type bits (S_IFMT) seen at lookup; a host inode never changes type. */
  readonly type: number;
  readonly dev: bigint;
  /** The mount a directory was found on (with mountIds; negative if the kernel did not say). */
  readonly mntId?: bigint;
  /** struct file_handle and its mount, with file handles on: what reopens the fd once closed. */
  readonly fileHandle?: { readonly handle: Buffer; readonly mountId: number };
  /** The fd was closed to stay under the cache size; the next pin reopens it by handle. */
  evicted: boolean;
  lookups: bigint;
}

export type FileHandleMode = 'never' | 'prefer' | 'mandatory';

export interface InodeTableOptions {
  /**
   * Directories are keyed by their mount too (statx, about 7 µs per directory lookup): one directory
   * bind-mounted elsewhere in the share is then two inodes, each on its own mount, so that it can be
   * announced as a submount where it is one.
   */
  mountIds?: boolean;
  /**
   * 'prefer': inodes whose filesystem gives file handles keep one, the rest an fd for life;
   * 'mandatory': a lookup whose inode has no handle fails with the errno. Default 'never'.
   */
  fileHandles?: FileHandleMode;
  /** With file handles: how many inode fds stay open at most (the least recently used close first). */
  fdCache?: number;
  /** Publishes each inode's fd there, for the request-queue threads (see fd-cells.ts). */
  cells?: FdCells;
}

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;

export class InodeTable {
  private readonly byId = new Map<bigint, InodeEntry>();
  private readonly byKey = new InodeKeys<InodeEntry>();
  private nextId = FUSE_ROOT_ID + 1n;
  private readonly mountIds: boolean;
  private readonly fileHandles: FileHandleMode;
  private readonly fdCache: number;
  private readonly cells: FdCells | null;
  /** Entries with a file handle whose fd is open, least recently pinned first (Map order). */
  private readonly open = new Map<bigint, InodeEntry>();
  /**
   * A directory fd on each mount that file handles were taken on (open_by_handle_at's mount_fd, which
   * must not be O_PATH): the first directory looked up there, opened for reading.
   */
  private readonly mountFds = new Map<number, number>();
  /**
   * Inodes a migration could not find again (--migration-on-error guest-error), with their lookups:
   * their use fails with EIO, their FORGETs are counted.
   */
  private readonly lost = new Map<bigint, bigint>();

  constructor(
    rootFd: number,
    rootStat: StatRecord,
    private readonly closeFd: (fd: number) => void,
    options: InodeTableOptions = {},
  ) {
    this.mountIds = options.mountIds ?? false;
    this.fileHandles = options.fileHandles ?? 'never';
    this.fdCache = Math.max(16, options.fdCache ?? 8192);
    this.cells = options.cells ?? null;
    // The root's count never reaches 0: the kernel does not forget it, and we must not close it (nor
    // does it need a handle).
    this.insert(FUSE_ROOT_ID, rootFd, rootStat, 1n << 62n, this.mountIdOf(rootFd, rootStat), undefined);
    if (this.fileHandles !== 'never') this.mountFdFor(rootFd, rootStat);
  }

  get size(): number {
    return this.byId.size;
  }

  /** Inode fds open now that a handle could reopen (bounded by fdCache). */
  get cachedFds(): number {
    return this.open.size;
  }

  get(nodeid: bigint): InodeEntry | undefined {
    return this.byId.get(nodeid);
  }

  /**
   * The inode with its fd pinned for one call; unpin with entry.handle.unpin(). EBADF if unknown; an
   * inode held by its handle alone is reopened first (ESTALE if it no longer exists).
   */
  pin(nodeid: bigint): InodeEntry {
    const entry = this.byId.get(nodeid);
    if (!entry) throw new FsError(this.lost.has(nodeid) ? EIO : EBADF, `${this.lost.has(nodeid) ? 'lost in migration' : 'unknown'}: nodeid ${nodeid}`);
    if (entry.fileHandle) {
      if (entry.evicted) this.reopen(entry);
      else {
        this.open.delete(nodeid);
        this.open.set(nodeid, entry);
      }
    }
    if (!entry.handle.pin()) throw new FsError(EBADF, `unknown nodeid ${nodeid}`);
    this.trim();
    return entry;
  }

  /**
   * Records one kernel lookup of the inode behind a freshly opened O_PATH fd. A known inode gets its
   * count raised and the new fd is closed (one fd per inode).
   */
  addLookup(fd: number, stat: StatRecord): InodeEntry {
    const mntId = this.mountIdOf(fd, stat);
    const known = this.byKey.get(stat.dev, stat.ino, mntId);
    // An evicted entry holds nothing open: its inode may have been freed and its number reused by
    // another file. Only the same handle proves it the same inode (then the new fd serves it again).
    const h = this.fileHandles !== 'never' && (!known || known.evicted) ? nameToHandleAt(fd) : undefined;
    if (known && known.evicted && !(typeof h === 'object' && h.handle.equals(known.fileHandle!.handle))) {
      // Another inode now: the old entry stays for its FORGETs but is no longer found by key.
      this.byKey.delete(known);
    } else if (known) {
      known.lookups++;
      if (known.evicted) {
        known.handle = this.sharedFd(fd, known.nodeid);
        known.evicted = false;
        this.open.set(known.nodeid, known);
        this.trim();
      } else {
        this.closeFd(fd);
      }
      return known;
    }
    let fileHandle: InodeEntry['fileHandle'];
    if (h !== undefined) {
      if (typeof h === 'number') {
        if (this.fileHandles === 'mandatory') {
          this.closeFd(fd);
          throw new FsError(-h, 'no file handle for this inode');
        }
      } else if (this.mountFds.has(h.mountId) || this.mountFdFor(fd, stat) === h.mountId) {
        fileHandle = { handle: Buffer.from(h.handle), mountId: h.mountId };
      }
      // Else a file bind-mounted on its own (no directory of its mount seen): it keeps its fd for life.
    }
    const entry = this.insert(this.nextId++, fd, stat, 1n, mntId, fileHandle);
    this.trim();
    return entry;
  }

  /**
   * Records one kernel lookup of an inode already in the table, found by its stat alone (no new fd:
   * what a LOOKUP at the open-file limit can still do). Undefined if the inode is not known.
   */
  addKnownLookup(stat: StatRecord): InodeEntry | undefined {
    // A directory keyed by its mount cannot be told apart without an fd: not found. Nor can an evicted
    // inode from a new one that reused its number.
    if (this.mountIds && (stat.mode & S_IFMT) === S_IFDIR) return undefined;
    const known = this.byKey.get(stat.dev, stat.ino);
    if (!known || known.evicted) return undefined;
    known.lookups++;
    return known;
  }

  /** FORGET: drops n lookups; at zero the inode leaves the table and its fd closes (once unpinned). */
  forget(nodeid: bigint, n: bigint): InodeEntry | undefined {
    const lost = this.lost.get(nodeid);
    if (lost !== undefined) {
      if (lost > n) this.lost.set(nodeid, lost - n);
      else this.lost.delete(nodeid);
      return undefined;
    }
    const entry = this.byId.get(nodeid);
    if (!entry || nodeid === FUSE_ROOT_ID) return undefined;
    entry.lookups = entry.lookups > n ? entry.lookups - n : 0n;
    if (entry.lookups > 0n) return undefined;
    this.byId.delete(nodeid);
    // Its key may name a newer inode by now (a reused inode number, see addLookup).
    this.byKey.delete(entry);
    this.open.delete(nodeid);
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

  /** Migration (source): every inode the guest knows, the root excluded. */
  *known(): IterableIterator<InodeEntry> {
    for (const entry of this.byId.values()) if (entry.nodeid !== FUSE_ROOT_ID) yield entry;
  }

  /** Migration: the nodeid the next new inode gets. */
  get nextNodeid(): bigint {
    return this.nextId;
  }

  /**
   * Migration (destination): an inode the guest knows as `nodeid`, found again (its fd now ours). The
   * fd is kept for the inode's life (no file handle is taken for it).
   */
  restore(nodeid: bigint, fd: number, stat: StatRecord, lookups: bigint): InodeEntry {
    if (nodeid <= FUSE_ROOT_ID || this.byId.has(nodeid) || this.lost.has(nodeid)) throw new Error(`nodeid ${nodeid} is taken`);
    const mntId = this.mountIdOf(fd, stat);
    const entry = this.insert(nodeid, fd, stat, lookups, mntId, undefined);
    if (nodeid >= this.nextId) this.nextId = nodeid + 1n;
    return entry;
  }

  /** Migration (destination): an inode the guest knows that could not be found again. */
  markLost(nodeid: bigint, lookups: bigint): void {
    if (nodeid <= FUSE_ROOT_ID || this.byId.has(nodeid)) throw new Error(`nodeid ${nodeid} is taken`);
    this.lost.set(nodeid, lookups);
    if (nodeid >= this.nextId) this.nextId = nodeid + 1n;
  }

  /** Drops everything (shutdown), root included. */
  clear(): void {
    for (const entry of this.byId.values()) entry.handle.close();
    for (const fd of this.mountFds.values()) this.closeFd(fd);
    this.byId.clear();
    this.byKey.clear();
    this.open.clear();
    this.mountFds.clear();
    this.lost.clear();
  }

  /**
   * Records a mount fd for the mount of a directory (opened read-only through its O_PATH fd); returns
   * the mount id, or -1 for a non-directory or a failure.
   */
  private mountFdFor(fd: number, stat: StatRecord): number {
    if ((stat.mode & S_IFMT) !== S_IFDIR) return -1;
    const h = nameToHandleAt(fd);
    if (typeof h === 'number') return -1;
    if (this.mountFds.has(h.mountId)) return h.mountId;
    try {
      // As the daemon, whatever caller's ids this thread has now.
      useCred(undefined);
      this.mountFds.set(h.mountId, fs.openSync(`/proc/self/fd/${fd}`, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      return h.mountId;
    } catch {
      return -1;
    }
  }

  private mountIdOf(fd: number, stat: StatRecord): bigint | undefined {
    return this.mountIds && (stat.mode & S_IFMT) === S_IFDIR ? statxMntId(fd) : undefined;
  }

  private reopen(entry: InodeEntry): void {
    const h = entry.fileHandle!;
    // As the daemon: a caller's fsuid would have dropped CAP_DAC_READ_SEARCH (EPERM).
    useCred(undefined);
    const fd = openByHandleAt(this.mountFds.get(h.mountId) ?? -1, h.handle, O_PATH | O_CLOEXEC);
    if (fd < 0) throw new FsError(-fd, `nodeid ${entry.nodeid}: open_by_handle_at`);
    entry.handle = this.sharedFd(fd, entry.nodeid);
    entry.evicted = false;
    this.open.set(entry.nodeid, entry);
  }

  /** Closes the least recently used unpinned fds that a handle can reopen, down to fdCache. */
  private trim(): void {
    if (this.open.size <= this.fdCache) return;
    for (const entry of this.open.values()) {
      if (this.open.size <= this.fdCache) return;
      if (entry.handle.isPinned) continue;
      this.open.delete(entry.nodeid);
      entry.evicted = true;
      entry.handle.close();
    }
  }

  private sharedFd(fd: number, nodeid: bigint): SharedFd {
    return new SharedFd(fd, this.closeFd, this.cells, nodeid);
  }

  private insert(nodeid: bigint, fd: number, stat: StatRecord, lookups: bigint, mntId: bigint | undefined, fileHandle: InodeEntry['fileHandle']): InodeEntry {
    const entry: InodeEntry = {
      nodeid,
      handle: this.sharedFd(fd, nodeid),
      ino: stat.ino,
      type: stat.mode & S_IFMT,
      dev: stat.dev,
      mntId,
      fileHandle,
      evicted: false,
      lookups,
    };
    this.byId.set(nodeid, entry);
    // Two migrated nodeids may name one inode (hard links found by two paths): the first keeps the key.
    if (!this.byKey.get(entry.dev, entry.ino, mntId)) this.byKey.set(entry);
    if (fileHandle) this.open.set(nodeid, entry);
    return entry;
  }
}
