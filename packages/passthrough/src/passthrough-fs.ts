// A FileSystem that passes requests through to a host directory, in the manner of the Rust virtiofsd:
// inodes are O_PATH fds (lookups are openat relative to the parent's fd with O_NOFOLLOW, so host
// symlinks are never followed and nothing outside the shared directory is reachable), open files are
// handles, POSIX/flock locks are OFD locks per lock owner. Calls that touch the disk run in the
// WorkerPool; calls that may block indefinitely run in its waiter lane and give up on ctx.signal.
import * as fs from 'node:fs';
import {
  EISDIR,
  EINVAL,
  FUSE_FLOCK_LOCKS,
  FUSE_LK_FLOCK,
  FUSE_POSIX_LOCKS,
  FUSE_RELEASE_FLOCK_UNLOCK,
  FsError,
  splitInitFlags,
  type BatchForgetRequest,
  type FileSystem,
  type FlushRequest,
  type ForgetRequest,
  type FuseAttrOut,
  type FuseEntryOut,
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
} from '@vfsd/core';
import { timeout, toAttrOut, toEntryOut, type Timeout } from './attr';
import { HandleTable } from './handle-table';
import { InodeTable } from './inode-table';
import { LockTable } from './locks';
import { checkName } from './name';
import { WorkerPool, type ShutdownReport, type SubmitOptions, type WorkerPoolOptions } from './pool/worker-pool';
import {
  O_ACCMODE,
  O_CLOEXEC,
  O_CREAT,
  O_DIRECTORY,
  O_EXCL,
  O_NOCTTY,
  O_NOFOLLOW,
  O_NONBLOCK,
  O_PATH,
  S_IFDIR,
  S_IFIFO,
} from './sys/constants';
import { fstatRecord } from './sys/stat';

export interface PassthroughOptions {
  /** The host directory shared with the guest (it becomes nodeid 1). */
  sharedDir: string;
  /** Regular pool workers; 0 (default) runs cheap calls inline on the main thread. */
  threadPoolSize?: number;
  /** Further pool settings (waiter cap, timeouts, xstate inspection). */
  pool?: Omit<WorkerPoolOptions, 'threadPoolSize'>;
  /** Entry and attribute validity in seconds (virtiofsd's cache=auto is 1, cache=none 0). Default 1. */
  timeoutSeconds?: number;
  /** Offer FUSE_POSIX_LOCKS (default true). */
  posixLocks?: boolean;
  /** Offer FUSE_FLOCK_LOCKS (default true). */
  flockLocks?: boolean;
}

// Flags of OPEN that only make sense when creating, or that would break reopening through /proc.
const OPEN_FLAGS_DROPPED = O_CREAT | O_EXCL | O_NOCTTY | O_NOFOLLOW;

function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // Nothing useful to do: the fd is gone either way (Linux never keeps it open after close fails).
  }
}

export class PassthroughFs implements FileSystem {
  readonly pool: WorkerPool;
  readonly inodes: InodeTable;
  readonly handles: HandleTable;
  readonly locks: LockTable;
  private readonly entryTimeout: Timeout;
  private readonly attrTimeout: Timeout;
  private readonly initFlags: bigint;
  private closed = false;
  /**
   * Requests inside a method that may call the pool's regular lane (waiting lock requests excluded):
   * the queue depth as the main thread sees it, which decides inline or worker (WorkerPool inlineBelow).
   */
  private active = 0;

  constructor(options: PassthroughOptions) {
    this.pool = new WorkerPool({ ...options.pool, threadPoolSize: options.threadPoolSize ?? 0 });
    const t = timeout(options.timeoutSeconds ?? 1);
    this.entryTimeout = t;
    this.attrTimeout = t;
    this.initFlags = (options.posixLocks ?? true ? FUSE_POSIX_LOCKS : 0n) | (options.flockLocks ?? true ? FUSE_FLOCK_LOCKS : 0n);
    // Synchronous at start-up: the shared directory must exist before the first request.
    const rootFd = fs.openSync(options.sharedDir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    // O_PATH fds close instantly: close them on the spot. Open files may flush (NFS): via the pool.
    this.inodes = new InodeTable(rootFd, fstatRecord(rootFd), closeQuietly);
    this.handles = new HandleTable((fd) => this.closeFile(fd));
    this.locks = new LockTable(this.pool, (fd) => this.closeFile(fd));
  }

  async init(_ctx: RequestContext, _req: InitRequest): Promise<InitReply> {
    const { flags, flags2 } = splitInitFlags(this.initFlags);
    return { flags, flags2 };
  }

  async lookup(ctx: RequestContext, req: LookupRequest): Promise<FuseEntryOut> {
    checkName(req.name);
    const parent = this.inodes.pin(req.header.nodeid);
    let found;
    this.active++;
    try {
      found = await this.pool.submit({ kind: 'lookupAt', dirFd: parent.handle.fd, name: req.name }, this.submitOptions(ctx));
    } finally {
      this.active--;
      parent.handle.unpin();
    }
    if (this.closed) {
      closeQuietly(found.fd);
      throw new FsError(EINVAL, 'shut down');
    }
    const entry = this.inodes.addLookup(found.fd, found.stat);
    return toEntryOut(entry.nodeid, found.stat, this.entryTimeout, this.attrTimeout);
  }

  forget(req: ForgetRequest): void {
    this.forgetOne(req.header.nodeid, req.arg.nlookup);
  }

  batchForget(req: BatchForgetRequest): void {
    for (const f of req.forgets) this.forgetOne(f.nodeid, f.nlookup);
  }

  async getattr(ctx: RequestContext, req: GetattrRequest): Promise<FuseAttrOut> {
    const inode = this.inodes.pin(req.header.nodeid);
    this.active++;
    try {
      const st = await this.pool.submit({ kind: 'fstat', fd: inode.handle.fd }, this.submitOptions(ctx));
      return toAttrOut(st, this.attrTimeout);
    } finally {
      this.active--;
      inode.handle.unpin();
    }
  }

  async open(ctx: RequestContext, req: OpenRequest<FuseOpcode.FUSE_OPEN>): Promise<FuseOpenOut> {
    const inode = this.inodes.pin(req.header.nodeid);
    this.active++;
    try {
      if (inode.type === S_IFDIR && (req.arg.flags & O_ACCMODE) !== 0) throw new FsError(EISDIR);
      const flags = req.arg.flags & ~OPEN_FLAGS_DROPPED;
      // Opening a FIFO without O_NONBLOCK waits for a peer, possibly forever: the waiter lane.
      const mayBlock = inode.type === S_IFIFO && (flags & O_NONBLOCK) === 0;
      if (mayBlock) this.active--; // a FIFO waiting for its peer is no load on the main thread
      const fd = await this.pool.submit({ kind: 'reopen', fd: inode.handle.fd, flags }, { ...this.submitOptions(ctx), mayBlock });
      if (mayBlock) this.active++;
      if (this.closed) {
        closeQuietly(fd);
        throw new FsError(EINVAL, 'shut down');
      }
      return { fh: this.handles.add(inode.nodeid, fd).fh, open_flags: 0 };
    } finally {
      this.active--;
      inode.handle.unpin();
    }
  }

  async release(_ctx: RequestContext, req: ReleaseRequest<FuseOpcode.FUSE_RELEASE>): Promise<void> {
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


