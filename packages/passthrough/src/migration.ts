// Live migration of the passthrough's tables, found again by path (the Rust virtiofsd's default,
// "find-paths"): the source records, for each inode the guest knows and each handle it holds, where
// it is under the shared directory (from /proc/self/fd); the destination, whose share has the same
// contents, opens each again beneath its own root, component by component without following
// symlinks, so a stream cannot reach outside the share. No file data moves; locks are not carried
// (they belong to the source's open files: a guest that held one must take it again).
import * as fs from 'node:fs';
import { FUSE_ROOT_ID, type MigrationState } from '@vfsd/core/abi';
import type { HandleTable } from './handle-table';
import type { InodeTable } from './inode-table';
import { O_ACCMODE, O_APPEND, O_CLOEXEC, O_CREAT, O_DIRECTORY, O_EXCL, O_NOCTTY, O_NOFOLLOW, O_NONBLOCK, O_PATH, O_TRUNC, S_IFDIR, S_IFMT } from './sys/constants';
import { closeQuietly } from './sys/close-quietly';
import { fcntlInt, openat } from './sys/libc';
import { fstatRecord } from './sys/stat';

/** What the destination does with an inode or handle it cannot find: fail the migration, or that inode only. */
export type MigrationOnError = 'abort' | 'guest-error';

const F_GETFL = 3;
/** Status flags a reopened handle keeps (access mode, append, non-blocking, a directory). */
const KEPT_FLAGS = O_ACCMODE | O_APPEND | O_NONBLOCK | O_DIRECTORY;
const STATE_VERSION = 1;

interface InodeRecord {
  nodeid: string;
  lookups: string;
  type: number;
  /** Relative to the share's root; null when the source could not say (deleted, moved outside). */
  path: string | null;
}

interface HandleRecord {
  fh: string;
  nodeid: string;
  flags: number;
  path: string | null;
}

interface TablesState {
  version: number;
  mode: 'find-paths';
  inodes: InodeRecord[];
  handles: HandleRecord[];
}

/** Where `fd` is, relative to `root` (both as /proc/self/fd shows them), or null. */
function pathUnder(root: string, fd: number): string | null {
  let link: string;
  try {
    link = fs.readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return null;
  }
  if (link.endsWith(' (deleted)')) return null;
  if (link === root) return '';
  const prefix = root.endsWith('/') ? root : `${root}/`;
  return link.startsWith(prefix) ? link.slice(prefix.length) : null;
}

/** The source's side, with every queue stopped. */
export function saveTables(inodes: InodeTable, handles: HandleTable): MigrationState {
  const root = inodes.get(FUSE_ROOT_ID)!;
  const rootPath = fs.readlinkSync(`/proc/self/fd/${root.handle.fd}`);
  const inodeRecords: InodeRecord[] = [];
  for (const entry of [...inodes.known()]) {
    let path: string | null = null;
    try {
      const pinned = inodes.pin(entry.nodeid); // an fd closed to stay under the cache reopens here
      try {
        path = pathUnder(rootPath, pinned.handle.fd);
      } finally {
        pinned.handle.unpin();
      }
    } catch {
      // gone from the host (ESTALE): the destination cannot find it either
    }
    inodeRecords.push({ nodeid: String(entry.nodeid), lookups: String(entry.lookups), type: entry.type, path });
  }
  const handleRecords: HandleRecord[] = [];
  for (const h of handles.values()) {
    if (h.file.isClosing) continue;
    const flags = fcntlInt(h.file.fd, F_GETFL, 0);
    handleRecords.push({ fh: String(h.fh), nodeid: String(h.nodeid), flags: flags < 0 ? 0 : flags & KEPT_FLAGS, path: pathUnder(rootPath, h.file.fd) });
  }
  const state: TablesState = { version: STATE_VERSION, mode: 'find-paths', inodes: inodeRecords, handles: handleRecords };
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
  if (v === null) return null;
  if (typeof v !== 'string' || v.includes('\0')) throw new Error(`migration state: ${what} is not a path`);
  return v;
}

/**
 * The destination's side, before its queues start: every inode and handle opened again, or (with
 * 'guest-error') the ones that cannot be left out and failing with EIO. Throws, with nothing kept,
 * when the state is malformed or (with 'abort') anything is missing.
 */
export function loadTables(inodes: InodeTable, handles: HandleTable, state: MigrationState, onError: MigrationOnError): { restored: number; lost: string[] } {
  const s = state as unknown as Partial<TablesState> | null;
  if (!s || typeof s !== 'object' || s.version !== STATE_VERSION || s.mode !== 'find-paths' || !Array.isArray(s.inodes) || !Array.isArray(s.handles)) {
    throw new Error('migration state: not a find-paths state of version 1');
  }
  if (inodes.size !== 1 || handles.size !== 0) throw new Error('migration state loaded into a session that has already served requests');
  const rootFd = inodes.get(FUSE_ROOT_ID)!.handle.fd;
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
      const path = pathOf(r.path, `path of nodeid ${nodeid}`);
      const fd = path === null ? -2 : openBeneath(rootFd, path, O_PATH);
      let why = path === null ? 'the source could not tell its path' : fd < 0 ? `${path}: errno ${-fd}` : '';
      if (fd >= 0) {
        opened.push(fd);
        const st = fstatRecord(fd);
        if ((st.mode & S_IFMT) !== (r.type & S_IFMT)) why = `${path}: another file type than on the source`;
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
      const path = pathOf(r.path, `path of fh ${fh}`);
      if (!Number.isInteger(r.flags)) throw new Error(`migration state: flags of fh ${fh}`);
      const flags = r.flags & KEPT_FLAGS & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY);
      const fd = path === null || !planned.has(nodeid) ? -2 : openBeneath(rootFd, path, flags);
      if (fd < 0) {
        lost.push(`fh ${fh}: ${path === null ? 'the source could not tell its path' : !planned.has(nodeid) ? `its inode ${nodeid} is lost` : `${path}: errno ${-fd}`}`);
        continue;
      }
      opened.push(fd);
      if ((flags & O_DIRECTORY) !== 0 && (fstatRecord(fd).mode & S_IFMT) !== S_IFDIR) throw new Error(`fh ${fh}: ${path} is no longer a directory`);
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
  }
}
