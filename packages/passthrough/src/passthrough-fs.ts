// A FileSystem that passes requests through to a host directory, in the manner of the Rust virtiofsd:
// inodes are O_PATH fds (lookups are openat relative to the parent's fd with O_NOFOLLOW, so host
// symlinks are never followed and nothing outside the shared directory is reachable), open files are
// handles, POSIX/flock locks are OFD locks per lock owner. Calls that touch the disk run in the
// WorkerPool; calls that may block indefinitely run in its waiter lane and give up on ctx.signal.
import * as fs from 'node:fs';
import {
  EISDIR,
  EINVAL,
  EMFILE,
  ENFILE,
  ENOSYS,
  EPERM,
  EROFS,
  FATTR_FH,
  FATTR_KILL_SUIDGID,
  FOPEN_CACHE_DIR,
  FOPEN_DIRECT_IO,
  FOPEN_KEEP_CACHE,
  FUSE_ASYNC_DIO,
  FUSE_ATOMIC_O_TRUNC,
  FUSE_ATTR_SUBMOUNT,
  FUSE_AUTO_INVAL_DATA,
  FUSE_CACHE_SYMLINKS,
  FUSE_DONT_MASK,
  FUSE_DO_READDIRPLUS,
  FUSE_EXPORT_SUPPORT,
  FUSE_FLOCK_LOCKS,
  FUSE_FSYNC_FDATASYNC,
  FUSE_CREATE_SUPP_GROUP,
  FUSE_DIRECT_IO_ALLOW_MMAP,
  FUSE_HANDLE_KILLPRIV_V2,
  createSuppGroup,
  FUSE_LK_FLOCK,
  FUSE_OPEN_KILL_SUIDGID,
  FUSE_PARALLEL_DIROPS,
  FUSE_POSIX_ACL,
  FUSE_POSIX_LOCKS,
  FUSE_READDIRPLUS_AUTO,
  FUSE_RELEASE_FLOCK_UNLOCK,
  FUSE_ROOT_ID,
  FUSE_SECURITY_CTX,
  FUSE_SUBMOUNTS,
  FUSE_WRITEBACK_CACHE,
  FUSE_WRITE_KILL_SUIDGID,
  FsError,
  bytesLength,
  bytesViews,
  gatherInto,
  joinInitFlags,
  scatterInto,
  splitInitFlags,
  type AccessRequest,
  type CopyFileRangeRequest,
  type CreateRequest,
  type DirentSink,
  type FallocateRequest,
  type FsyncRequest,
  type FuseKstatfs,
  type GetxattrRequest,
  type LinkRequest,
  type ListxattrRequest,
  type LseekRequest,
  type MkdirRequest,
  type MknodRequest,
  type ReadRequest,
  type ReadReply,
  type ReadTarget,
  type ReadlinkRequest,
  type RemovexattrRequest,
  type Rename2Request,
  type RenameRequest,
  type SetattrRequest,
  type SetxattrRequest,
  type StatfsRequest,
  type SymlinkRequest,
  type SyncfsRequest,
  type TmpfileRequest,
  type UnlinkRequest,
  type WriteRequest,
  type BatchForgetRequest,
  type FileSystem,
  type FlushRequest,
  type ForgetRequest,
  type FuseAttrOutReply,
  type FuseEntryOutReply,
  type FuseFileLock,
  type FuseOpcode,
  type FuseOpenOut,
  type GetattrRequest,
  type InitReply,
  type InitRequest,
  type LkRequest,
  type LookupRequest,
  type OpenRequest,
  type ReleaseRequest,
  type RequestContext,
} from '@vfsd/core/abi';
import { always, recover, then, type Awaitable, type MigrationState, type QueueThreadPart } from '@vfsd/core/abi';
import { addAttrFlags, timeout, toAttrOut, toEntryOut, type Timeout } from './attr';
import { FdCells } from './fd-cells';
import { HandleTable } from './handle-table';
import type { QueueFsData } from './queue-fs';
import { InodeTable, type FileHandleMode } from './inode-table';
import { fileHandlesUnusable } from './file-handles';
import { securityLabelOf, type SecurityLabel } from './security-label';
import { CACHE_TIMEOUT, type CacheMode, type PassthroughOptions } from './options';
import { IoSlabs } from './io-slabs';
import { LockTable } from './locks';
import { LookupMix } from './lookup-mix';
import { DEFAULT_MIGRATION, loadTables, saveTables, type MigrationOptions } from './migration';
import { closeQuietly } from './sys/close-quietly';
import { checkName, checkLookupName, isDotDot } from './name';
import type { InodeEntry } from './inode-table';
import type { HandleEntry } from './handle-table';
import type { Op, OpKind, OpResult, ReaddirEntry } from './pool/ops';
import { WorkerPool, type ShutdownReport, type SubmitOptions } from './pool/worker-pool';
import {
  O_ACCMODE,
  O_APPEND,
  O_CLOEXEC,
  O_CREAT,
  O_DIRECTORY,
  O_EXCL,
  O_NOCTTY,
  O_NOFOLLOW,
  O_NONBLOCK,
  O_PATH,
  O_RDONLY,
  O_RDWR,
  O_TRUNC,
  O_WRONLY,
  S_IFDIR,
  S_IFIFO,
  S_IFMT,
  S_IFLNK,
  AT_REMOVEDIR,
} from './sys/constants';
import { CREDS_ENABLED, dropSupplementaryGroups, type Cred } from './sys/creds';
import { fstatRecord, type StatRecord } from './sys/stat';
import { prlimitNofile } from './sys/libc';

/** Reads and writes at least this big go to a worker whatever the queue depth (with a pool). */
const BIG_IO = 128 * 1024;
/** The biggest READ/WRITE a Linux guest sends (max_pages 256): a pool slab's size. */
const SLAB_SIZE = 1 << 20;
/** The most copy_file_range moves in one call (as Linux's MAX_RW_COUNT). */
const MAX_RW = 0x7ffff000;
const W_OK = 2;
const RENAME_FLAGS = 1 | 2 | 4; // NOREPLACE | EXCHANGE | WHITEOUT

/** The READDIRPLUS entry of '.' and '..': nodeid 0, which the kernel skips (no lookup counted). */
function noEntry(ino: bigint, type: number): FuseEntryOutReply {
  return {
    nodeid: 0n,
    generation: 0n,
    entry_valid: 0n,
    entry_valid_nsec: 0,
    attr_valid: 0n,
    attr_valid_nsec: 0,
    attr: { ino, size: 0n, blocks: 0n, atime: 0n, mtime: 0n, ctime: 0n, atimensec: 0, mtimensec: 0, ctimensec: 0, mode: type << 12, nlink: 0, uid: 0, gid: 0, rdev: 0, blksize: 0, flags: 0 },
  };
}

// Flags of OPEN that only make sense when creating, or that would break reopening through /proc.
// O_DIRECT too, as the Rust virtiofsd without --allow-direct-io: our buffers are not block-aligned, and
// the guest's page cache is what cache=never bypasses (FOPEN_DIRECT_IO), not the host's.
const O_DIRECT = 0o40000;
const O_NOATIME = 0o1000000;
const OPEN_FLAGS_DROPPED = O_CREAT | O_EXCL | O_NOCTTY | O_NOFOLLOW;

/** Half the open-file limit for inode fds, the rest for open files, the pool and the transport. */
function defaultFdCache(): number {
  const lim = prlimitNofile(0);
  const soft = typeof lim === 'number' ? 1024n : lim.soft;
  return Number(soft > 2_000_000n ? 1_000_000n : soft / 2n);
}


export class PassthroughFs implements FileSystem {
  readonly pool: WorkerPool;
  readonly inodes: InodeTable;
  readonly handles: HandleTable;
  readonly locks: LockTable;
  /** Shared buffers for big I/O in workers (see io-slabs.ts). */
  private readonly slabs = new IoSlabs(SLAB_SIZE);
  /** Inode and handle fds as request-queue threads see them (with queueThreads). */
  private readonly cells: { inodes: FdCells; handles: FdCells } | null;
  /** How LOOKUP and READDIRPLUS entries find names lately (see lookup-mix.ts): stat first, or open first. */
  private readonly lookupMix = new LookupMix();
  private readonly direntMix = new LookupMix();
  private readonly entryTimeout: Timeout;
  private readonly attrTimeout: Timeout;
  private readonly initFlags: bigint;
  private readonly cache: CacheMode;
  private readonly xattr: boolean;
  private readonly readonly: boolean;
  private readonly migration: MigrationOptions;
  /** A mask of the open flags kept (O_DIRECT, O_NOATIME cleared unless allowed). */
  private readonly droppedOpenFlags: number;
  /** File handles as in force: the mode, and why 'prefer' fell back to fds (for the log). */
  readonly fileHandles: { mode: FileHandleMode; fallback?: string };
  /** What the last INIT negotiated (each connection starts with one). */
  private negotiated = { writeback: false, posixAcl: false, submounts: false, killprivV2: false, securityCtx: false };
  /**
   * Root: requests run with the caller's fsuid/fsgid (switched on the thread that runs each call, see
   * sys/creds.ts), so the host checks permissions and new inodes belong to the caller, as virtiofsd.
   */
  private readonly asRoot: boolean;
  private closed = false;
  /**
   * Requests inside a method that may call the pool's regular lane (waiting lock requests excluded):
   * the queue depth as the main thread sees it, which decides inline or worker (WorkerPool inlineBelow).
   */
  private active = 0;

  constructor(options: PassthroughOptions) {
    // Checked before anything is opened or started.
    if (options.posixAcl && !options.xattr) throw new Error('POSIX ACLs need xattr support (the guest reads them as system.posix_acl_* xattrs)');
    // Synchronous at start-up: the shared directory must exist before the first request.
    const rootFd = fs.openSync(options.sharedDir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    this.fileHandles = { mode: options.inodeFileHandles ?? 'never' };
    if (this.fileHandles.mode !== 'never') {
      const why = fileHandlesUnusable(rootFd);
      if (why && this.fileHandles.mode === 'mandatory') {
        closeQuietly(rootFd);
        throw new Error(`file handles are mandatory but unusable here: ${why}`);
      }
      if (why) this.fileHandles = { mode: 'never', fallback: why };
    }
    this.pool = new WorkerPool({ ...options.pool, threadPoolSize: options.threadPoolSize ?? 0 });
    this.cache = options.cache ?? 'auto';
    this.xattr = options.xattr ?? false;
    this.readonly = options.readonly ?? false;
    this.migration = { ...DEFAULT_MIGRATION, ...options.migration };
    this.droppedOpenFlags = ~((options.allowDirectIo ? 0 : O_DIRECT) | (options.preserveNoatime ? 0 : O_NOATIME));
    const t = timeout(options.timeoutSeconds ?? CACHE_TIMEOUT[this.cache]);
    this.entryTimeout = t;
    this.attrTimeout = t;
    let flags = (options.posixLocks ?? true ? FUSE_POSIX_LOCKS : 0n) | (options.flockLocks ?? true ? FUSE_FLOCK_LOCKS : 0n);
    // What the methods below really do: O_TRUNC honoured on OPEN, LOOKUP of '.' and '..', the umask
    // applied here (DONT_MASK), no shared state between directory operations.
    // ASYNC_DIO: the guest may send one direct I/O as several requests at once (they run concurrently).
    flags |= FUSE_ATOMIC_O_TRUNC | FUSE_EXPORT_SUPPORT | FUSE_DONT_MASK | FUSE_AUTO_INVAL_DATA | FUSE_PARALLEL_DIROPS | FUSE_ASYNC_DIO;
    if (this.cache !== 'never') flags |= FUSE_CACHE_SYMLINKS;
    if (this.cache !== 'never' && (options.readdirplus ?? true)) flags |= FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO;
    // As virtiofsd, a writeback cache is never offered on a read-only share (nothing to write back).
    if (options.writeback && !this.readonly) flags |= FUSE_WRITEBACK_CACHE;
    if (options.posixAcl) flags |= FUSE_POSIX_ACL;
    const announceSubmounts = options.announceSubmounts ?? false;
    if (announceSubmounts) flags |= FUSE_SUBMOUNTS;
    if (options.killprivV2 ?? true) flags |= FUSE_HANDLE_KILLPRIV_V2;
    this.asRoot = CREDS_ENABLED;
    // Creating as the caller: the kernel then sends the parent's group when the caller holds it only as
    // a supplementary group, which the host cannot otherwise see.
    if (this.asRoot) flags |= FUSE_CREATE_SUPP_GROUP;
    if (options.allowMmap) flags |= FUSE_DIRECT_IO_ALLOW_MMAP;
    if (options.securityLabel) flags |= FUSE_SECURITY_CTX;
    this.initFlags = flags;
    // As virtiofsd: no supplementary groups (the daemon's, root's, would otherwise apply to every caller).
    dropSupplementaryGroups();
    // Modes come from the guest with its umask applied here (DONT_MASK): the process's own must not
    // mask them again (virtiofsd does the same). Worker threads cannot change it: then it stays.
    try {
      process.umask(0);
    } catch {
      // not the main thread
    }
    // O_PATH fds close instantly: close them on the spot. Open files may flush (NFS): via the pool.
    this.cells = options.queueThreads ? { inodes: new FdCells(), handles: new FdCells() } : null;
    this.inodes = new InodeTable(rootFd, fstatRecord(rootFd), closeQuietly, {
      mountIds: announceSubmounts,
      fileHandles: this.fileHandles.mode,
      fdCache: options.inodeFdCache ?? defaultFdCache(),
      cells: this.cells?.inodes,
    });
    this.handles = new HandleTable((fd) => this.closeFile(fd), this.cells?.handles);
    this.locks = new LockTable(this.pool, (fd) => this.closeFile(fd));
  }

  /** What a request-queue thread runs of this filesystem (queue-fs.ts), with the shared tables. */
  queueThreadPart(): QueueThreadPart | undefined {
    if (!this.cells) return undefined;
    const data: QueueFsData = { inodes: this.cells.inodes.buffer, handles: this.cells.handles.buffer, attrTimeout: this.attrTimeout, writable: !this.readonly };
    return { module: require.resolve('./queue-fs'), data };
  }

  /** Live migration (source, queues stopped): the inodes and handles the guest holds, by path. */
  saveState(): MigrationState {
    return saveTables(this.inodes, this.handles, this.migration);
  }

  /** Live migration (destination, before any request): the same inodes and handles, opened again here. */
  loadState(state: MigrationState): string[] {
    // Each lost one is an error the guest will meet on that inode or handle (guest-error): say which.
    return loadTables(this.inodes, this.handles, state, this.migration).lost.map((l) => `migration: ${l}; the guest gets EIO there`);
  }

  async init(_ctx: RequestContext, req: InitRequest): Promise<InitReply> {
    // The server answers with what both sides have; remember which of the flags that change our
    // behaviour that is.
    const both = joinInitFlags(req.arg) & this.initFlags;
    this.negotiated = {
      writeback: (both & FUSE_WRITEBACK_CACHE) !== 0n,
      posixAcl: (both & FUSE_POSIX_ACL) !== 0n,
      submounts: (both & FUSE_SUBMOUNTS) !== 0n,
      killprivV2: (both & FUSE_HANDLE_KILLPRIV_V2) !== 0n,
      securityCtx: (both & FUSE_SECURITY_CTX) !== 0n,
    };
    const { flags, flags2 } = splitInitFlags(both);
    return { flags, flags2 };
  }

  lookup(ctx: RequestContext, req: LookupRequest): Awaitable<FuseEntryOutReply> {
    checkLookupName(req.name);
    const parent = this.inodes.pin(req.header.nodeid);
    // '..' of the root is the root itself: never the host directory above it.
    const name = isDotDot(req.name) && parent.nodeid === FUSE_ROOT_ID ? Buffer.from('.') : req.name;
    // As the daemon (as virtiofsd's lookup): the guest kernel, which mounts virtiofs with
    // default_permissions, checked search permission on the parent before sending LOOKUP.
    return always(
      () =>
        // Inline, while lookups mostly find known names, a name's stat finds the inode the table holds:
        // one statx instead of openat, statx and close (lookup-mix.ts).
        this.runsInline(false) && this.lookupMix.statFirst
          ? then(this.counted(ctx, { kind: 'statAt', dirFd: parent.handle.fd, name }), (st) => {
              const known = this.closed ? undefined : this.inodes.addKnownLookup(st);
              this.lookupMix.record(known !== undefined);
              return known ? this.entryOut(parent, known, st) : this.lookupNew(ctx, parent, name, false);
            })
          : this.lookupNew(ctx, parent, name, true),
      () => parent.handle.unpin(),
    );
  }

  /** LOOKUP through a new O_PATH fd (kept for a new inode, closed for a known one); `record`: tell the mix what it found. */
  private lookupNew(ctx: RequestContext, parent: InodeEntry, name: Buffer, record: boolean): Awaitable<FuseEntryOutReply> {
    return recover(
      () =>
        then(this.counted(ctx, { kind: 'lookupAt', dirFd: parent.handle.fd, name }), (found) => {
          if (this.closed) {
            closeQuietly(found.fd);
            throw new FsError(EINVAL, 'shut down');
          }
          const inode = this.inodes.addLookup(found.fd, found.stat);
          // A second lookup count means the table held it (a new entry starts at one).
          if (record) this.lookupMix.record(inode.lookups > 1n);
          return this.entryOut(parent, inode, found.stat);
        }),
      (err) => this.lookupAtLimit(ctx, parent, name, err),
    );
  }

  /**
   * Out of fds (the process's RLIMIT_NOFILE or the system's table): an inode the table already holds is
   * still found by its stat, with no new fd; a new one fails with EMFILE/ENFILE, as virtiofsd's lookup
   * does. Nothing is leaked and the daemon goes on serving: FORGETs free fds.
   */
  private async lookupAtLimit(ctx: RequestContext, parent: InodeEntry, name: Buffer, err: unknown): Promise<FuseEntryOutReply> {
    if (!(err instanceof FsError) || (err.errno !== EMFILE && err.errno !== ENFILE)) throw err;
    const st = await this.pool.submit({ kind: 'statAt', dirFd: parent.handle.fd, name }, this.submitOptions(ctx)).catch(() => undefined);
    const known = st && !this.closed ? this.inodes.addKnownLookup(st) : undefined;
    if (!known) throw err;
    return toEntryOut(known.nodeid, st!, this.entryTimeout, this.attrTimeout);
  }

  forget(req: ForgetRequest): void {
    this.forgetOne(req.header.nodeid, req.arg.nlookup);
  }

  batchForget(req: BatchForgetRequest): void {
    for (const f of req.forgets) this.forgetOne(f.nodeid, f.nlookup);
  }

  getattr(ctx: RequestContext, req: GetattrRequest): Awaitable<FuseAttrOutReply> {
    return this.withInode(req.header.nodeid, (inode) =>
      then(this.counted(ctx, { kind: 'fstat', fd: inode.handle.fd }), (st) => toAttrOut(st, this.attrTimeout)),
    );
  }

  async open(ctx: RequestContext, req: OpenRequest<FuseOpcode.FUSE_OPEN>): Promise<FuseOpenOut> {
    const inode = this.inodes.pin(req.header.nodeid);
    this.active++;
    try {
      if (inode.type === S_IFDIR && (req.arg.flags & O_ACCMODE) !== 0) throw new FsError(EISDIR);
      if (this.readonly && ((req.arg.flags & O_ACCMODE) !== 0 || (req.arg.flags & O_TRUNC) !== 0)) throw new FsError(EROFS);
      const flags = this.openFlags(req.arg.flags & ~OPEN_FLAGS_DROPPED);
      // Opening a FIFO without O_NONBLOCK waits for a peer, possibly forever: the waiter lane.
      const mayBlock = inode.type === S_IFIFO && (flags & O_NONBLOCK) === 0;
      if (mayBlock) this.active--; // a FIFO waiting for its peer is no load on the main thread
      const fd = await this.pool.submit({ kind: 'reopen', fd: inode.handle.fd, flags, cred: this.credOf(ctx) }, { ...this.submitOptions(ctx), mayBlock });
      if (mayBlock) this.active++;
      if (this.closed) {
        closeQuietly(fd);
        throw new FsError(EINVAL, 'shut down');
      }
      if ((flags & O_TRUNC) !== 0 && this.killsSuidgid(req.arg.open_flags, FUSE_OPEN_KILL_SUIDGID)) {
        try {
          await this.pool.submit({ kind: 'killSuidgid', fd }, this.submitOptions(ctx));
        } catch (err) {
          closeQuietly(fd);
          throw err;
        }
      }
      return { fh: this.handles.add(inode.nodeid, fd).fh, open_flags: this.fileOpenFlags() };
    } finally {
      this.active--;
      inode.handle.unpin();
    }
  }

  release(_ctx: RequestContext, req: ReleaseRequest<FuseOpcode.FUSE_RELEASE>): void {
    const nodeid = req.header.nodeid;
    this.handles.remove(req.arg.fh, nodeid);
    if ((req.arg.release_flags & FUSE_RELEASE_FLOCK_UNLOCK) !== 0) this.locks.dropOwner(nodeid, 'flock', req.arg.lock_owner);
  }

  async flush(ctx: RequestContext, req: FlushRequest): Promise<void> {
    const nodeid = req.header.nodeid;
    const handle = this.handles.pin(req.arg.fh, nodeid);
    this.active++;
    try {
      await this.pool.submit({ kind: 'flushFd', fd: handle.file.fd }, this.submitOptions(ctx));
    } finally {
      this.active--;
      handle.file.unpin();
    }
    // close() of any fd of a file drops the process's POSIX locks on it: the kernel sends FLUSH with
    // the owner, as the C virtiofsd handles it.
    this.locks.dropOwner(nodeid, 'posix', req.arg.lock_owner);
  }

  async getlk(ctx: RequestContext, req: LkRequest<FuseOpcode.FUSE_GETLK>): Promise<FuseFileLock> {
    if ((req.arg.lk_flags & FUSE_LK_FLOCK) !== 0) throw new FsError(EINVAL, 'GETLK on flock');
    const inode = this.inodes.pin(req.header.nodeid);
    this.active++;
    try {
      return await this.locks.getlk(inode, req.arg.owner, req.arg.lk, this.submitOptions(ctx));
    } finally {
      this.active--;
      inode.handle.unpin();
    }
  }

  async setlk(ctx: RequestContext, req: LkRequest<FuseOpcode.FUSE_SETLK | FuseOpcode.FUSE_SETLKW>, wait: boolean): Promise<void> {
    const kind = (req.arg.lk_flags & FUSE_LK_FLOCK) !== 0 ? 'flock' : 'posix';
    const inode = this.inodes.pin(req.header.nodeid);
    // A waiting lock sits in the waiter lane: no load on the main thread.
    const counted = !wait;
    if (counted) this.active++;
    try {
      await this.locks.setlk(inode, req.arg.owner, req.arg.lk, wait, kind, this.submitOptions(ctx));
    } finally {
      if (counted) this.active--;
      inode.handle.unpin();
    }
  }

  // ---- directories ----

  opendir(ctx: RequestContext, req: OpenRequest<FuseOpcode.FUSE_OPENDIR>): Awaitable<FuseOpenOut> {
    return this.withInode(req.header.nodeid, (inode) =>
      then(this.run(ctx, { kind: 'reopen', fd: inode.handle.fd, flags: O_RDONLY | O_DIRECTORY }), (fd) => {
        if (this.closed) {
          closeQuietly(fd);
          throw new FsError(EINVAL, 'shut down');
        }
        const open_flags = this.cache === 'always' ? FOPEN_CACHE_DIR | FOPEN_KEEP_CACHE : 0;
        return { fh: this.handles.add(inode.nodeid, fd).fh, open_flags };
      }),
    );
  }

  /**
   * Entries from the host directory's cookie req.arg.offset on, into `sink` while they fit: with
   * READDIRPLUS only those are looked up, so each one the kernel receives counts as exactly one lookup.
   * '.' and '..' come with nodeid 0 (the kernel skips them). Inline, entries go to the sink as getdents
   * reads them; in a worker they come back as a list sized to the sink's room.
   */
  readdir(ctx: RequestContext, req: ReadRequest<FuseOpcode.FUSE_READDIR | FuseOpcode.FUSE_READDIRPLUS>, sink: DirentSink): Awaitable<void> {
    return this.withHandle(req.arg.fh, req.header.nodeid, (h) => {
      const plus = sink.plus;
      const op: Op<'readdir'> = { kind: 'readdir', fd: h.file.fd, offset: req.arg.offset, size: Math.min(req.arg.size, sink.left), plus };
      const dir = plus ? this.inodes.get(h.nodeid) : undefined;
      const mix = this.direntMix;
      // The inode `known` found for the entry being read (emitted right after, on the same stack).
      let found: InodeEntry | undefined;
      const emit = (e: ReaddirEntry): boolean => {
        if (!plus) return sink.add(e.ino, e.off, e.type, e.name);
        if (!e.stat) return sink.add(e.ino, e.off, e.type, e.name, noEntry(e.ino, e.type));
        if (!sink.fits(e.name.length)) {
          // Sized for the room it was given, so not expected: undo its lookup.
          if (e.fd !== undefined) closeQuietly(e.fd);
          else if (found) this.inodes.forget(found.nodeid, 1n);
          return false;
        }
        let inode: InodeEntry;
        if (e.fd !== undefined) {
          inode = this.inodes.addLookup(e.fd, e.stat);
          if (!op.known) mix.record(inode.lookups > 1n);
        } else inode = found!;
        return sink.add(e.ino, e.off, e.type, e.name, this.entryOut(dir, inode, e.stat));
      };
      if (this.runsInline(false)) {
        // Inline, an entry whose inode the table holds is found by its stat (as LOOKUP does): no fd opened.
        if (plus && mix.statFirst) {
          op.known = (st) => {
            found = this.closed ? undefined : this.inodes.addKnownLookup(st);
            mix.record(found !== undefined);
            return found !== undefined;
          };
        }
        op.fits = (n) => sink.fits(n);
        op.emit = emit;
      }
      return then(this.run(ctx, op, false, op.emit !== undefined), (listed) => {
        if (this.closed) {
          for (const e of listed) if (e.fd !== undefined) closeQuietly(e.fd);
          throw new FsError(EINVAL, 'shut down');
        }
        for (let i = 0; i < listed.length; i++) {
          if (emit(listed[i])) continue;
          for (let j = i + 1; j < listed.length; j++) if (listed[j].fd !== undefined) closeQuietly(listed[j].fd!);
          break;
        }
      });
    });
  }

  releasedir(_ctx: RequestContext, req: ReleaseRequest<FuseOpcode.FUSE_RELEASEDIR>): void {
    this.handles.remove(req.arg.fh, req.header.nodeid);
  }

  async fsyncdir(ctx: RequestContext, req: FsyncRequest<FuseOpcode.FUSE_FSYNCDIR>): Promise<void> {
    await this.fsyncHandle(ctx, req);
  }

  // ---- file data ----

  create(ctx: RequestContext, req: CreateRequest): Awaitable<{ entry: FuseEntryOutReply; open: FuseOpenOut }> {
    checkName(req.name);
    this.checkWritable();
    return this.withInode(req.header.nodeid, (parent) => {
      const flags = this.openFlags(req.arg.flags & ~(O_NOCTTY | O_CREAT));
      const killSuidgid = (flags & O_TRUNC) !== 0 && this.killsSuidgid(req.arg.open_flags, FUSE_OPEN_KILL_SUIDGID);
      const made = this.runCreating(ctx, req.ext, { kind: 'create', dirFd: parent.handle.fd, name: req.name, flags, ...this.newMode(req.arg), killSuidgid });
      return then(made, (m) => this.addCreated(m));
    });
  }

  async tmpfile(ctx: RequestContext, req: TmpfileRequest): Promise<{ entry: FuseEntryOutReply; open: FuseOpenOut }> {
    this.checkWritable();
    return this.withInode(req.header.nodeid, async (parent) => {
      const flags = this.openFlags(req.arg.flags & ~(O_NOCTTY | O_CREAT | O_EXCL));
      const made = await this.runCreating(ctx, req.ext, { kind: 'tmpfile', dirFd: parent.handle.fd, flags, ...this.newMode(req.arg) });
      return this.addCreated(made);
    });
  }

  /**
   * Inline, straight into the guest's buffers when the server gives them (no copy); in a worker (which
   * cannot reach the main thread's views of guest memory), into a shared slab copied from here.
   */
  read(ctx: RequestContext, req: ReadRequest<FuseOpcode.FUSE_READ>): Awaitable<Uint8Array>;
  read(ctx: RequestContext, req: ReadRequest<FuseOpcode.FUSE_READ>, into: ReadTarget | undefined): Awaitable<ReadReply>;
  read(ctx: RequestContext, req: ReadRequest<FuseOpcode.FUSE_READ>, into?: ReadTarget): Awaitable<ReadReply> {
    const { offset, size } = req.arg;
    const offMain = size >= BIG_IO;
    return this.withHandle(req.arg.fh, req.header.nodeid, (h) => {
      if (into && this.runsInline(offMain)) {
        return then(this.run(ctx, { kind: 'readInto', fd: h.file.fd, offset, size, into: into.buffers }, false, true), (placed) => ({ placed }));
      }
      const slab = offMain && size <= SLAB_SIZE ? this.slabs.take() : undefined;
      if (slab) {
        return then(this.withSlab(() => this.run(ctx, { kind: 'readSlab', fd: h.file.fd, offset, size, slab }, true)), (n) => {
          const data = new Uint8Array(slab, 0, n);
          const out = into ? { placed: scatterInto(into.buffers, data) } : Buffer.from(data);
          this.slabs.give(slab);
          return out;
        });
      }
      // One copy, into the guest's buffers, rather than through a reply buffer.
      return then(this.run(ctx, { kind: 'read', fd: h.file.fd, offset, size }, offMain), (data) => (into ? { placed: scatterInto(into.buffers, data) } : data));
    });
  }

  /**
   * Inline, straight from the guest's segments (pwritev, no copy); in a worker, from a shared slab the
   * data is copied into here (big writes), or from one buffer joined here.
   */
  write(ctx: RequestContext, req: WriteRequest): Awaitable<number> {
    this.checkWritable();
    const { offset } = req.arg;
    const size = bytesLength(req.data);
    const offMain = size >= BIG_IO;
    const killSuidgid = this.killsSuidgid(req.arg.write_flags, FUSE_WRITE_KILL_SUIDGID);
    return this.withHandle(req.arg.fh, req.header.nodeid, (h) => {
      if (this.runsInline(offMain)) {
        return this.run(ctx, { kind: 'writeFrom', fd: h.file.fd, offset, data: bytesViews(req.data), killSuidgid }, false, true);
      }
      const slab = offMain && size <= SLAB_SIZE ? this.slabs.take() : undefined;
      if (slab) {
        gatherInto(new Uint8Array(slab), bytesViews(req.data));
        return then(this.withSlab(() => this.run(ctx, { kind: 'writeSlab', fd: h.file.fd, offset, size, slab, killSuidgid }, true)), (n) => {
          this.slabs.give(slab);
          return n;
        });
      }
      // A copy the op owns: a view of guest memory posted to a worker would carry the whole of guest RAM.
      const data = new Uint8Array(size);
      gatherInto(data, bytesViews(req.data));
      return this.run(ctx, { kind: 'write', fd: h.file.fd, offset, data, killSuidgid }, offMain);
    });
  }

  async fsync(ctx: RequestContext, req: FsyncRequest<FuseOpcode.FUSE_FSYNC>): Promise<void> {
    await this.fsyncHandle(ctx, req);
  }

  async fallocate(ctx: RequestContext, req: FallocateRequest): Promise<void> {
    this.checkWritable();
    await this.withHandle(req.arg.fh, req.header.nodeid, (h) =>
      this.run(ctx, { kind: 'fallocate', fd: h.file.fd, mode: req.arg.mode, offset: req.arg.offset, length: req.arg.length }, true),
    );
  }

  async lseek(ctx: RequestContext, req: LseekRequest): Promise<bigint> {
    return this.withHandle(req.arg.fh, req.header.nodeid, (h) =>
      this.run(ctx, { kind: 'lseek', fd: h.file.fd, offset: req.arg.offset, whence: req.arg.whence }),
    );
  }

  async copyFileRange(ctx: RequestContext, req: CopyFileRangeRequest): Promise<number> {
    this.checkWritable();
    const a = req.arg;
    if (a.flags !== 0n) throw new FsError(EINVAL, 'copy_file_range flags');
    return this.withHandle(a.fh_in, req.header.nodeid, (hin) =>
      this.withHandle(a.fh_out, a.nodeid_out, (hout) =>
        this.run(
          ctx,
          { kind: 'copyFileRange', fdIn: hin.file.fd, offIn: a.off_in, fdOut: hout.file.fd, offOut: a.off_out, len: Number(a.len > BigInt(MAX_RW) ? BigInt(MAX_RW) : a.len), flags: 0 },
          true,
        ),
      ),
    );
  }

  async syncfs(ctx: RequestContext, req: SyncfsRequest): Promise<void> {
    await this.withInode(req.header.nodeid, (inode) => this.run(ctx, { kind: 'syncfs', fd: inode.handle.fd }, true));
  }

  // ---- namespace ----

  async mkdir(ctx: RequestContext, req: MkdirRequest): Promise<FuseEntryOutReply> {
    checkName(req.name);
    this.checkWritable();
    const mode = this.newMode(req.arg);
    return this.makeEntry(ctx, req, (dirFd) => ({ kind: 'mkdirAt', dirFd, name: req.name, ...mode }));
  }

  async mknod(ctx: RequestContext, req: MknodRequest): Promise<FuseEntryOutReply> {
    checkName(req.name);
    this.checkWritable();
    const mode = { ...this.newMode(req.arg), mode: req.arg.mode & (S_IFMT | 0o7777) };
    return this.makeEntry(ctx, req, (dirFd) => ({ kind: 'mknodAt', dirFd, name: req.name, ...mode, rdev: req.arg.rdev }));
  }

  async symlink(ctx: RequestContext, req: SymlinkRequest): Promise<FuseEntryOutReply> {
    checkName(req.name);
    this.checkWritable();
    return this.makeEntry(ctx, req, (dirFd) => ({ kind: 'symlinkAt', dirFd, name: req.name, target: req.linkname }));
  }

  async link(ctx: RequestContext, req: LinkRequest): Promise<FuseEntryOutReply> {
    checkName(req.newname);
    this.checkWritable();
    return this.withInode(req.arg.oldnodeid, async (inode) => {
      if (inode.type === S_IFDIR) throw new FsError(EPERM, 'link of a directory');
      const found = await this.withInode(req.header.nodeid, (dir) =>
        this.runCreating(ctx, req.ext, { kind: 'linkAt', fd: inode.handle.fd, newDir: dir.handle.fd, newName: req.newname }),
      );
      return this.addEntry(found);
    });
  }

  async readlink(ctx: RequestContext, req: ReadlinkRequest): Promise<Buffer> {
    const target = await this.withInode(req.header.nodeid, (inode) => {
      // readlink(2) of anything but a symlink is EINVAL (readlinkat with "" would say ENOENT).
      if (inode.type !== S_IFLNK) throw new FsError(EINVAL, 'not a symlink');
      return this.run(ctx, { kind: 'readlink', fd: inode.handle.fd });
    });
    return Buffer.from(target.buffer, target.byteOffset, target.byteLength);
  }

  unlink(ctx: RequestContext, req: UnlinkRequest<FuseOpcode.FUSE_UNLINK>): Awaitable<void> {
    checkName(req.name);
    this.checkWritable();
    return this.withInode(req.header.nodeid, (dir) => then(this.run(ctx, { kind: 'unlinkAt', dirFd: dir.handle.fd, name: req.name, flags: 0 }), noValue));
  }

  async rmdir(ctx: RequestContext, req: UnlinkRequest<FuseOpcode.FUSE_RMDIR>): Promise<void> {
    checkName(req.name);
    this.checkWritable();
    await this.withInode(req.header.nodeid, (dir) => this.run(ctx, { kind: 'unlinkAt', dirFd: dir.handle.fd, name: req.name, flags: AT_REMOVEDIR }));
  }

  async rename(ctx: RequestContext, req: RenameRequest | Rename2Request): Promise<void> {
    checkName(req.oldname);
    checkName(req.newname);
    this.checkWritable();
    const flags = 'flags' in req.arg ? req.arg.flags : 0;
    if ((flags & ~RENAME_FLAGS) !== 0) throw new FsError(EINVAL, 'rename flags');
    await this.withInode(req.header.nodeid, (from) =>
      this.withInode(req.arg.newdir, (to) =>
        this.run(ctx, { kind: 'renameAt', oldDir: from.handle.fd, oldName: req.oldname, newDir: to.handle.fd, newName: req.newname, flags }),
      ),
    );
  }

  async setattr(ctx: RequestContext, req: SetattrRequest): Promise<FuseAttrOutReply> {
    this.checkWritable();
    const a = req.arg;
    const st = await this.withInode(req.header.nodeid, (inode) => {
      const op = (fd: number) =>
        this.run(ctx, {
          kind: 'setattr',
          pathFd: inode.handle.fd,
          fd,
          // FATTR_KILL_SUIDGID is the daemon's to honour only under HANDLE_KILLPRIV_V2.
          valid: this.negotiated.killprivV2 ? a.valid : a.valid & ~FATTR_KILL_SUIDGID,
          mode: a.mode,
          uid: a.uid,
          gid: a.gid,
          size: a.size,
          atime: a.atime,
          atimensec: a.atimensec,
          mtime: a.mtime,
          mtimensec: a.mtimensec,
        });
      return (a.valid & FATTR_FH) !== 0 ? this.withHandle(a.fh, inode.nodeid, (h) => op(h.file.fd)) : op(-1);
    });
    return toAttrOut(st, this.attrTimeout);
  }

  async statfs(ctx: RequestContext, req: StatfsRequest): Promise<FuseKstatfs> {
    const st = await this.withInode(req.header.nodeid, (inode) => this.run(ctx, { kind: 'statfs', fd: inode.handle.fd }));
    return { ...st } as FuseKstatfs;
  }

  async access(ctx: RequestContext, req: AccessRequest): Promise<void> {
    if (this.readonly && (req.arg.mask & W_OK) !== 0) throw new FsError(EROFS);
    await this.withInode(req.header.nodeid, (inode) => this.run(ctx, { kind: 'access', fd: inode.handle.fd, mask: req.arg.mask }));
  }

  // ---- extended attributes (only with the xattr option; else ENOSYS, and the guest stops asking) ----

  async setxattr(ctx: RequestContext, req: SetxattrRequest): Promise<void> {
    this.checkXattr();
    this.checkWritable();
    await this.withInode(req.header.nodeid, (inode) =>
      this.run(ctx, { kind: 'setxattr', fd: inode.handle.fd, name: req.name, value: req.value, flags: req.arg.flags }),
    );
  }

  async getxattr(ctx: RequestContext, req: GetxattrRequest): Promise<Buffer> {
    this.checkXattr();
    const v = await this.withInode(req.header.nodeid, (inode) => this.run(ctx, { kind: 'getxattr', fd: inode.handle.fd, name: req.name }));
    return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  }

  async listxattr(ctx: RequestContext, req: ListxattrRequest): Promise<Buffer> {
    this.checkXattr();
    const v = await this.withInode(req.header.nodeid, (inode) => this.run(ctx, { kind: 'listxattr', fd: inode.handle.fd }));
    return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  }

  async removexattr(ctx: RequestContext, req: RemovexattrRequest): Promise<void> {
    this.checkXattr();
    this.checkWritable();
    await this.withInode(req.header.nodeid, (inode) => this.run(ctx, { kind: 'removexattr', fd: inode.handle.fd, name: req.name }));
  }

  // ---- helpers ----

  private checkWritable(): void {
    if (this.readonly) throw new FsError(EROFS);
  }

  private checkXattr(): void {
    if (!this.xattr) throw new FsError(ENOSYS);
  }

  /**
   * open(2) flags as the host file is opened with: with a writeback cache the guest reads write-only
   * files too (to fill partial pages) and applies O_APPEND itself at the offsets it sends.
   */
  private openFlags(flags: number): number {
    // As the Rust virtiofsd: O_DIRECT only with allowDirectIo; O_NOATIME only with preserveNoatime (it
    // fails with EPERM for anyone but the file's owner, which the caller's own open would not).
    flags &= this.droppedOpenFlags;
    if (!this.negotiated.writeback) return flags;
    if ((flags & O_ACCMODE) === O_WRONLY) flags = (flags & ~O_ACCMODE) | O_RDWR;
    return flags & ~O_APPEND;
  }

  /** Whether a request's flag asks the daemon to clear set-id bits (it does only with KILLPRIV_V2). */
  private killsSuidgid(flags: number, bit: number): boolean {
    return this.negotiated.killprivV2 && (flags & bit) !== 0;
  }

  /** A new inode's mode and umask; with POSIX ACLs the umask gives way to a directory's default ACL. */
  private newMode(arg: { mode: number; umask: number }): { mode: number; umask: number; aclAware: boolean } {
    return { mode: arg.mode & 0o7777, umask: arg.umask, aclAware: this.negotiated.posixAcl };
  }

  /**
   * The entry of a looked-up inode; with submounts announced, a directory on another mount than its
   * parent's (another filesystem, or a bind mount) carries FUSE_ATTR_SUBMOUNT, so the guest mounts it
   * separately (its own st_dev, as on the host).
   */
  private entryOut(parent: InodeEntry | undefined, inode: InodeEntry, st: StatRecord): FuseEntryOutReply {
    if (this.negotiated.submounts && parent && inode.type === S_IFDIR && inode !== parent && this.inodes.onOtherMount(parent, inode)) {
      addAttrFlags(st, FUSE_ATTR_SUBMOUNT);
    }
    return toEntryOut(inode.nodeid, st, this.entryTimeout, this.attrTimeout);
  }

  private fileOpenFlags(): number {
    return this.cache === 'never' ? FOPEN_DIRECT_IO : this.cache === 'always' ? FOPEN_KEEP_CACHE : 0;
  }

  /** Whether a call that run() is about to submit would run inline (the depth run() will give it). */
  private runsInline(offMain: boolean): boolean {
    return this.pool.runsInlineAt(offMain ? Number.MAX_SAFE_INTEGER : this.active + 1);
  }

  /** Runs fn; if it fails, the slab is dropped rather than reused (its worker may still be using it). */
  private withSlab<T>(fn: () => Awaitable<T>): Awaitable<T> {
    return recover(fn, (err) => {
      this.slabs.drop();
      throw err;
    });
  }

  /**
   * Runs one op for a request, counted in the depth that decides inline or worker; `offMain` sends it
   * to a worker whatever the depth (calls that may wait for the disk: fsync, big reads...).
   */
  private run<K extends OpKind>(ctx: RequestContext, op: Op<K>, offMain = false, inline = false): Awaitable<OpResult<K>> {
    // The caller's ids, except for SYNCFS (the kernel sends it on behalf of whoever syncs: the daemon's
    // own open of the inode must not fail on the caller's permissions) and READDIR(PLUS) (the directory
    // was opened, and its read permission checked, under the caller's ids at OPENDIR; the entries'
    // lookups are the daemon's, as LOOKUP's, and a caller without search permission still gets names).
    if (op.kind !== 'syncfs' && op.kind !== 'readdir') op.cred = this.credOf(ctx);
    return this.counted(ctx, op, offMain, inline);
  }

  /**
   * A call that makes a new name: as the caller, with the supplementary group its request carries
   * (FUSE_EXT_GROUPS: the parent directory's group, which the guest saw the caller hold).
   */
  private runCreating<K extends 'create' | 'tmpfile' | 'linkAt' | 'mkdirAt' | 'mknodAt' | 'symlinkAt'>(ctx: RequestContext, ext: Buffer | undefined, op: Op<K>): Awaitable<OpResult<K>> {
    if (this.asRoot) {
      let group: number | undefined;
      try {
        group = createSuppGroup(ext);
      } catch (e) {
        throw new FsError(EINVAL, (e as Error).message);
      }
      op.cred = group === undefined ? { uid: ctx.uid, gid: ctx.gid } : { uid: ctx.uid, gid: ctx.gid, group };
    }
    // Checked before anything is made: a context this daemon would not set fails the request.
    const label = this.negotiated.securityCtx && op.kind !== 'linkAt' ? securityLabelOf(ext) : undefined;
    if (!label) return this.counted(ctx, op);
    const named = 'name' in op && 'dirFd' in op ? { dirFd: op.dirFd, name: op.name, dir: op.kind === 'mkdirAt' } : undefined;
    return then(this.counted(ctx, op), (made) => this.labelled(ctx, named, made as { fd: number; pathFd?: number }, label) as Awaitable<OpResult<K>>);
  }

  /**
   * --security-label: the new inode gets the guest's label (as the daemon: security.* xattrs need
   * CAP_SYS_ADMIN). If the host refuses it, the new name is removed again and the request fails: a
   * file without the label the guest's policy gave it is worse than none.
   */
  private async labelled<T extends { fd: number; pathFd?: number }>(ctx: RequestContext, named: { dirFd: number; name: Uint8Array; dir: boolean } | undefined, made: T, label: SecurityLabel): Promise<T> {
    try {
      await this.counted(ctx, { kind: 'setxattr', fd: made.pathFd ?? made.fd, name: label.name, value: label.value, flags: 0 });
      return made;
    } catch (err) {
      closeQuietly(made.fd);
      if (made.pathFd !== undefined) closeQuietly(made.pathFd);
      if (named) await Promise.resolve(this.counted(ctx, { kind: 'unlinkAt', dirFd: named.dirFd, name: named.name, flags: named.dir ? AT_REMOVEDIR : 0 })).catch(() => undefined);
      throw err;
    }
  }

  /** Runs one op as the daemon, counted in the depth that decides inline or worker. */
  private counted<K extends OpKind>(ctx: RequestContext, op: Op<K>, offMain = false, inline = false): Awaitable<OpResult<K>> {
    const options = this.submitOptions(ctx);
    if (offMain) options.depth = Number.MAX_SAFE_INTEGER;
    options.inline = inline;
    this.active++;
    return always(() => this.pool.call(op, options), this.uncount);
  }

  private readonly uncount = (): void => {
    this.active--;
  };

  private withInode<T>(nodeid: bigint, fn: (inode: InodeEntry) => Awaitable<T>): Awaitable<T> {
    const inode = this.inodes.pin(nodeid);
    return always(() => fn(inode), () => inode.handle.unpin());
  }

  private withHandle<T>(fh: bigint, nodeid: bigint, fn: (h: HandleEntry) => Awaitable<T>): Awaitable<T> {
    const h = this.handles.pin(fh, nodeid);
    return always(() => fn(h), () => h.file.unpin());
  }

  private async fsyncHandle(ctx: RequestContext, req: FsyncRequest): Promise<void> {
    const datasync = (req.arg.fsync_flags & FUSE_FSYNC_FDATASYNC) !== 0;
    await this.withHandle(req.arg.fh, req.header.nodeid, (h) => this.run(ctx, { kind: 'fsync', fd: h.file.fd, datasync }, true));
  }

  /** A lookup result becomes a counted inode and its entry. */
  private addEntry(found: { fd: number; stat: StatRecord }): FuseEntryOutReply {
    if (this.closed) {
      closeQuietly(found.fd);
      throw new FsError(EINVAL, 'shut down');
    }
    const entry = this.inodes.addLookup(found.fd, found.stat);
    return toEntryOut(entry.nodeid, found.stat, this.entryTimeout, this.attrTimeout);
  }

  /** mkdir/mknod/symlink: created under the caller's fsuid/fsgid, then counted as a lookup. */
  private async makeEntry(
    ctx: RequestContext,
    req: { header: { nodeid: bigint }; ext: Buffer | undefined },
    op: (dirFd: number) => Op<'mkdirAt' | 'mknodAt' | 'symlinkAt'>,
  ): Promise<FuseEntryOutReply> {
    const found = await this.withInode(req.header.nodeid, (dir) => this.runCreating(ctx, req.ext, op(dir.handle.fd)));
    return this.addEntry(found);
  }

  private addCreated(made: { fd: number; pathFd: number; stat: StatRecord }): { entry: FuseEntryOutReply; open: FuseOpenOut } {
    if (this.closed) {
      closeQuietly(made.fd);
      closeQuietly(made.pathFd);
      throw new FsError(EINVAL, 'shut down');
    }
    const inode = this.inodes.addLookup(made.pathFd, made.stat);
    const entry = toEntryOut(inode.nodeid, made.stat, this.entryTimeout, this.attrTimeout);
    return { entry, open: { fh: this.handles.add(inode.nodeid, made.fd).fh, open_flags: this.fileOpenFlags() } };
  }

  /** The ids a request's calls run with: the FUSE header's uid/gid, when the daemon is root. */
  private credOf(ctx: RequestContext): Cred | undefined {
    return this.asRoot ? { uid: ctx.uid, gid: ctx.gid } : undefined;
  }

  /** Cancels blocked calls, stops the pool's threads, closes every fd. Never hangs. */
  async shutdown(): Promise<void> {
    await this.shutdownWithReport();
  }

  async shutdownWithReport(): Promise<ShutdownReport> {
    this.closed = true;
    const report = await this.pool.shutdown();
    this.locks.clear();
    this.handles.clear();
    this.inodes.clear();
    return report;
  }

  private submitOptions(ctx: RequestContext): SubmitOptions {
    return { unique: ctx.unique, context: ctx, depth: this.active };
  }

  private forgetOne(nodeid: bigint, nlookup: bigint): void {
    const dropped = this.inodes.forget(nodeid, nlookup);
    if (dropped) this.locks.dropInode(nodeid);
  }

  private closeFile(fd: number): void {
    if (this.closed) {
      closeQuietly(fd);
      return;
    }
    // The pool runs every close it accepted, even at shutdown: a failure here means the fd is gone.
    this.pool.submit({ kind: 'close', fd }).catch(() => undefined);
  }
}

/** Drops an op's result (an answer of nothing). */
function noValue(): void {}
