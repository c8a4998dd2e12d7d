// The FUSE session of one connection: INIT negotiation, then each decoded request dispatched to the
// FileSystem and its result turned into a reply encoder. No rings here: the request actor writes
// the reply into the chain.
import {
  DecodedRequest,
  DecodeOptions,
  EIO,
  ENOSYS,
  ERANGE,
  EPROTO,
  FUSE_ASYNC_READ,
  FUSE_BIG_WRITES,
  FUSE_INIT_EXT,
  FUSE_KERNEL_MINOR_VERSION,
  FUSE_KERNEL_VERSION,
  FUSE_MAX_PAGES,
  FuseOpcode,
  InitRequest,
  OUT_HEADER_SIZE,
  encodeAttrReply,
  encodeCreateReply,
  encodeDataReply,
  encodeHeaderOfPlacedReply,
  encodeEmptyReply,
  encodeEntryReply,
  encodeErrorReply,
  encodeInitReply,
  encodeLkReply,
  encodeLseekReply,
  encodeOpenReply,
  encodeStatfsReply,
  encodeWriteReply,
  encodeXattrSizeReply,
  fuse_attr_out,
  fuse_entry_out,
  fuse_init_out,
  fuse_lk_out,
  fuse_open_out,
  fuse_statfs_out,
  joinInitFlags,
  packDirents,
  packDirentplus,
  splitInitFlags,
} from '../fuse';
import { DirEntry, FileSystem, FsError, RequestContext, type ReadTarget } from '../filesystem';
import { sliceViews, viewsLength } from '../io-views';

/** A reply ready to be written: its size and an encoder into (bytes, offset). */
export interface Reply {
  readonly size: number;
  /** Set on error replies: the errno answered. */
  readonly errno?: number;
  /**
   * The body is already in the chain's writable buffers (after the header): write() encodes the header
   * only, and returns `size`.
   */
  readonly bodyInPlace?: boolean;
  write(bytes: Uint8Array, offset: number): number;
}

const ALWAYS_OFFERED = FUSE_ASYNC_READ | FUSE_BIG_WRITES | FUSE_MAX_PAGES | FUSE_INIT_EXT;
/** 1 MiB writes, as virtiofsd: the Linux driver sizes its buffers from max_pages. */
const MAX_WRITE = 1 << 20;
const MAX_PAGES = 256;

export function errorReply(unique: bigint, errno: number): Reply {
  return { size: OUT_HEADER_SIZE, errno, write: (b, o) => encodeErrorReply(b, o, unique, errno) };
}

function emptyReply(unique: bigint): Reply {
  return { size: OUT_HEADER_SIZE, write: (b, o) => encodeEmptyReply(b, o, unique) };
}

/** The reply buffers after the header, if they hold `size` bytes. */
function readTarget(buffers: readonly Uint8Array[], size: number): ReadTarget | undefined {
  if (viewsLength(buffers) < OUT_HEADER_SIZE + size) return undefined;
  return { buffers: sliceViews(buffers, OUT_HEADER_SIZE, size) };
}

function dataReply(unique: bigint, data: Uint8Array): Reply {
  return { size: OUT_HEADER_SIZE + data.byteLength, write: (b, o) => encodeDataReply(b, o, unique, data) };
}

export class FuseServer {
  /** Negotiated minor; requests are decoded with the matching compatibility sizes. */
  readonly decodeOptions: { minor: number; setxattrExt: boolean } = { minor: FUSE_KERNEL_MINOR_VERSION, setxattrExt: false };
  initialized = false;

  constructor(readonly fs: FileSystem) {}

  get options(): DecodeOptions {
    return this.decodeOptions;
  }

  /** Runs one request. Resolves with its reply, or null for requests the kernel expects none for. */
  /**
   * `replyBuffers`: the chain's writable segments (views of guest memory), so that a READ's data can be
   * read into them in place; the reply then carries only its header (Reply.bodyInPlace).
   */
  async dispatch(ctx: RequestContext, req: DecodedRequest, replyBuffers?: readonly Uint8Array[]): Promise<Reply | null> {
    const unique = req.header.unique;
    try {
      if (!this.initialized && req.opcode !== FuseOpcode.FUSE_INIT && !req.noReply) return errorReply(unique, EIO);
      return await this.call(ctx, req, replyBuffers);
    } catch (e) {
      if (req.noReply) return null;
      if (e instanceof FsError) return errorReply(unique, e.errno);
      throw e; // a bug: the caller logs it and answers EIO
    }
  }

  private async call(ctx: RequestContext, req: DecodedRequest, replyBuffers?: readonly Uint8Array[]): Promise<Reply | null> {
    const fs = this.fs;
    const u = req.header.unique;
    const missing = (): Reply => errorReply(u, ENOSYS);
    const minor = this.decodeOptions.minor;
    switch (req.opcode) {
      case FuseOpcode.FUSE_INIT:
        return this.init(ctx, req);
      case FuseOpcode.FUSE_DESTROY:
        if (fs.destroy) await fs.destroy(ctx, req);
        this.initialized = false;
        return emptyReply(u);
      case FuseOpcode.FUSE_FORGET:
        fs.forget?.(req);
        return null;
      case FuseOpcode.FUSE_BATCH_FORGET:
        fs.batchForget?.(req);
        return null;
      case FuseOpcode.FUSE_INTERRUPT:
      case FuseOpcode.FUSE_NOTIFY_REPLY:
        return null; // handled by the queue (interrupt) or unused
      case FuseOpcode.FUSE_LOOKUP: {
        if (!fs.lookup) return missing();
        const e = await fs.lookup(ctx, req);
        return { size: OUT_HEADER_SIZE + fuse_entry_out.size, write: (b, o) => encodeEntryReply(b, o, u, e, minor) };
      }
      case FuseOpcode.FUSE_MKNOD:
      case FuseOpcode.FUSE_MKDIR:
      case FuseOpcode.FUSE_SYMLINK:
      case FuseOpcode.FUSE_LINK: {
        const op =
          req.opcode === FuseOpcode.FUSE_MKNOD
            ? fs.mknod && (() => fs.mknod!(ctx, req))
            : req.opcode === FuseOpcode.FUSE_MKDIR
              ? fs.mkdir && (() => fs.mkdir!(ctx, req))
              : req.opcode === FuseOpcode.FUSE_SYMLINK
                ? fs.symlink && (() => fs.symlink!(ctx, req))
                : fs.link && (() => fs.link!(ctx, req));
        if (!op) return missing();
        const e = await op();
        return { size: OUT_HEADER_SIZE + fuse_entry_out.size, write: (b, o) => encodeEntryReply(b, o, u, e, minor) };
      }
      case FuseOpcode.FUSE_GETATTR:
      case FuseOpcode.FUSE_SETATTR: {
        const a = req.opcode === FuseOpcode.FUSE_GETATTR ? await fs.getattr?.(ctx, req) : await fs.setattr?.(ctx, req);
        if (!a) return missing();
        return { size: OUT_HEADER_SIZE + fuse_attr_out.size, write: (b, o) => encodeAttrReply(b, o, u, a, minor) };
      }
      case FuseOpcode.FUSE_READLINK:
        return fs.readlink ? dataReply(u, await fs.readlink(ctx, req)) : missing();
      case FuseOpcode.FUSE_UNLINK:
        return fs.unlink ? (await fs.unlink(ctx, req), emptyReply(u)) : missing();
      case FuseOpcode.FUSE_RMDIR:
        return fs.rmdir ? (await fs.rmdir(ctx, req), emptyReply(u)) : missing();
      case FuseOpcode.FUSE_RENAME:
      case FuseOpcode.FUSE_RENAME2:
        return fs.rename ? (await fs.rename(ctx, req), emptyReply(u)) : missing();
      case FuseOpcode.FUSE_OPEN:
      case FuseOpcode.FUSE_OPENDIR: {
        const r = req.opcode === FuseOpcode.FUSE_OPEN ? await fs.open?.(ctx, req) : await fs.opendir?.(ctx, req);
        if (!r) return missing();
        return { size: OUT_HEADER_SIZE + fuse_open_out.size, write: (b, o) => encodeOpenReply(b, o, u, r) };
      }
      case FuseOpcode.FUSE_CREATE:
      case FuseOpcode.FUSE_TMPFILE: {
        const r = req.opcode === FuseOpcode.FUSE_CREATE ? await fs.create?.(ctx, req) : await fs.tmpfile?.(ctx, req);
        if (!r) return missing();
        return { size: OUT_HEADER_SIZE + fuse_entry_out.size + fuse_open_out.size, write: (b, o) => encodeCreateReply(b, o, u, r.entry, r.open) };
      }
      case FuseOpcode.FUSE_READ: {
        if (!fs.read) return missing();
        const into = replyBuffers && readTarget(replyBuffers, req.arg.size);
        const r = await fs.read(ctx, req, into);
        if (!('placed' in r)) return dataReply(u, r);
        const placed = r.placed;
        return { size: OUT_HEADER_SIZE + placed, bodyInPlace: true, write: (b, o) => encodeHeaderOfPlacedReply(b, o, u, placed) };
      }
      case FuseOpcode.FUSE_WRITE: {
        if (!fs.write) return missing();
        const n = await fs.write(ctx, req);
        return { size: OUT_HEADER_SIZE + 8, write: (b, o) => encodeWriteReply(b, o, u, n) };
      }
      case FuseOpcode.FUSE_COPY_FILE_RANGE: {
        if (!fs.copyFileRange) return missing();
        const n = await fs.copyFileRange(ctx, req);
        return { size: OUT_HEADER_SIZE + 8, write: (b, o) => encodeWriteReply(b, o, u, n) };
      }
      case FuseOpcode.FUSE_READDIR:
      case FuseOpcode.FUSE_READDIRPLUS: {
        if (!fs.readdir) return missing();
        const plus = req.opcode === FuseOpcode.FUSE_READDIRPLUS;
        const entries = await fs.readdir(ctx, req, plus);
        return this.readdirReply(u, entries, req.arg.size, plus);
      }
      case FuseOpcode.FUSE_FLUSH:
        return fs.flush ? (await fs.flush(ctx, req), emptyReply(u)) : missing();
      case FuseOpcode.FUSE_RELEASE:
        return fs.release ? (await fs.release(ctx, req), emptyReply(u)) : emptyReply(u);
      case FuseOpcode.FUSE_RELEASEDIR:
        return fs.releasedir ? (await fs.releasedir(ctx, req), emptyReply(u)) : emptyReply(u);
      case FuseOpcode.FUSE_FSYNC:
        return fs.fsync ? (await fs.fsync(ctx, req), emptyReply(u)) : missing();
      case FuseOpcode.FUSE_FSYNCDIR:
        return fs.fsyncdir ? (await fs.fsyncdir(ctx, req), emptyReply(u)) : missing();
      case FuseOpcode.FUSE_STATFS: {
        if (!fs.statfs) return missing();
        const st = await fs.statfs(ctx, req);
        return { size: OUT_HEADER_SIZE + fuse_statfs_out.size, write: (b, o) => encodeStatfsReply(b, o, u, st, minor) };
      }
      case FuseOpcode.FUSE_ACCESS:
        return fs.access ? (await fs.access(ctx, req), emptyReply(u)) : missing();
      case FuseOpcode.FUSE_SETXATTR:
        return fs.setxattr ? (await fs.setxattr(ctx, req), emptyReply(u)) : missing();
      case FuseOpcode.FUSE_GETXATTR:
      case FuseOpcode.FUSE_LISTXATTR: {
        const v = req.opcode === FuseOpcode.FUSE_GETXATTR ? await fs.getxattr?.(ctx, req) : await fs.listxattr?.(ctx, req);
        if (!v) return missing();
        if (req.arg.size === 0) return { size: OUT_HEADER_SIZE + 8, write: (b, o) => encodeXattrSizeReply(b, o, u, v.length) };
        if (v.length > req.arg.size) return errorReply(u, ERANGE);
        return dataReply(u, v);
      }
      case FuseOpcode.FUSE_REMOVEXATTR:
        return fs.removexattr ? (await fs.removexattr(ctx, req), emptyReply(u)) : missing();
      case FuseOpcode.FUSE_GETLK: {
        if (!fs.getlk) return missing();
        const lk = await fs.getlk(ctx, req);
        return { size: OUT_HEADER_SIZE + fuse_lk_out.size, write: (b, o) => encodeLkReply(b, o, u, lk) };
      }
      case FuseOpcode.FUSE_SETLK:
      case FuseOpcode.FUSE_SETLKW:
        return fs.setlk ? (await fs.setlk(ctx, req, req.opcode === FuseOpcode.FUSE_SETLKW), emptyReply(u)) : missing();
      case FuseOpcode.FUSE_FALLOCATE:
        return fs.fallocate ? (await fs.fallocate(ctx, req), emptyReply(u)) : missing();
      case FuseOpcode.FUSE_LSEEK: {
        if (!fs.lseek) return missing();
        const off = await fs.lseek(ctx, req);
        return { size: OUT_HEADER_SIZE + 8, write: (b, o) => encodeLseekReply(b, o, u, off) };
      }
      case FuseOpcode.FUSE_SYNCFS:
        return fs.syncfs ? (await fs.syncfs(ctx, req), emptyReply(u)) : missing();
      default:
        // IOCTL, POLL, BMAP, SETUPMAPPING, REMOVEMAPPING, CUSE_INIT: not offered.
        return missing();
    }
  }

  private async init(ctx: RequestContext, req: InitRequest): Promise<Reply> {
    const u = req.header.unique;
    const a = req.arg;
    if (a.major !== FUSE_KERNEL_VERSION) {
      // An unknown major: answer with ours, the kernel retries or gives up (as libfuse does).
      const out = { major: FUSE_KERNEL_VERSION, minor: FUSE_KERNEL_MINOR_VERSION } as Parameters<typeof encodeInitReply>[3];
      return { size: OUT_HEADER_SIZE + fuse_init_out.size, write: (b, o) => encodeInitReply(b, o, u, { ...zeroInit(), ...out }, a.minor) };
    }
    if (a.minor < 31) return errorReply(u, EPROTO); // virtio-fs needs 7.31 or later
    const kernelFlags = joinInitFlags(a);
    const wanted = this.fs.init ? await this.fs.init(ctx, req) : {};
    const fsFlags = wanted.flags !== undefined || wanted.flags2 !== undefined ? joinInitFlags({ flags: wanted.flags ?? 0, flags2: wanted.flags2 ?? 0 }) : 0n;
    const flags = kernelFlags & (ALWAYS_OFFERED | fsFlags);
    const split = splitInitFlags(flags);
    this.decodeOptions.minor = Math.min(a.minor, FUSE_KERNEL_MINOR_VERSION);
    this.decodeOptions.setxattrExt = false;
    this.initialized = true;
    const out = {
      ...zeroInit(),
      ...wanted,
      major: FUSE_KERNEL_VERSION,
      minor: FUSE_KERNEL_MINOR_VERSION,
      max_readahead: Math.min(a.max_readahead, wanted.max_readahead ?? a.max_readahead),
      flags: split.flags,
      flags2: split.flags2,
      max_write: wanted.max_write ?? MAX_WRITE,
      max_pages: wanted.max_pages ?? MAX_PAGES,
      time_gran: wanted.time_gran ?? 1,
    };
    return { size: OUT_HEADER_SIZE + fuse_init_out.size, write: (b, o) => encodeInitReply(b, o, u, out, a.minor) };
  }

  private readdirReply(u: bigint, entries: DirEntry[], size: number, plus: boolean): Reply {
    const body = Buffer.alloc(size);
    const n = plus ? packDirentplus(body, 0, size, toPlus(entries)).size : packDirents(body, 0, size, entries).size;
    return dataReply(u, body.subarray(0, n));
  }
}

function zeroInit(): Parameters<typeof encodeInitReply>[3] {
  return {
    major: 0,
    minor: 0,
    max_readahead: 0,
    flags: 0,
    max_background: 0,
    congestion_threshold: 0,
    max_write: 0,
    time_gran: 0,
    max_pages: 0,
    map_alignment: 0,
    flags2: 0,
  };
}

function toPlus(entries: DirEntry[]) {
  return entries.map((e) => {
    if (!e.entry) throw new FsError(EIO, 'READDIRPLUS entry without its lookup');
    return { entry_out: e.entry, dirent: { ino: e.ino, off: e.off, type: e.type, name: e.name } };
  });
}
