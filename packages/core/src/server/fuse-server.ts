// The FUSE session of one connection: INIT negotiation, then each decoded request dispatched to the
// FileSystem and its result written through the request's ReplyWriter. No rings here. A filesystem
// that answers inline gets its reply written in the same call (no promise); one that answers later,
// when it settles. Imports name the codec's modules: the index's re-export getters cost per call.
import { EIO, ENOSYS, EPROTO, ERANGE } from '../fuse/errno';
import { FUSE_ASYNC_READ, FUSE_BIG_WRITES, FUSE_INIT_EXT, FUSE_MAX_PAGES, joinInitFlags, splitInitFlags } from '../fuse/flags';
import { FUSE_KERNEL_MINOR_VERSION, FUSE_KERNEL_VERSION, FuseOpcode } from '../fuse/opcodes';
import type { DecodedRequest, DecodeOptions, InitRequest } from '../fuse/request';
import {
  OUT_HEADER_SIZE,
  attrOutSize,
  encodeCreateReply,
  encodeDataReply,
  encodeEmptyReply,
  entryOutSize,
  encodeInitReply,
  encodeLkReply,
  encodeLseekReply,
  encodeStatfsReply,
  encodeXattrSizeReply,
} from '../fuse/reply';
import {
  fuse_attr_out,
  fuse_entry_out,
  fuse_init_out,
  fuse_lk_out,
  fuse_open_out,
  fuse_statfs_out,
  fuse_write_out,
  type FuseAttrOutReply,
  type FuseEntryOutReply,
  type FuseInitIn,
  type FuseOpenOut,
} from '../fuse/structs';
import { DirentPacker } from '../fuse/dirent';
import type { Struct } from '../fuse/layout';
import { then } from '../awaitable';
import { FsError, type FileSystem, type MigrationState, type ReadTarget, type RequestContext } from '../filesystem';
import type { ReplyWriter } from './reply-writer';

const ALWAYS_OFFERED = FUSE_ASYNC_READ | FUSE_BIG_WRITES | FUSE_MAX_PAGES | FUSE_INIT_EXT;
/** 1 MiB writes, as virtiofsd: the Linux driver sizes its buffers from max_pages. */
const MAX_WRITE = 1 << 20;
const MAX_PAGES = 256;

/** Nothing when answered inline (the reply is written), else the promise of the reply being written. */
type Served = void | Promise<void>;

/** Room for a reply of `size` bytes, or EIO: the driver sized the buffer for its request, never truncate. */
function room(out: ReplyWriter, unique: bigint, size: number): boolean {
  if (out.begin(size)) return true;
  out.error(unique, EIO);
  return false;
}

/** Body bytes the chain can hold after the out header. */
function bodyRoom(out: ReplyWriter): number {
  return Math.max(0, out.capacity - OUT_HEADER_SIZE);
}

/** The request with another fuse_read_in.size (bounded by what the reply can carry). */
function withSize<R extends { readonly arg: { readonly size: number } }>(req: R, size: number): R {
  return { ...req, arg: { ...req.arg, size } };
}

function writeEmpty(out: ReplyWriter, u: bigint): void {
  if (room(out, u, OUT_HEADER_SIZE)) out.commit(encodeEmptyReply(out.bytes, 0, u));
}

function writeData(out: ReplyWriter, u: bigint, data: Uint8Array): void {
  if (room(out, u, OUT_HEADER_SIZE + data.byteLength)) out.commit(encodeDataReply(out.bytes, 0, u, data));
}

/** A one-struct reply, or EIO when the chain cannot hold it (see room). */
function writeStruct<T>(out: ReplyWriter, u: bigint, layout: Struct<unknown, T>, value: T, size: number = layout.size): void {
  if (!out.struct(u, layout, value, size)) out.error(u, EIO);
}

function writeEntry(out: ReplyWriter, u: bigint, e: FuseEntryOutReply, minor: number): void {
  writeStruct(out, u, fuse_entry_out, e, entryOutSize(minor));
}

function writeAttr(out: ReplyWriter, u: bigint, a: FuseAttrOutReply, minor: number): void {
  writeStruct(out, u, fuse_attr_out, a, attrOutSize(minor));
}

function writeOpen(out: ReplyWriter, u: bigint, r: FuseOpenOut): void {
  writeStruct(out, u, fuse_open_out, r);
}

function writeCreated(out: ReplyWriter, u: bigint, r: { entry: FuseEntryOutReply; open: FuseOpenOut }): void {
  if (room(out, u, OUT_HEADER_SIZE + fuse_entry_out.size + fuse_open_out.size)) out.commit(encodeCreateReply(out.bytes, 0, u, r.entry, r.open));
}

function writeCount(out: ReplyWriter, u: bigint, n: number): void {
  writeStruct(out, u, fuse_write_out, { size: n });
}

/** The FUSE session a migration carries: the INIT the kernel sent (replayed on the destination) and the filesystem's state. */
export interface FuseSessionState {
  init: FuseInitIn | null;
  fs: MigrationState;
}

export class FuseServer {
  /** The kernel's INIT, kept for a migration to replay it. */
  private initArg: FuseInitIn | null = null;
  /** Negotiated minor; requests are decoded with the matching compatibility sizes. */
  readonly decodeOptions: { minor: number; setxattrExt: boolean } = { minor: FUSE_KERNEL_MINOR_VERSION, setxattrExt: false };
  initialized = false;

  constructor(readonly fs: FileSystem) {}

  get options(): DecodeOptions {
    return this.decodeOptions;
  }

  /** A request-queue thread's server: the session the main thread's INIT negotiated. */
  adopt(minor: number, setxattrExt: boolean): void {
    this.decodeOptions.minor = minor;
    this.decodeOptions.setxattrExt = setxattrExt;
    this.initialized = true;
  }

  /**
   * Runs one request and writes its reply into `out` (nothing for requests the kernel expects no reply
   * to). Returns nothing when the filesystem answered inline, else a promise that settles once the reply
   * is written. A FsError becomes its errno; anything else is a bug, thrown (or rejected) for the caller
   * to log and answer EIO.
   */
  serve(ctx: RequestContext, req: DecodedRequest, out: ReplyWriter): Served {
    const unique = req.header.unique;
    if (!this.initialized && req.opcode !== FuseOpcode.FUSE_INIT && !req.noReply) return out.error(unique, EIO);
    let served: Served;
    try {
      served = this.call(ctx, req, out);
    } catch (e) {
      return this.failed(e, req, out);
    }
    if (served === undefined) return;
    return served.catch((e: unknown) => this.failed(e, req, out));
  }

  private failed(e: unknown, req: DecodedRequest, out: ReplyWriter): void {
    if (req.noReply) return;
    if (e instanceof FsError) return out.error(req.header.unique, e.errno);
    throw e;
  }

  private call(ctx: RequestContext, req: DecodedRequest, out: ReplyWriter): Served {
    const fs = this.fs;
    const u = req.header.unique;
    const minor = this.decodeOptions.minor;
    const done = (): void => writeEmpty(out, u);
    const entry = (e: FuseEntryOutReply): void => writeEntry(out, u, e, minor);
    const missing = (): void => out.error(u, ENOSYS);
    switch (req.opcode) {
      case FuseOpcode.FUSE_INIT:
        return this.init(ctx, req, out);
      case FuseOpcode.FUSE_DESTROY:
        return then(fs.destroy ? fs.destroy(ctx, req) : undefined, () => {
          this.initialized = false;
          done();
        });
      case FuseOpcode.FUSE_FORGET:
        fs.forget?.(req);
        return;
      case FuseOpcode.FUSE_BATCH_FORGET:
        fs.batchForget?.(req);
        return;
      case FuseOpcode.FUSE_INTERRUPT:
      case FuseOpcode.FUSE_NOTIFY_REPLY:
        return; // handled by the queue (interrupt) or unused
      case FuseOpcode.FUSE_LOOKUP:
        return fs.lookup ? then(fs.lookup(ctx, req), entry) : missing();
      case FuseOpcode.FUSE_MKNOD:
        return fs.mknod ? then(fs.mknod(ctx, req), entry) : missing();
      case FuseOpcode.FUSE_MKDIR:
        return fs.mkdir ? then(fs.mkdir(ctx, req), entry) : missing();
      case FuseOpcode.FUSE_SYMLINK:
        return fs.symlink ? then(fs.symlink(ctx, req), entry) : missing();
      case FuseOpcode.FUSE_LINK:
        return fs.link ? then(fs.link(ctx, req), entry) : missing();
      case FuseOpcode.FUSE_GETATTR:
        return fs.getattr ? then(fs.getattr(ctx, req), (a) => writeAttr(out, u, a, minor)) : missing();
      case FuseOpcode.FUSE_SETATTR:
        return fs.setattr ? then(fs.setattr(ctx, req), (a) => writeAttr(out, u, a, minor)) : missing();
      case FuseOpcode.FUSE_READLINK:
        return fs.readlink ? then(fs.readlink(ctx, req), (d) => writeData(out, u, d)) : missing();
      case FuseOpcode.FUSE_UNLINK:
        return fs.unlink ? then(fs.unlink(ctx, req), done) : missing();
      case FuseOpcode.FUSE_RMDIR:
        return fs.rmdir ? then(fs.rmdir(ctx, req), done) : missing();
      case FuseOpcode.FUSE_RENAME:
      case FuseOpcode.FUSE_RENAME2:
        return fs.rename ? then(fs.rename(ctx, req), done) : missing();
      case FuseOpcode.FUSE_OPEN:
        return fs.open ? then(fs.open(ctx, req), (r) => writeOpen(out, u, r)) : missing();
      case FuseOpcode.FUSE_OPENDIR:
        return fs.opendir ? then(fs.opendir(ctx, req), (r) => writeOpen(out, u, r)) : missing();
      case FuseOpcode.FUSE_CREATE:
        return fs.create ? then(fs.create(ctx, req), (r) => writeCreated(out, u, r)) : missing();
      case FuseOpcode.FUSE_TMPFILE:
        return fs.tmpfile ? then(fs.tmpfile(ctx, req), (r) => writeCreated(out, u, r)) : missing();
      case FuseOpcode.FUSE_READ: {
        if (!fs.read) return missing();
        const views = out.bodyViews(req.arg.size);
        const into: ReadTarget | undefined = views && { buffers: views };
        // A chain too small for `size` holds the reply only if the data is shorter: the filesystem
        // reads one byte more than fits (that byte means EIO), never the guest's size (up to 4 GiB).
        const r = views ? req : withSize(req, bodyRoom(out) + 1);
        return then(fs.read(ctx, r, into), (d) => ('placed' in d ? out.placed(u, d.placed) : writeData(out, u, d)));
      }
      case FuseOpcode.FUSE_WRITE:
        return fs.write ? then(fs.write(ctx, req), (n) => writeCount(out, u, n)) : missing();
      case FuseOpcode.FUSE_COPY_FILE_RANGE:
        return fs.copyFileRange ? then(fs.copyFileRange(ctx, req), (n) => writeCount(out, u, n)) : missing();
      case FuseOpcode.FUSE_READDIR:
      case FuseOpcode.FUSE_READDIRPLUS: {
        if (!fs.readdir) return missing();
        // Only what the chain can carry is asked for and packed (the kernel goes on from the last cookie).
        const size = Math.min(req.arg.size, bodyRoom(out));
        const r = size === req.arg.size ? req : withSize(req, size);
        // Only the packed bytes are sent: no need to zero the rest.
        const sink = new DirentPacker(Buffer.allocUnsafe(size), req.opcode === FuseOpcode.FUSE_READDIRPLUS);
        return then(fs.readdir(ctx, r, sink), () => this.writeDirents(out, u, sink, req.arg.size));
      }
      case FuseOpcode.FUSE_FLUSH:
        return fs.flush ? then(fs.flush(ctx, req), done) : missing();
      case FuseOpcode.FUSE_RELEASE:
        return fs.release ? then(fs.release(ctx, req), done) : done();
      case FuseOpcode.FUSE_RELEASEDIR:
        return fs.releasedir ? then(fs.releasedir(ctx, req), done) : done();
      case FuseOpcode.FUSE_FSYNC:
        return fs.fsync ? then(fs.fsync(ctx, req), done) : missing();
      case FuseOpcode.FUSE_FSYNCDIR:
        return fs.fsyncdir ? then(fs.fsyncdir(ctx, req), done) : missing();
      case FuseOpcode.FUSE_STATFS:
        if (!fs.statfs) return missing();
        return then(fs.statfs(ctx, req), (st) => {
          if (room(out, u, OUT_HEADER_SIZE + fuse_statfs_out.size)) out.commit(encodeStatfsReply(out.bytes, 0, u, st, minor));
        });
      case FuseOpcode.FUSE_ACCESS:
        return fs.access ? then(fs.access(ctx, req), done) : missing();
      case FuseOpcode.FUSE_SETXATTR:
        return fs.setxattr ? then(fs.setxattr(ctx, req), done) : missing();
      case FuseOpcode.FUSE_GETXATTR:
      case FuseOpcode.FUSE_LISTXATTR: {
        const v = req.opcode === FuseOpcode.FUSE_GETXATTR ? fs.getxattr?.(ctx, req) : fs.listxattr?.(ctx, req);
        if (!v) return missing();
        const size = req.arg.size;
        return then(v, (value) => {
          if (size === 0) {
            if (room(out, u, OUT_HEADER_SIZE + 8)) out.commit(encodeXattrSizeReply(out.bytes, 0, u, value.length));
          } else if (value.length > size) out.error(u, ERANGE);
          else writeData(out, u, value);
        });
      }
      case FuseOpcode.FUSE_REMOVEXATTR:
        return fs.removexattr ? then(fs.removexattr(ctx, req), done) : missing();
      case FuseOpcode.FUSE_GETLK:
        if (!fs.getlk) return missing();
        return then(fs.getlk(ctx, req), (lk) => {
          if (room(out, u, OUT_HEADER_SIZE + fuse_lk_out.size)) out.commit(encodeLkReply(out.bytes, 0, u, lk));
        });
      case FuseOpcode.FUSE_SETLK:
      case FuseOpcode.FUSE_SETLKW:
        return fs.setlk ? then(fs.setlk(ctx, req, req.opcode === FuseOpcode.FUSE_SETLKW), done) : missing();
      case FuseOpcode.FUSE_FALLOCATE:
        return fs.fallocate ? then(fs.fallocate(ctx, req), done) : missing();
      case FuseOpcode.FUSE_LSEEK:
        if (!fs.lseek) return missing();
        return then(fs.lseek(ctx, req), (off) => {
          if (room(out, u, OUT_HEADER_SIZE + 8)) out.commit(encodeLseekReply(out.bytes, 0, u, off));
        });
      case FuseOpcode.FUSE_SYNCFS:
        return fs.syncfs ? then(fs.syncfs(ctx, req), done) : missing();
      default:
        // IOCTL, POLL, BMAP, SETUPMAPPING, REMOVEMAPPING, CUSE_INIT: not offered.
        return missing();
    }
  }

  private init(ctx: RequestContext, req: InitRequest, out: ReplyWriter): Served {
    const u = req.header.unique;
    const a = req.arg;
    const reply = (o: Parameters<typeof encodeInitReply>[3]): void => {
      if (room(out, u, OUT_HEADER_SIZE + fuse_init_out.size)) out.commit(encodeInitReply(out.bytes, 0, u, o, a.minor));
    };
    if (a.major !== FUSE_KERNEL_VERSION) {
      // An unknown major: answer with ours, the kernel retries or gives up (as libfuse does).
      return reply({ ...zeroInit(), major: FUSE_KERNEL_VERSION, minor: FUSE_KERNEL_MINOR_VERSION });
    }
    if (a.minor < 31) return out.error(u, EPROTO); // virtio-fs needs 7.31 or later
    const kernelFlags = joinInitFlags(a);
    return then(this.fs.init ? this.fs.init(ctx, req) : {}, (wanted) => {
      const fsFlags = wanted.flags !== undefined || wanted.flags2 !== undefined ? joinInitFlags({ flags: wanted.flags ?? 0, flags2: wanted.flags2 ?? 0 }) : 0n;
      const flags = kernelFlags & (ALWAYS_OFFERED | fsFlags);
      const split = splitInitFlags(flags);
      this.decodeOptions.minor = Math.min(a.minor, FUSE_KERNEL_MINOR_VERSION);
      this.decodeOptions.setxattrExt = false;
      this.initialized = true;
      this.initArg = { ...a };
      reply({
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
      });
    });
  }

  /** Live migration: the session as the destination needs it (see FileSystem.saveState). */
  async saveState(): Promise<FuseSessionState> {
    if (!this.fs.saveState) throw new Error('this filesystem cannot be migrated');
    return { init: this.initialized ? this.initArg : null, fs: await this.fs.saveState() };
  }

  /**
   * The destination's side: the filesystem negotiates the kernel's INIT again (its reply is dropped:
   * the guest already has it), then rebuilds its tables. No request has been served yet.
   */
  async loadState(state: FuseSessionState, ctx: RequestContext): Promise<readonly string[]> {
    if (state.init) {
      const a = state.init;
      if (a.major !== FUSE_KERNEL_VERSION || a.minor < 31) throw new Error(`migrated session has FUSE ${a.major}.${a.minor}`);
      const req: InitRequest = { opcode: FuseOpcode.FUSE_INIT, noReply: false, header: migratedInitHeader(), ext: undefined, arg: a };
      if (this.fs.init) await this.fs.init(ctx, req);
      this.decodeOptions.minor = Math.min(a.minor, FUSE_KERNEL_MINOR_VERSION);
      this.decodeOptions.setxattrExt = false;
      this.initArg = { ...a };
      this.initialized = true;
    }
    if (state.fs !== null) {
      if (!this.fs.loadState) throw new Error('the migrated session has filesystem state, this filesystem cannot load it');
      return (await this.fs.loadState(state.fs)) ?? [];
    }
    return [];
  }

  /** The packed entries; none packed while one was refused would say "end of directory". */
  private writeDirents(out: ReplyWriter, u: bigint, sink: DirentPacker, asked: number): void {
    // The first entry fits the size asked but not the chain: the reply cannot be written.
    if (sink.count === 0 && sink.refused > 0 && sink.refused <= asked) return out.error(u, EIO);
    writeData(out, u, sink.bytes.subarray(0, sink.size));
  }
}

function migratedInitHeader(): InitRequest['header'] {
  return { len: 0, opcode: FuseOpcode.FUSE_INIT, unique: 0n, nodeid: 0n, uid: 0, gid: 0, pid: 0, total_extlen: 0 };
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
