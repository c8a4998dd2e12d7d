// Executes an Op synchronously in the calling thread: in a pool worker, or inline on the main thread.
import * as fs from 'node:fs';
import { check, errnoOf } from '../sys/errno';
import {
  AT_REMOVEDIR,
  FATTR_ATIME,
  FATTR_ATIME_NOW,
  FATTR_GID,
  FATTR_KILL_SUIDGID,
  FATTR_MODE,
  FATTR_MTIME,
  FATTR_MTIME_NOW,
  FATTR_SIZE,
  FATTR_UID,
  F_DUPFD_CLOEXEC,
  F_OFD_SETLKW,
  LOCK_NB,
  O_CLOEXEC,
  O_CREAT,
  O_EXCL,
  O_NOFOLLOW,
  O_PATH,
  O_TMPFILE,
  SEEK_SET,
  S_IFMT,
  S_ISGID,
  S_ISUID,
  S_IXGRP,
  UTIME_NOW,
  UTIME_OMIT,
} from '../sys/constants';
import { decodeFlock, encodeFlock } from '../sys/flock-struct';
import {
  copyFileRange,
  faccessat,
  fallocate,
  fchownEmpty,
  fcntlInt,
  fcntlPtr,
  flock,
  fstatfs,
  getdents64,
  getxattr,
  linkFd,
  listxattr,
  lseek,
  mkdirat,
  mknodat,
  openat,
  pread,
  pwrite,
  readlinkEmpty,
  removexattr,
  renameat2,
  setxattr,
  symlinkat,
  syncfs,
  unlinkat,
  utimensFd,
} from '../sys/libc';
import { EACCES, EEXIST, EINTR, ENODATA, ENOENT, EOPNOTSUPP, EPERM, ERANGE, direntplusSize, direntSize, sliceViews, viewsLength } from '@vfsd/core/abi';
import { useCred } from '../sys/creds';
import { fstatRecord, statAtRecord } from '../sys/stat';
import { FD_ONLY_KINDS, type CancelToken, type Created, type NewMode, type Op, type OpKind, type OpOutcome, type OpResult, type ReaddirEntry, type StatfsRecord } from './ops';

const AT_FDCWD = -100;
const AT_EACCESS = 0x200;

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

const DOT = 0x2e;

function procPath(fd: number): string {
  return `/proc/self/fd/${fd}`;
}

/** An O_PATH fd of the inode behind an open fd (the magic link never goes through a path). */
function pathFdOf(fd: number): number {
  return fs.openSync(procPath(fd), O_PATH | O_CLOEXEC);
}

function created(fd: number): Created {
  try {
    const pathFd = pathFdOf(fd);
    return { fd, pathFd, stat: fstatRecord(fd) };
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
}

function isDotOrDotDot(name: Uint8Array): boolean {
  return name[0] === DOT && (name.length === 1 || (name.length === 2 && name[1] === DOT));
}

const DIRENT_BUF = 32 * 1024;

/** getdents64's buffer, reused (names are copied out): 8-aligned for the typed views of each record. */
const direntBuf = new ArrayBuffer(DIRENT_BUF);
const direntBytes = Buffer.from(direntBuf);
const direntU64 = new BigUint64Array(direntBuf);
const direntI64 = new BigInt64Array(direntBuf);
const direntU16 = new Uint16Array(direntBuf);

/**
 * getdents64 from op.offset on. Inline, each entry goes to op.emit as it is read (its name a view of
 * the reused buffer), op.fits asked before a lookup; in a worker they are collected, as many as
 * op.size bytes of the reply's records hold (the same record sizes the server packs).
 */
function readdir(op: Op<'readdir'>): ReaddirEntry[] {
  const { fd, plus, known, emit } = op;
  const out: ReaddirEntry[] = [];
  let left = op.size;
  const recordSize = plus ? direntplusSize : direntSize;
  const fits = op.fits ?? ((n: number) => recordSize(n) <= left);
  const seek = lseek(fd, op.offset, SEEK_SET);
  if (seek < 0n) check('lseek', Number(seek));
  const buf = direntBytes;
  let added = 0;
  for (;;) {
    const n = check('getdents64', getdents64(fd, buf));
    if (n === 0) return out;
    // struct linux_dirent64: d_ino @0, d_off @8, d_reclen @16, d_type @18, d_name @19; records are 8-aligned.
    for (let pos = 0; pos < n; ) {
      const ino = direntU64[pos >>> 3];
      const off = direntI64[(pos >>> 3) + 1];
      const reclen = direntU16[(pos >>> 1) + 8];
      const type = buf[pos + 18];
      const nameEnd = buf.indexOf(0, pos + 19);
      const view = buf.subarray(pos + 19, nameEnd < 0 || nameEnd > pos + reclen ? pos + reclen : nameEnd);
      pos += reclen;
      if (!fits(view.length)) return out;
      const entry: ReaddirEntry = { ino, off, type, name: emit ? view : Buffer.from(view) };
      if (plus && !isDotOrDotDot(view)) {
        try {
          // An inode the caller holds needs only its stat by name: one statx instead of openat, statx and close.
          const st = known ? statAtRecord(fd, view) : undefined;
          if (st && known!(st)) entry.stat = st;
          else {
            const found = lookupAt(fd, view);
            entry.fd = found.fd;
            entry.stat = found.stat;
          }
        } catch (err) {
          // Removed since getdents: leave it out. Another failure ends the listing here (or fails it).
          if (errnoOf(err) === ENOENT) continue;
          if (added === 0) throw err;
          return out;
        }
      }
      added++;
      if (emit) {
        if (!emit(entry)) return out;
      } else {
        out.push(entry);
        left -= recordSize(view.length);
      }
    }
  }
}

/** A direction of vectored(): Node's call for several buffers, libc's for one (returning -errno), its name. */
interface Transfer {
  many: typeof fs.readvSync;
  one: (fd: number, buf: Uint8Array, offset: number) => number;
  name: string;
}
const READ: Transfer = { many: fs.readvSync, one: pread, name: 'pread' };
const WRITE: Transfer = { many: fs.writevSync, one: pwrite, name: 'pwrite' };

/**
 * preadv or pwritev (`t`) of `size` bytes of `views` at `offset`, again after a short transfer,
 * until all are done or the file ends; returns the bytes moved.
 */
function vectored(t: Transfer, fd: number, offset: bigint, views: readonly Uint8Array[], size: number): number {
  let done = 0;
  let pos = Number(offset);
  let rest = sliceViews(views, 0, size);
  while (done < size) {
    // One buffer (a page, mostly) through libc: Node's vectored call costs twice as much.
    const n = rest.length === 1 ? check(t.name, t.one(fd, rest[0], pos)) : t.many(fd, rest as NodeJS.ArrayBufferView[], pos);
    if (n === 0) break;
    done += n;
    pos += n;
    rest = sliceViews(rest, n, size - done);
  }
  return done;
}

function readInto(fd: number, offset: bigint, size: number, into: readonly Uint8Array[]): number {
  return vectored(READ, fd, offset, into, size);
}

function writeFrom(fd: number, offset: bigint, data: readonly Uint8Array[]): number {
  return vectored(WRITE, fd, offset, data, viewsLength(data));
}

/** A read into a buffer of its own (one the worker's reply may carry back). */
function readAll(fd: number, offset: bigint, size: number): Uint8Array {
  const buf = Buffer.allocUnsafe(size);
  return buf.subarray(0, readInto(fd, offset, size, [buf]));
}


const ACL_DEFAULT = Buffer.from('system.posix_acl_default');

/**
 * The permission bits a new inode is made with: the caller's umask applied, unless the directory has a
 * default ACL (only asked with POSIX ACLs on): then the host derives them from the ACL, ignoring the
 * umask, as it would for a local caller (the daemon's own umask is 0).
 */
function newMode(dirFd: number, m: NewMode): number {
  if (m.aclAware) {
    const r = getxattr(procPath(dirFd), ACL_DEFAULT, null);
    if (r >= 0) return m.mode;
    if (r !== -ENODATA && r !== -EOPNOTSUPP) check('getxattr', r);
  }
  return m.mode & ~(m.umask & 0o777);
}

/**
 * What the kernel's file_remove_privs does for a caller without CAP_FSETID: S_ISUID goes, and S_ISGID
 * when the group may execute (without it, S_ISGID means mandatory locking, kept). The guest asks for it
 * with HANDLE_KILLPRIV_V2 (on WRITE, SETATTR and O_TRUNC opens); the daemon, root, would keep them.
 */
function killSuidgid(fd: number, isPathFd = false): void {
  const mode = fstatRecord(fd).mode;
  let kill = mode & S_ISUID;
  if ((mode & (S_ISGID | S_IXGRP)) === (S_ISGID | S_IXGRP)) kill |= S_ISGID;
  if (kill === 0) return;
  // As the daemon: the kernel clears the bits for any writer, not only for the owner.
  useCred(undefined);
  const next = mode & 0o7777 & ~kill;
  if (isPathFd) fs.chmodSync(procPath(fd), next);
  else fs.fchmodSync(fd, next);
}

/**
 * CREATE. With killSuidgid (an O_TRUNC by a caller without CAP_FSETID), a file that already existed
 * loses its set-id bits, as a truncation does; one this call makes keeps the mode it was asked for. So
 * that the two can be told apart, an exclusive create is tried first.
 */
function create(op: Op<'create'>): Created {
  const flags = op.flags | O_CREAT | O_NOFOLLOW | O_CLOEXEC;
  const mode = newMode(op.dirFd, op);
  if (!op.killSuidgid || (op.flags & O_EXCL) !== 0) return created(check('openat', openat(op.dirFd, op.name, flags, mode)));
  for (let tries = 0; ; tries++) {
    const fd = openat(op.dirFd, op.name, flags | O_EXCL, mode);
    if (fd >= 0) return created(fd);
    if (fd !== -EEXIST) check('openat', fd);
    // It exists: open it as it is (truncated), then clear the bits. Gone again meanwhile: retry.
    const existing = openat(op.dirFd, op.name, flags & ~O_CREAT, 0);
    if (existing === -ENOENT && tries < 3) continue;
    const made = created(check('openat', existing));
    killSuidgid(made.fd);
    return made;
  }
}

function timespec(buf: Buffer, at: number, now: boolean, set: boolean, sec: bigint, nsec: number): void {
  buf.writeBigInt64LE(set && !now ? sec : 0n, at);
  buf.writeBigInt64LE(BigInt(now ? UTIME_NOW : set ? nsec : UTIME_OMIT), at + 8);
}

/** Runs `fn` as the daemon, then goes back to the op's caller for whatever the op does next. */
function asDaemon<T>(op: Op, fn: () => T): T {
  useCred(undefined);
  try {
    return fn();
  } finally {
    useCred(op.cred);
  }
}

/**
 * SETATTR's chown, as the caller. The host cannot see the caller's supplementary groups (the thread
 * runs with its fsuid/fsgid and none), so a change of group to one of them fails here though the
 * guest's kernel, which knows them, already allowed it (default_permissions): then, for the file's
 * owner changing the group alone, the change is made as the daemon, as the C virtiofsd makes every
 * chown. A change of owner stays the caller's, so the host refuses what the kernel would.
 */
function chown(op: Op<'setattr'>): void {
  const uid = op.valid & FATTR_UID ? op.uid : -1;
  const gid = op.valid & FATTR_GID ? op.gid : -1;
  const r = fchownEmpty(op.pathFd, uid, gid);
  if (r === -EPERM && op.cred && gid !== -1) {
    const st = fs.fstatSync(op.pathFd);
    if (st.uid === op.cred.uid && (uid === -1 || uid === st.uid)) {
      check('fchownat', asDaemon(op, () => fchownEmpty(op.pathFd, -1, gid)));
      return;
    }
  }
  check('fchownat', r);
}

function setattr(op: Op<'setattr'>) {
  const v = op.valid;
  const hasFd = op.fd >= 0;
  if (v & FATTR_MODE) {
    if (hasFd) fs.fchmodSync(op.fd, op.mode & 0o7777);
    else fs.chmodSync(procPath(op.pathFd), op.mode & 0o7777);
  }
  if (v & (FATTR_UID | FATTR_GID)) chown(op);
  if (v & FATTR_SIZE) {
    if (hasFd) fs.ftruncateSync(op.fd, Number(op.size));
    else fs.truncateSync(procPath(op.pathFd), Number(op.size));
  }
  if (v & (FATTR_ATIME | FATTR_MTIME | FATTR_ATIME_NOW | FATTR_MTIME_NOW)) {
    const times = Buffer.alloc(32);
    timespec(times, 0, (v & FATTR_ATIME_NOW) !== 0, (v & FATTR_ATIME) !== 0, op.atime, op.atimensec);
    timespec(times, 16, (v & FATTR_MTIME_NOW) !== 0, (v & FATTR_MTIME) !== 0, op.mtime, op.mtimensec);
    check('utimensat', utimensFd(op.pathFd, times));
  }
  // After a chown or truncate (the changes the kernel asks it for), last since it runs as the daemon;
  // an explicit new mode wins.
  if ((v & FATTR_KILL_SUIDGID) !== 0 && (v & FATTR_MODE) === 0 && (v & (FATTR_UID | FATTR_GID | FATTR_SIZE)) !== 0) {
    killSuidgid(op.pathFd, true);
  }
  return fstatRecord(op.pathFd);
}

function statfs(fd: number): StatfsRecord {
  const b = Buffer.alloc(120);
  check('fstatfs', fstatfs(fd, b));
  return {
    bsize: Number(b.readBigInt64LE(8)),
    blocks: b.readBigUInt64LE(16),
    bfree: b.readBigUInt64LE(24),
    bavail: b.readBigUInt64LE(32),
    files: b.readBigUInt64LE(40),
    ffree: b.readBigUInt64LE(48),
    namelen: Number(b.readBigInt64LE(64)),
    frsize: Number(b.readBigInt64LE(72)),
  };
}

/** A size-then-fetch call (getxattr, listxattr), retried if the value grew in between. */
function sized(syscall: string, fn: (buf: Buffer | null) => number): Uint8Array {
  for (;;) {
    const n = check(syscall, fn(null));
    if (n === 0) return Buffer.alloc(0);
    const buf = Buffer.allocUnsafe(n);
    const r = fn(buf);
    if (r === -ERANGE) continue;
    return buf.subarray(0, check(syscall, r));
  }
}

function bytes(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

function run(op: Op, cancel: CancelToken): OpResult<OpKind> {
  switch (op.kind) {
    case 'fstat':
      return fstatRecord(op.fd);
    case 'lookupAt':
      return lookupAt(op.dirFd, op.name);
    case 'statAt':
      return statAtRecord(op.dirFd, op.name);
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
    case 'readdir':
      return readdir(op);
    case 'create':
      return create(op);
    case 'tmpfile':
      return created(check('openat', openat(op.dirFd, Buffer.from('.'), (op.flags & ~O_CREAT) | O_TMPFILE | O_CLOEXEC, newMode(op.dirFd, op))));
    case 'mkdirAt':
      check('mkdirat', mkdirat(op.dirFd, op.name, newMode(op.dirFd, op)));
      return lookupAt(op.dirFd, op.name);
    case 'mknodAt':
      // The type bits are not the umask's.
      check('mknodat', mknodat(op.dirFd, op.name, (op.mode & S_IFMT) | newMode(op.dirFd, { ...op, mode: op.mode & 0o7777 }), op.rdev));
      return lookupAt(op.dirFd, op.name);
    case 'symlinkAt':
      check('symlinkat', symlinkat(op.target, op.dirFd, op.name));
      return lookupAt(op.dirFd, op.name);
    case 'linkAt': {
      let r = linkFd(op.fd, op.newDir, op.newName);
      // LINK carries no supplementary group (the kernel sends FUSE_EXT_GROUPS with the other creates,
      // not with it): a directory the caller may write through one of them refuses it here, though the
      // guest's kernel allowed it. A link has no owner of its own: made as the daemon, as the C virtiofsd.
      if (r === -EACCES && op.cred) r = asDaemon(op, () => linkFd(op.fd, op.newDir, op.newName));
      check('linkat', r);
      return lookupAt(op.newDir, op.newName);
    }
    case 'readlink': {
      const buf = Buffer.allocUnsafe(4096);
      return buf.subarray(0, check('readlinkat', readlinkEmpty(op.fd, buf)));
    }
    case 'unlinkAt':
      check('unlinkat', unlinkat(op.dirFd, op.name, op.flags & AT_REMOVEDIR));
      return undefined;
    case 'renameAt':
      check('renameat2', renameat2(op.oldDir, op.oldName, op.newDir, op.newName, op.flags));
      return undefined;
    case 'setattr':
      return setattr(op);
    case 'read':
      return readAll(op.fd, op.offset, op.size);
    case 'readInto':
      return readInto(op.fd, op.offset, op.size, op.into);
    case 'readSlab':
      return readInto(op.fd, op.offset, op.size, [new Uint8Array(op.slab, 0, op.size)]);
    case 'writeSlab':
      if (op.killSuidgid) killSuidgid(op.fd);
      return writeFrom(op.fd, op.offset, [new Uint8Array(op.slab, 0, op.size)]);
    case 'write':
      if (op.killSuidgid) killSuidgid(op.fd);
      return writeFrom(op.fd, op.offset, [op.data]);
    case 'writeFrom':
      if (op.killSuidgid) killSuidgid(op.fd);
      return writeFrom(op.fd, op.offset, op.data);
    case 'killSuidgid':
      killSuidgid(op.fd);
      return undefined;
    case 'fsync':
      if (op.datasync) fs.fdatasyncSync(op.fd);
      else fs.fsyncSync(op.fd);
      return undefined;
    case 'fallocate':
      check('fallocate', fallocate(op.fd, op.mode, Number(op.offset), Number(op.length)));
      return undefined;
    case 'lseek': {
      const r = lseek(op.fd, op.offset, op.whence);
      if (r < 0n) check('lseek', Number(r));
      return r;
    }
    case 'copyFileRange': {
      const offIn = Buffer.alloc(8);
      const offOut = Buffer.alloc(8);
      offIn.writeBigInt64LE(op.offIn);
      offOut.writeBigInt64LE(op.offOut);
      return check('copy_file_range', copyFileRange(op.fdIn, offIn, op.fdOut, offOut, op.len, op.flags));
    }
    case 'syncfs': {
      // syncfs refuses O_PATH fds: a real (read-only) open of the same inode.
      const fd = fs.openSync(procPath(op.fd), O_CLOEXEC);
      try {
        check('syncfs', syncfs(fd));
      } finally {
        fs.closeSync(fd);
      }
      return undefined;
    }
    case 'statfs':
      return statfs(op.fd);
    case 'access':
      // AT_EACCESS: checked with the thread's fsuid/fsgid (plain access(2) would use the real uid, root).
      check('faccessat', faccessat(AT_FDCWD, Buffer.from(procPath(op.fd)), op.mask, AT_EACCESS));
      return undefined;
    case 'getxattr':
      return sized('getxattr', (b) => getxattr(procPath(op.fd), op.name, b));
    case 'listxattr':
      return sized('listxattr', (b) => listxattr(procPath(op.fd), b));
    case 'setxattr':
      check('setxattr', setxattr(procPath(op.fd), op.name, bytes(op.value), op.flags));
      return undefined;
    case 'removexattr':
      check('removexattr', removexattr(procPath(op.fd), op.name));
      return undefined;
  }
}

export function runOp<K extends OpKind>(op: Op<K>, cancel: CancelToken): OpOutcome<K> {
  try {
    // The caller's fsuid/fsgid on this thread (or the daemon's own for a call without cred).
    if (!FD_ONLY_KINDS.has(op.kind)) useCred(op.cred);
    return { ok: true, value: run(op as Op, cancel) as OpResult<K> };
  } catch (err) {
    return { ok: false, errno: errnoOf(err) };
  }
}
