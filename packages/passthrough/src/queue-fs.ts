// The passthrough's part in a request-queue thread (core's QueueThreadPart): GETATTR, READ and WRITE
// answered in that thread on the inode and handle fds the main thread publishes (fd-cells.ts), the
// same calls the main thread would make inline. Whatever it does not see (an id not published, a
// closed one, a write that must clear set-id bits) goes to the main thread (ServeElsewhere), which
// answers as always, errors included.
import {
  FUSE_WRITE_KILL_SUIDGID,
  FuseOpcode,
  FsError,
  ServeElsewhere,
  bytesViews,
  type FuseAttrOutReply,
  type GetattrRequest,
  type QueueFs,
  type ReadReply,
  type ReadRequest,
  type ReadTarget,
  type RequestContext,
  type WriteRequest,
} from '@vfsd/core/abi';
import { toAttrOut, type Timeout } from './attr';
import { FdCells } from './fd-cells';
import { NEVER_CANCELLED, type Op, type OpKind, type OpResult } from './pool/ops';
import { runOp } from './pool/run-op';
import { closeQuietly } from './sys/close-quietly';

/** What the main thread gives each request-queue thread (structured-cloned; the tables stay shared). */
export interface QueueFsData {
  inodes: SharedArrayBuffer;
  handles: SharedArrayBuffer;
  attrTimeout: Timeout;
  /** False for a read-only share: WRITE is then the main thread's (EROFS). */
  writable: boolean;
}

function call<K extends OpKind>(op: Op<K>): OpResult<K> {
  const r = runOp(op, NEVER_CANCELLED);
  if (!r.ok) throw new FsError(r.errno);
  return r.value;
}

class PassthroughQueueFs implements QueueFs {
  readonly opcodes: ReadonlySet<number>;
  private readonly inodes: FdCells;
  private readonly handles: FdCells;
  private readonly attrTimeout: Timeout;

  constructor(data: QueueFsData) {
    this.inodes = new FdCells(data.inodes, closeQuietly);
    this.handles = new FdCells(data.handles, closeQuietly);
    this.attrTimeout = data.attrTimeout;
    const ops: number[] = [FuseOpcode.FUSE_GETATTR, FuseOpcode.FUSE_READ];
    if (data.writable) ops.push(FuseOpcode.FUSE_WRITE);
    this.opcodes = new Set(ops);
  }

  getattr(_ctx: RequestContext, req: GetattrRequest): FuseAttrOutReply {
    return this.withFd(this.inodes, req.header.nodeid, undefined, (fd) => toAttrOut(call({ kind: 'fstat', fd }), this.attrTimeout));
  }

  read(_ctx: RequestContext, req: ReadRequest<FuseOpcode.FUSE_READ>, into?: ReadTarget): ReadReply {
    const { fh, offset, size } = req.arg;
    return this.withFd(this.handles, fh, req.header.nodeid, (fd) =>
      into ? { placed: call({ kind: 'readInto', fd, offset, size, into: into.buffers }) } : call({ kind: 'read', fd, offset, size }),
    );
  }

  write(_ctx: RequestContext, req: WriteRequest): number {
    // Clearing set-id bits depends on what INIT negotiated: the main thread's decision.
    if ((req.arg.write_flags & FUSE_WRITE_KILL_SUIDGID) !== 0) throw new ServeElsewhere();
    return this.withFd(this.handles, req.arg.fh, req.header.nodeid, (fd) => call({ kind: 'writeFrom', fd, offset: req.arg.offset, data: bytesViews(req.data), killSuidgid: false }));
  }

  /** fn with the fd of `id` (a handle's: of `nodeid` too) pinned; the main thread's when it is not published here. */
  private withFd<T>(cells: FdCells, id: bigint, nodeid: bigint | undefined, fn: (fd: number) => T): T {
    const k = cells.pinId(id, nodeid);
    if (k < 0) throw new ServeElsewhere();
    const fd = cells.fd(k);
    try {
      return fn(fd);
    } finally {
      if (cells.unpin(k)) closeQuietly(fd);
    }
  }
}

/** The module entry core's request-queue thread calls (QueueThreadPart.module names this file). */
export function createQueueFs(data: unknown): QueueFs {
  return new PassthroughQueueFs(data as QueueFsData);
}
