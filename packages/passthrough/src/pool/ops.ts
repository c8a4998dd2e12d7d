// The calls a pool worker (or the main thread, inline) can run: small, serialisable, one syscall or a
// short fixed sequence each. The filesystem composes them; nothing here knows about FUSE.
import type { Cred } from '../sys/creds';
import type { FlockRecord } from '../sys/flock-struct';
import type { StatRecord } from '../sys/stat';

export interface OpTable {
  /** fstat on any fd, O_PATH included. */
  fstat: { req: { fd: number }; res: StatRecord };
  /** openat(dirFd, name, O_PATH|O_NOFOLLOW|O_CLOEXEC) then fstat: a new O_PATH fd and its stat. */
  lookupAt: { req: { dirFd: number; name: Uint8Array }; res: { fd: number; stat: StatRecord } };
  /**
   * lstat of dirFd/name without opening anything (through /proc/self/fd/N/name, the last component not
   * followed): how a LOOKUP that could not get an fd (EMFILE) still finds an inode the table holds.
   */
  statAt: { req: { dirFd: number; name: Uint8Array }; res: StatRecord };
  /** A new open file description for the inode behind an O_PATH fd (open of /proc/self/fd/N). */
  reopen: { req: { fd: number; flags: number }; res: number };
  close: { req: { fd: number }; res: undefined };
  /** close(dup(fd)): what FLUSH asks for (network filesystems write back on close). */
  flushFd: { req: { fd: number }; res: undefined };
  /** fcntl(fd, F_OFD_GETLK | F_OFD_SETLK | F_OFD_SETLKW, &lock); resolves with the struct after the call. */
  ofdLock: { req: { fd: number; cmd: number; lock: FlockRecord }; res: FlockRecord };
  /** flock(fd, operation). */
  flock: { req: { fd: number; operation: number }; res: undefined };

  // ---- The operations below travel through a message port (see ring.ts, GENERIC), not slot words. ----

  /**
   * getdents64 from `offset` (a cookie from a previous entry, 0 at the start) until `size` bytes of
   * fuse_dirent (or fuse_direntplus when `plus`) records are filled; with `plus` each entry but '.' and
   * '..' is looked up (a new O_PATH fd and its stat). Entries that vanished before their lookup are left out.
   * Inline only (a function does not cross to a worker): `known` is asked first with the entry's stat
   * by name: true means the caller holds that inode already, and no fd is opened (the entry has its stat
   * only); `fits` replaces the sizing by `size`, and `emit` takes each entry as it is read (its name a
   * view valid during the call; false ends the listing) instead of the result.
   */
  readdir: {
    req: { fd: number; offset: bigint; size: number; plus: boolean; known?: (stat: StatRecord) => boolean; fits?: (nameLen: number) => boolean; emit?: (e: ReaddirEntry) => boolean };
    res: ReaddirEntry[];
  };
  /**
   * openat(dirFd, name, flags | O_CREAT | O_NOFOLLOW | O_CLOEXEC, mode with umask applied); plus an O_PATH fd
   * of the new inode. With killSuidgid, an existing file it truncates loses its set-id bits (KILLPRIV_V2).
   */
  create: { req: { dirFd: number; name: Uint8Array; flags: number } & NewMode & { killSuidgid?: boolean }; res: Created };
  /** openat(dirFd, ".", O_TMPFILE | flags, mode with umask applied); plus an O_PATH fd of the new inode. */
  tmpfile: { req: { dirFd: number; flags: number } & NewMode; res: Created };
  /** mkdirat / mknodat / symlinkat, then the lookup of the new name. */
  mkdirAt: { req: { dirFd: number; name: Uint8Array } & NewMode; res: { fd: number; stat: StatRecord } };
  mknodAt: { req: { dirFd: number; name: Uint8Array; rdev: number } & NewMode; res: { fd: number; stat: StatRecord } };
  symlinkAt: { req: { dirFd: number; name: Uint8Array; target: Uint8Array }; res: { fd: number; stat: StatRecord } };
  /** linkat of the inode behind fd to newDir/newName, then its lookup. */
  linkAt: { req: { fd: number; newDir: number; newName: Uint8Array }; res: { fd: number; stat: StatRecord } };
  /** readlinkat(fd, "") on an O_PATH fd of a symlink. */
  readlink: { req: { fd: number }; res: Uint8Array };
  unlinkAt: { req: { dirFd: number; name: Uint8Array; flags: number }; res: undefined };
  renameAt: { req: { oldDir: number; oldName: Uint8Array; newDir: number; newName: Uint8Array; flags: number }; res: undefined };
  /** Applies the SETATTR changes in order (mode, owner, size, times); resolves with the new stat. */
  setattr: { req: SetattrOp; res: StatRecord };
  read: { req: { fd: number; offset: bigint; size: number }; res: Uint8Array };
  /** pread into a shared slab (IoSlabs: big reads in a worker); resolves with the bytes read. */
  readSlab: { req: { fd: number; offset: bigint; size: number; slab: SharedArrayBuffer }; res: number };
  /** pwrite of the first `size` bytes of a shared slab, as `write`. */
  writeSlab: { req: { fd: number; offset: bigint; size: number; slab: SharedArrayBuffer; killSuidgid?: boolean }; res: number };
  /**
   * preadv straight into `into` (views of guest memory) until `size` bytes or the end of the file;
   * resolves with the bytes read. Inline only: a worker thread cannot see the main thread's views.
   */
  readInto: { req: { fd: number; offset: bigint; size: number; into: readonly Uint8Array[] }; res: number };
  /** pwrite; with killSuidgid the file first loses its set-id bits, as a write by a caller without CAP_FSETID. */
  write: { req: { fd: number; offset: bigint; data: Uint8Array; killSuidgid?: boolean }; res: number };
  /** pwritev of `data` (views of guest memory) as `write`. Inline only, as readInto. */
  writeFrom: { req: { fd: number; offset: bigint; data: readonly Uint8Array[]; killSuidgid?: boolean }; res: number };
  /** Clears S_ISUID, and S_ISGID if group-executable, as the kernel's file_remove_privs (KILLPRIV_V2). */
  killSuidgid: { req: { fd: number }; res: undefined };
  fsync: { req: { fd: number; datasync: boolean }; res: undefined };
  fallocate: { req: { fd: number; mode: number; offset: bigint; length: bigint }; res: undefined };
  lseek: { req: { fd: number; offset: bigint; whence: number }; res: bigint };
  copyFileRange: { req: { fdIn: number; offIn: bigint; fdOut: number; offOut: bigint; len: number; flags: number }; res: number };
  syncfs: { req: { fd: number }; res: undefined };
  statfs: { req: { fd: number }; res: StatfsRecord };
  /** faccessat on the inode behind an O_PATH fd. */
  access: { req: { fd: number; mask: number }; res: undefined };
  getxattr: { req: { fd: number; name: Uint8Array }; res: Uint8Array };
  listxattr: { req: { fd: number }; res: Uint8Array };
  setxattr: { req: { fd: number; name: Uint8Array; value: Uint8Array; flags: number }; res: undefined };
  removexattr: { req: { fd: number; name: Uint8Array }; res: undefined };
}

/**
 * The mode of a new inode and the caller's umask. The umask is applied unless `aclAware` is set and the
 * directory has a default POSIX ACL: then, as POSIX.1e says, the host applies the ACL instead.
 */
export interface NewMode {
  mode: number;
  umask: number;
  aclAware?: boolean;
}

export interface ReaddirEntry {
  ino: bigint;
  /** Cookie of the next entry. */
  off: bigint;
  /** DT_* */
  type: number;
  name: Uint8Array;
  /** readdir with plus, entries other than '.' and '..': the looked-up inode (no fd when `known` said so). */
  fd?: number;
  stat?: StatRecord;
}

export interface Created {
  /** The open file (the handle). */
  fd: number;
  /** An O_PATH fd of the same inode (the inode table's). */
  pathFd: number;
  stat: StatRecord;
}

export interface SetattrOp {
  /** O_PATH fd of the inode. */
  pathFd: number;
  /** An open file of it (SETATTR with FATTR_FH), or -1. */
  fd: number;
  /** FATTR_* bits. */
  valid: number;
  mode: number;
  uid: number;
  gid: number;
  size: bigint;
  atime: bigint;
  atimensec: number;
  mtime: bigint;
  mtimensec: number;
}

export interface StatfsRecord {
  blocks: bigint;
  bfree: bigint;
  bavail: bigint;
  files: bigint;
  ffree: bigint;
  bsize: number;
  namelen: number;
  frsize: number;
}

export type OpKind = keyof OpTable;
/**
 * An op, with the ids it runs under when the daemon is root: `cred` for a request's caller (fsuid/fsgid
 * switched on the thread that runs it), none for the daemon's own calls (run as root). Calls on an
 * already-open fd that involve no permission check (FD_ONLY_KINDS) run under whatever ids the thread
 * has: switching for them would only cost.
 */
export type Op<K extends OpKind = OpKind> = { [P in K]: { kind: P; cred?: Cred } & OpTable[P]['req'] }[K];

/** Kinds that never switch ids: no permission check on an open fd (close, data, locks, fstat). */
export const FD_ONLY_KINDS: ReadonlySet<OpKind> = new Set<OpKind>([
  'fstat',
  'close',
  'flushFd',
  'ofdLock',
  'flock',
  'read',
  'readInto',
  'readSlab',
  'writeSlab',
  'writeFrom',
  'write',
  'fsync',
  'fallocate',
  'lseek',
  'copyFileRange',
  'statfs',
]);
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
