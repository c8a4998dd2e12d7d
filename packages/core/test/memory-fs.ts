// An in-memory FileSystem for the actor tests: a root directory with files, and POSIX-style
// byte-range locks whose waits (SETLKW) really wait, and give up with EINTR when aborted.
import {
  EAGAIN,
  EINTR,
  ENOENT,
  FileSystem,
  FsError,
  FuseAttr,
  FuseAttrOut,
  FuseEntryOut,
  FuseFileLock,
  FuseOpcode,
  FUSE_POSIX_LOCKS,
  GetattrRequest,
  InitReply,
  LkRequest,
  LookupRequest,
  OpenRequest,
  RequestContext,
  ReleaseRequest,
  splitInitFlags,
} from '../src';

const F_RDLCK = 0;
const F_WRLCK = 1;
const F_UNLCK = 2;

interface Held {
  owner: bigint;
  nodeid: bigint;
  start: bigint;
  end: bigint;
  type: number;
  pid: number;
}

function attrOf(ino: bigint, mode: number, size: bigint): FuseAttr {
  return { ino, size, blocks: 0n, atime: 0n, mtime: 0n, ctime: 0n, atimensec: 0, mtimensec: 0, ctimensec: 0, mode, nlink: 1, uid: 0, gid: 0, rdev: 0, blksize: 4096, flags: 0 };
}

export class MemoryFs implements FileSystem {
  readonly files = new Map<string, bigint>();
  private readonly locks: Held[] = [];
  private waiters: (() => void)[] = [];
  getattrCalls = 0;
  /** Makes GETATTR take this long (requests in flight for the ring-stop tests). */
  getattrDelayMs = 0;
  waitingLocks = 0;
  shutdowns = 0;

  constructor(names: string[] = ['a', 'b']) {
    names.forEach((n, i) => this.files.set(n, BigInt(i + 2)));
  }

  async init(): Promise<InitReply> {
    return splitInitFlags(FUSE_POSIX_LOCKS);
  }

  async lookup(_ctx: RequestContext, req: LookupRequest): Promise<FuseEntryOut> {
    const ino = this.files.get(req.name.toString());
    if (req.header.nodeid !== 1n || ino === undefined) throw new FsError(ENOENT);
    return { nodeid: ino, generation: 0n, entry_valid: 1n, attr_valid: 1n, entry_valid_nsec: 0, attr_valid_nsec: 0, attr: attrOf(ino, 0o100644, 0n) };
  }

  async getattr(_ctx: RequestContext, req: GetattrRequest): Promise<FuseAttrOut> {
    this.getattrCalls++;
    if (this.getattrDelayMs) await new Promise((r) => setTimeout(r, this.getattrDelayMs));
    const n = req.header.nodeid;
    if (n !== 1n && ![...this.files.values()].includes(n)) throw new FsError(ENOENT);
    return { attr_valid: 1n, attr_valid_nsec: 0, attr: attrOf(n, n === 1n ? 0o40755 : 0o100644, 0n) };
  }

  async open(_ctx: RequestContext, req: OpenRequest<FuseOpcode.FUSE_OPEN>) {
    return { fh: req.header.nodeid * 100n, open_flags: 0, backing_id: 0 };
  }

  async release(_ctx: RequestContext, req: ReleaseRequest<FuseOpcode.FUSE_RELEASE>): Promise<void> {
    this.unlockOwner(req.header.nodeid, req.arg.lock_owner);
  }

  private conflict(nodeid: bigint, owner: bigint, lk: FuseFileLock): Held | undefined {
    return this.locks.find((h) => h.nodeid === nodeid && h.owner !== owner && h.start <= lk.end && lk.start <= h.end && (h.type === F_WRLCK || lk.type === F_WRLCK));
  }

  async getlk(_ctx: RequestContext, req: LkRequest<FuseOpcode.FUSE_GETLK>): Promise<FuseFileLock> {
    const h = this.conflict(req.header.nodeid, req.arg.owner, req.arg.lk);
    return h ? { start: h.start, end: h.end, type: h.type, pid: h.pid } : { ...req.arg.lk, type: F_UNLCK };
  }

  async setlk(ctx: RequestContext, req: LkRequest<FuseOpcode.FUSE_SETLK | FuseOpcode.FUSE_SETLKW>, wait: boolean): Promise<void> {
    const { owner, lk } = req.arg;
    const nodeid = req.header.nodeid;
    if (lk.type === F_UNLCK) {
      this.unlockOwner(nodeid, owner);
      return;
    }
    for (;;) {
      if (!this.conflict(nodeid, owner, lk)) {
        this.locks.push({ owner, nodeid, start: lk.start, end: lk.end, type: lk.type, pid: lk.pid });
        return;
      }
      if (!wait) throw new FsError(EAGAIN);
      const signal = ctx.signal;
      if (signal.aborted) throw new FsError(EINTR);
      this.waitingLocks++;
      try {
        await new Promise<void>((resolve, reject) => {
          const onAbort = (): void => reject(new FsError(EINTR));
          signal.addEventListener('abort', onAbort, { once: true });
          this.waiters.push(() => {
            signal.removeEventListener('abort', onAbort);
            resolve();
          });
        });
      } finally {
        this.waitingLocks--;
      }
    }
  }

  unlockOwner(nodeid: bigint, owner: bigint): void {
    for (let i = this.locks.length - 1; i >= 0; i--) if (this.locks[i].nodeid === nodeid && this.locks[i].owner === owner) this.locks.splice(i, 1);
    const w = this.waiters;
    this.waiters = [];
    w.forEach((f) => f());
  }

  async shutdown(): Promise<void> {
    this.shutdowns++;
  }
}

export { F_RDLCK, F_WRLCK, F_UNLCK };
