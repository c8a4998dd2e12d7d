// Live migration of the passthrough's tables, as the Rust virtiofsd's two modes:
// - find-paths (the default): the source records, for each inode the guest knows and each handle it
//   holds, where it is under the shared directory (from /proc/self/fd); the destination, whose share
//   has the same contents, opens each again beneath its own root, component by component without
//   following symlinks, so a stream cannot reach outside the share.
// - file-handles: the source records each one's file handle (name_to_handle_at) and the destination
//   opens it by handle (open_by_handle_at, CAP_DAC_READ_SEARCH), which also finds files the guest
//   holds open that were unlinked or renamed; both must see the same filesystem. A handle can name
//   any file of that filesystem, so what it opens must be (or have been, when unlinked) beneath the
//   destination's share, or it counts as not found.
// The destination follows the stream: its mode, and (verifyHandles, set on the source) the handles
// sent beside the paths in find-paths mode, which the destination checks each path against; with
// confirmPaths the source re-opens each path just before sending it and drops one that leads
// elsewhere (a third party moved files during the migration). No file data moves; locks are not
// carried (they belong to the source's open files: a guest that held one must take it again).
import * as fs from 'node:fs';
import { FUSE_ROOT_ID, type MigrationState } from '@vfsd/core/abi';
import type { HandleTable } from './handle-table';
import type { InodeTable } from './inode-table';
import { O_ACCMODE, O_APPEND, O_CLOEXEC, O_CREAT, O_DIRECTORY, O_EXCL, O_NOCTTY, O_NOFOLLOW, O_NONBLOCK, O_PATH, O_RDONLY, O_TRUNC, S_IFDIR, S_IFMT } from './sys/constants';
import { closeQuietly } from './sys/close-quietly';
import { useCred } from './sys/creds';
import { fcntlInt, nameToHandleAt, openByHandleAt, openat } from './sys/libc';
import { fstatRecord } from './sys/stat';

/** What the destination does with an inode or handle it cannot find: fail the migration, or that inode only. */
export type MigrationOnError = 'abort' | 'guest-error';
/** How the destination finds what the guest holds: by path beneath the share, or by file handle. */
export type MigrationMode = 'find-paths' | 'file-handles';

export interface MigrationOptions {
  mode: MigrationMode;
  onError: MigrationOnError;
  /** Source, find-paths: send file handles too, so the destination checks that each path found the same inode. */
  verifyHandles: boolean;
  /** Source, find-paths: re-open each path before sending it; one that no longer leads to the inode is not sent. */
  confirmPaths: boolean;
}

export const DEFAULT_MIGRATION: MigrationOptions = { mode: 'find-paths', onError: 'abort', verifyHandles: false, confirmPaths: false };

/** struct file_handle: handle_bytes (u32), handle_type (i32), then at most MAX_HANDLE_SZ bytes. */
const MAX_HANDLE_SZ = 128;

const F_GETFL = 3;
/** Status flags a reopened handle keeps (access mode, append, non-blocking, a directory). */
const KEPT_FLAGS = O_ACCMODE | O_APPEND | O_NONBLOCK | O_DIRECTORY;
const STATE_VERSION = 1;

/** Where one inode or open file is: by path, and (file-handles, verifyHandles) by file handle. */
interface Location {
  /** Relative to the share's root; null when the source could not say (deleted, moved outside). */
  path: string | null;
  /** struct file_handle in hex, or null when the filesystem gave none. */
  handle?: string | null;
  /** A directory on the handle's mount, relative to the share ('' the share's own), for open_by_handle_at. */
  mount?: string | null;
}

interface InodeRecord extends Location {
  nodeid: string;
  lookups: string;
  type: number;
}

interface HandleRecord extends Location {
  fh: string;
  nodeid: string;
  flags: number;
}

interface TablesState {
  version: number;
  mode: MigrationMode;
  inodes: InodeRecord[];
  handles: HandleRecord[];
}

const DELETED = ' (deleted)';

/** `link` relative to `root` (both as /proc/self/fd shows them), or null when outside. */
function relativeTo(root: string, link: string): string | null {
  if (link === root) return '';
  const prefix = root.endsWith('/') ? root : `${root}/`;
  return link.startsWith(prefix) ? link.slice(prefix.length) : null;
}

function fdLink(fd: number): string | null {
  try {
    return fs.readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return null;
  }
}

/** Where `fd` is, relative to `root`, or null (outside, unlinked, unknown). */
function pathUnder(root: string, fd: number): string | null {
  const link = fdLink(fd);
  return link === null || link.endsWith(DELETED) ? null : relativeTo(root, link);
}

/** Whether `fd` is beneath `root`, or was when it was unlinked (the kernel keeps the last path). */
function insideShare(root: string, fd: number): boolean {
  const link = fdLink(fd);
  if (link === null) return false;
  if (!link.endsWith(DELETED)) return relativeTo(root, link) !== null;
  return fs.fstatSync(fd).nlink === 0 && relativeTo(root, link.slice(0, -DELETED.length)) !== null;
}

/** The source's side of a file handle: hex and the directory of its mount, or nulls. */
function handleOf(fd: number, path: string | null, isDir: boolean, rootMount: number): { handle: string | null; mount: string | null } {
  const h = nameToHandleAt(fd);
  if (typeof h === 'number') return { handle: null, mount: null };
  // Another mount than the share's: a directory of it, as near as the path tells (the inode's own
  // directory, or its parent's).
  const mount = h.mountId === rootMount ? '' : path === null ? null : isDir ? path : path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : null;
  return { handle: h.handle.toString('hex'), mount };
}

/** confirmPaths: whether `path` beneath the root still leads to the inode of `fd`. */
function pathLeadsTo(rootFd: number, path: string, fd: number): boolean {
  const again = openBeneath(rootFd, path, O_PATH);
  if (again < 0) return false;
  try {
    const a = fstatRecord(again);
    const b = fstatRecord(fd);
    return a.dev === b.dev && a.ino === b.ino;
  } finally {
    closeQuietly(again);
  }
}

/** The source's side, with every queue stopped. */
export function saveTables(inodes: InodeTable, handles: HandleTable, options: MigrationOptions = DEFAULT_MIGRATION): MigrationState {
  const rootFd = inodes.get(FUSE_ROOT_ID)!.handle.fd;
  const rootPath = fs.readlinkSync(`/proc/self/fd/${rootFd}`);
  const byHandle = options.mode === 'file-handles';
  const withHandles = byHandle || options.verifyHandles;
  let rootMount = -1;
  if (withHandles) {
    const h = nameToHandleAt(rootFd);
    if (typeof h === 'number') throw new Error(`migration with file handles: the shared directory has none (errno ${-h})`);
    rootMount = h.mountId;
  }
  const locate = (fd: number, isDir: boolean): Location => {
    let path = pathUnder(rootPath, fd);
    if (path !== null && !byHandle && options.confirmPaths && !pathLeadsTo(rootFd, path, fd)) path = null;
    return withHandles ? { path, ...handleOf(fd, path, isDir, rootMount) } : { path };
  };
  const inodeRecords: InodeRecord[] = [];
  for (const entry of [...inodes.known()]) {
    let where: Location = { path: null };
    try {
      const pinned = inodes.pin(entry.nodeid); // an fd closed to stay under the cache reopens here
      try {
        where = locate(pinned.handle.fd, entry.type === S_IFDIR);
      } finally {
        pinned.handle.unpin();
      }
    } catch {
      // gone from the host (ESTALE): the destination cannot find it either
    }
    inodeRecords.push({ nodeid: String(entry.nodeid), lookups: String(entry.lookups), type: entry.type, ...where });
  }
  const handleRecords: HandleRecord[] = [];
  for (const h of handles.values()) {
    if (h.file.isClosing) continue;
    const flags = fcntlInt(h.file.fd, F_GETFL, 0);
    const kept = flags < 0 ? 0 : flags & KEPT_FLAGS;
    handleRecords.push({ fh: String(h.fh), nodeid: String(h.nodeid), flags: kept, ...locate(h.file.fd, (kept & O_DIRECTORY) !== 0) });
  }
  const state: TablesState = { version: STATE_VERSION, mode: options.mode, inodes: inodeRecords, handles: handleRecords };
  return state as unknown as MigrationState;
}

/** Opens `path` beneath `rootFd`, each component with O_NOFOLLOW; returns the fd or -errno. */
function openBeneath(rootFd: number, path: string, flags: number): number {
  const parts = path === '' ? [] : path.split('/');
  if (parts.some((p) => p === '' || p === '.' || p === '..')) return -22; // EINVAL
  if (parts.length === 0) return openat(rootFd, Buffer.from('.'), flags | O_CLOEXEC, 0);
  let dir = rootFd;
  try {
    for (let i = 0; i < parts.length - 1; i++) {
      const next = openat(dir, Buffer.from(parts[i]), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
      if (dir !== rootFd) closeQuietly(dir);
      dir = next;
      if (dir < 0) return dir;
    }
    return openat(dir, Buffer.from(parts[parts.length - 1]), flags | O_NOFOLLOW | O_CLOEXEC, 0);
  } finally {
    if (dir !== rootFd && dir >= 0) closeQuietly(dir);
  }
}

function bigintOf(v: unknown, what: string): bigint {
  if (typeof v !== 'string' || !/^[0-9]{1,20}$/.test(v)) throw new Error(`migration state: ${what} is not a decimal string`);
  return BigInt(v);
}

function pathOf(v: unknown, what: string): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v !== 'string' || v.includes('\0')) throw new Error(`migration state: ${what} is not a path`);
  return v;
}

/** A struct file_handle from the stream, checked so the kernel reads no more than the buffer holds. */
function fileHandleOf(v: unknown, what: string): Buffer | null {
  if (v === null || v === undefined) return null;
  if (typeof v !== 'string' || !/^(?:[0-9a-f]{2})+$/.test(v) || v.length > 2 * (8 + MAX_HANDLE_SZ)) throw new Error(`migration state: ${what} is not a file handle`);
  const b = Buffer.from(v, 'hex');
  if (b.length < 8 || b.readUInt32LE(0) !== b.length - 8) throw new Error(`migration state: ${what} is not a file handle`);
  return b;
}

/** The destination's way of opening what the stream locates: by path or by handle; fd or -errno, and why not. */
class Finder {
  private readonly mountFds = new Map<string, number>();
  private readonly rootPath: string;

  constructor(
    private readonly rootFd: number,
    private readonly mode: MigrationMode,
  ) {
    this.rootPath = fs.readlinkSync(`/proc/self/fd/${rootFd}`);
  }

  /** Opens one record's file with `flags`: an fd, or a reason it is not found. */
  open(r: Location, what: string, flags: number): { fd: number } | { why: string } {
    const path = pathOf(r.path, `path of ${what}`);
    const handle = fileHandleOf(r.handle, `handle of ${what}`);
    if (this.mode === 'file-handles') {
      if (!handle) return { why: 'the source had no file handle for it' };
      const mount = pathOf(r.mount, `mount of ${what}`);
      const mfd = mount === null ? -2 : this.mountFd(mount);
      if (mfd < 0) return { why: `no directory of its mount (${mount ?? 'unknown'}): errno ${-mfd}` };
      const fd = openByHandleAt(mfd, handle, (flags & ~O_NOFOLLOW) | O_CLOEXEC);
      if (fd < 0) return { why: `open_by_handle_at: errno ${-fd}` };
      if (!insideShare(this.rootPath, fd)) {
        closeQuietly(fd);
        return { why: 'its file handle names a file outside the shared directory' };
      }
      return { fd };
    }
    if (path === null) return { why: 'the source could not tell its path' };
    const fd = openBeneath(this.rootFd, path, flags);
    if (fd < 0) return { why: `${path}: errno ${-fd}` };
    if (handle) {
      // The source verifies handles (--migration-verify-handles): the path must have led to that inode.
      const h = nameToHandleAt(fd);
      if (typeof h === 'number' || !h.handle.equals(handle)) {
        closeQuietly(fd);
        return { why: `${path}: another inode than on the source (file handles differ)` };
      }
    }
    return { fd };
  }

  private mountFd(mount: string): number {
    let fd = this.mountFds.get(mount);
    if (fd === undefined) {
      // open_by_handle_at's mount fd may not be O_PATH.
      fd = openBeneath(this.rootFd, mount, O_RDONLY | O_DIRECTORY);
      if (fd >= 0) this.mountFds.set(mount, fd);
    }
    return fd;
  }

  close(): void {
    for (const fd of this.mountFds.values()) closeQuietly(fd);
    this.mountFds.clear();
  }
}

/**
 * The destination's side, before its queues start: every inode and handle opened again, or (with
 * 'guest-error') the ones that cannot be left out and failing with EIO. Throws, with nothing kept,
 * when the state is malformed or (with 'abort') anything is missing.
 */
export function loadTables(
  inodes: InodeTable,
  handles: HandleTable,
  state: MigrationState,
  options: Pick<MigrationOptions, 'onError'>,
): { restored: number; lost: string[] } {
  const onError = options.onError;
  const s = state as unknown as Partial<TablesState> | null;
  if (!s || typeof s !== 'object' || s.version !== STATE_VERSION || (s.mode !== 'find-paths' && s.mode !== 'file-handles') || !Array.isArray(s.inodes) || !Array.isArray(s.handles)) {
    throw new Error('migration state: not a find-paths or file-handles state of version 1');
  }
  if (inodes.size !== 1 || handles.size !== 0) throw new Error('migration state loaded into a session that has already served requests');
  const rootFd = inodes.get(FUSE_ROOT_ID)!.handle.fd;
  // As the daemon (open_by_handle_at needs CAP_DAC_READ_SEARCH, which a caller's fsuid drops).
  useCred(undefined);
  const finder = new Finder(rootFd, s.mode);
  const opened: number[] = [];
  const lost: string[] = [];
  try {
    const plan: { nodeid: bigint; lookups: bigint; fd: number }[] = [];
    const lostNodes: { nodeid: bigint; lookups: bigint }[] = [];
    const seen = new Set<string>();
    const unique = (key: string): void => {
      if (seen.has(key)) throw new Error(`migration state: ${key} twice`);
      seen.add(key);
    };
    for (const r of s.inodes) {
      const nodeid = bigintOf(r.nodeid, 'nodeid');
      if (nodeid <= FUSE_ROOT_ID) throw new Error(`migration state: nodeid ${nodeid}`);
      unique(`nodeid ${nodeid}`);
      const lookups = bigintOf(r.lookups, 'lookups');
      const found = finder.open(r, `nodeid ${nodeid}`, O_PATH);
      let why = 'why' in found ? found.why : '';
      if ('fd' in found) {
        const fd = found.fd;
        opened.push(fd);
        const st = fstatRecord(fd);
        if ((st.mode & S_IFMT) !== (r.type & S_IFMT)) why = `${r.path ?? 'it'}: another file type than on the source`;
        else plan.push({ nodeid, lookups, fd });
      }
      if (why) {
        lost.push(`nodeid ${nodeid}: ${why}`);
        lostNodes.push({ nodeid, lookups });
      }
    }
    const handlePlan: { fh: bigint; nodeid: bigint; fd: number }[] = [];
    const planned = new Set(plan.map((p) => p.nodeid));
    for (const r of s.handles) {
      const fh = bigintOf(r.fh, 'fh');
      if (fh === 0n) throw new Error('migration state: fh 0');
      unique(`fh ${fh}`);
      const nodeid = bigintOf(r.nodeid, `nodeid of fh ${fh}`);
      if (!Number.isInteger(r.flags)) throw new Error(`migration state: flags of fh ${fh}`);
      const flags = r.flags & KEPT_FLAGS & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY);
      if (!planned.has(nodeid)) {
        lost.push(`fh ${fh}: its inode ${nodeid} is lost`);
        continue;
      }
      const found = finder.open(r, `fh ${fh}`, flags);
      if ('why' in found) {
        lost.push(`fh ${fh}: ${found.why}`);
        continue;
      }
      const fd = found.fd;
      opened.push(fd);
      if ((flags & O_DIRECTORY) !== 0 && (fstatRecord(fd).mode & S_IFMT) !== S_IFDIR) throw new Error(`fh ${fh}: ${r.path ?? 'it'} is no longer a directory`);
      handlePlan.push({ fh, nodeid, fd });
    }
    if (lost.length > 0 && onError === 'abort') throw new Error(`migration: ${lost.length} not found on the destination (first: ${lost[0]})`);
    // All checks passed: the tables take the fds over.
    for (const p of plan) {
      inodes.restore(p.nodeid, p.fd, fstatRecord(p.fd), p.lookups);
    }
    for (const l of lostNodes) inodes.markLost(l.nodeid, l.lookups);
    for (const h of handlePlan) handles.restore(h.fh, h.nodeid, h.fd);
    opened.length = 0;
    return { restored: plan.length + handlePlan.length, lost };
  } finally {
    for (const fd of opened) closeQuietly(fd);
    finder.close();
  }
}
