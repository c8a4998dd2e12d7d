/**
 * Decoding of FUSE requests (kernel -> server): fuse_in_header, the opcode's
 * argument struct and its trailing names/data, into a discriminated union.
 *
 * Strictness, chosen so that a malformed or hostile request is refused before
 * any handler sees it:
 * - The bytes given are exactly one request: fuse_in_header.len must equal
 *   their length (the device-readable part of a virtio-fs request is exactly
 *   `len` bytes; pass `buf.subarray(0, n)` for a pooled buffer).
 * - The last total_extlen*8 bytes are request extensions (7.38); everything
 *   between the header and them is the argument area, which the opcode's
 *   arguments must fill exactly: truncated structs, names without their NUL,
 *   data whose length differs from the size field, counts that do not match
 *   the records that follow, and trailing garbage are all rejected.
 * - Entry names (a path component) must be 1..FUSE_NAME_MAX bytes without '/',
 *   as the kernel guarantees; xattr names and symlink targets only need their
 *   NUL. TMPFILE's name is the kernel's placeholder "/" and is not checked.
 * Errors are FuseDecodeError: EINVAL for malformed requests, ENAMETOOLONG for
 * an overlong entry name, ENOSYS for an unknown opcode.
 *
 * Names, values and extensions are copies: the request bytes may be guest
 * memory, which the guest can change after a name was checked. A WRITE's data
 * is a view of them (it goes to the file as it is).
 *
 * Compatibility sizes for old negotiated minors follow fs/fuse
 * (fuse_adjust_compat and fuse_write_args_fill): WRITE < 7.9 sends a 24 byte
 * fuse_write_in, MKNOD and CREATE < 7.12 send 8 byte args, SETXATTR sends the
 * 8 byte fuse_setxattr_in unless FUSE_SETXATTR_EXT was negotiated. Fields the
 * kernel did not send decode as 0.
 */
import { FuseDecodeError } from './decode-error';
import { sliceViews, viewsLength, type Bytes } from '../io-views';
import { EINVAL, ENAMETOOLONG, ENOSYS } from './errno';
import { FUSE_INIT_EXT } from './flags';
import { viewOf, type Struct } from './layout';
import { FUSE_KERNEL_MINOR_VERSION, FUSE_KERNEL_VERSION, FUSE_NAME_MAX, FuseOpcode, isNoReply } from './opcodes';
import {
  cuse_init_in,
  FUSE_COMPAT_MKNOD_IN_SIZE,
  FUSE_COMPAT_SETXATTR_IN_SIZE,
  FUSE_COMPAT_WRITE_IN_SIZE,
  fuse_access_in,
  fuse_batch_forget_in,
  fuse_bmap_in,
  fuse_copy_file_range_in,
  fuse_create_in,
  fuse_fallocate_in,
  fuse_flush_in,
  fuse_forget_in,
  fuse_forget_one,
  fuse_fsync_in,
  fuse_getattr_in,
  fuse_getxattr_in,
  fuse_in_header,
  fuse_init_in,
  fuse_interrupt_in,
  fuse_ioctl_in,
  fuse_link_in,
  fuse_lk_in,
  fuse_lseek_in,
  fuse_mkdir_in,
  fuse_mknod_in,
  fuse_notify_retrieve_in,
  fuse_open_in,
  fuse_poll_in,
  fuse_read_in,
  fuse_release_in,
  fuse_removemapping_in,
  fuse_removemapping_one,
  fuse_rename2_in,
  fuse_rename_in,
  fuse_setattr_in,
  fuse_setupmapping_in,
  fuse_setxattr_in,
  fuse_syncfs_in,
  fuse_write_in,
  type CuseInitIn,
  type FuseAccessIn,
  type FuseBatchForgetIn,
  type FuseBmapIn,
  type FuseCopyFileRangeIn,
  type FuseCreateIn,
  type FuseFallocateIn,
  type FuseFlushIn,
  type FuseForgetIn,
  type FuseForgetOne,
  type FuseFsyncIn,
  type FuseGetattrIn,
  type FuseGetxattrIn,
  type FuseInHeader,
  type FuseInitIn,
  type FuseInterruptIn,
  type FuseIoctlIn,
  type FuseLinkIn,
  type FuseLkIn,
  type FuseLseekIn,
  type FuseMkdirIn,
  type FuseMknodIn,
  type FuseNotifyRetrieveIn,
  type FuseOpenIn,
  type FusePollIn,
  type FuseReadIn,
  type FuseReleaseIn,
  type FuseRemovemappingIn,
  type FuseRemovemappingOne,
  type FuseRename2In,
  type FuseRenameIn,
  type FuseSetattrIn,
  type FuseSetupmappingIn,
  type FuseSetxattrIn,
  type FuseWriteIn,
} from './structs';

/** Connection state the decoder needs; pass the same object for every request. */
export interface DecodeOptions {
  /**
   * Negotiated protocol minor: min(kernel's init_in.minor, ours). Selects the
   * compatibility argument sizes. Default FUSE_KERNEL_MINOR_VERSION (38).
   */
  readonly minor?: number;
  /** FUSE_SETXATTR_EXT was negotiated, so fuse_setxattr_in is 16 bytes (else 8). */
  readonly setxattrExt?: boolean;
}

// ---------------------------------------------------------------------------
// Request types

export interface RequestBase<K extends FuseOpcode, N extends boolean = false> {
  readonly opcode: K;
  /** True when the kernel expects no reply (see isNoReply). */
  readonly noReply: N;
  /** The request header: unique, nodeid, uid, gid, pid, total_extlen... */
  readonly header: FuseInHeader;
  /**
   * Request extensions (decode with decodeExtensions): the last
   * header.total_extlen * 8 bytes, or for CREATE, MKNOD, MKDIR, SYMLINK and
   * TMPFILE at a negotiated minor of 36 or 37 the legacy security context
   * that followed the names. Undefined when there are none.
   */
  readonly ext: Buffer | undefined;
}

export interface LookupRequest extends RequestBase<FuseOpcode.FUSE_LOOKUP> {
  readonly name: Buffer;
}
export interface ForgetRequest extends RequestBase<FuseOpcode.FUSE_FORGET, true> {
  readonly arg: FuseForgetIn;
}
export interface GetattrRequest extends RequestBase<FuseOpcode.FUSE_GETATTR> {
  readonly arg: FuseGetattrIn;
}
export interface SetattrRequest extends RequestBase<FuseOpcode.FUSE_SETATTR> {
  readonly arg: FuseSetattrIn;
}
export interface ReadlinkRequest extends RequestBase<FuseOpcode.FUSE_READLINK> {}
export interface SymlinkRequest extends RequestBase<FuseOpcode.FUSE_SYMLINK> {
  /** Name of the new entry in the directory header.nodeid. */
  readonly name: Buffer;
  /** Contents of the symlink (its target). */
  readonly linkname: Buffer;
}
export interface MknodRequest extends RequestBase<FuseOpcode.FUSE_MKNOD> {
  readonly arg: FuseMknodIn;
  readonly name: Buffer;
}
export interface MkdirRequest extends RequestBase<FuseOpcode.FUSE_MKDIR> {
  readonly arg: FuseMkdirIn;
  readonly name: Buffer;
}
export interface UnlinkRequest<K extends FuseOpcode = FuseOpcode.FUSE_UNLINK | FuseOpcode.FUSE_RMDIR> extends RequestBase<K> {
  readonly name: Buffer;
}
export interface RenameRequest extends RequestBase<FuseOpcode.FUSE_RENAME> {
  readonly arg: FuseRenameIn;
  readonly oldname: Buffer;
  readonly newname: Buffer;
}
export interface Rename2Request extends RequestBase<FuseOpcode.FUSE_RENAME2> {
  readonly arg: FuseRename2In;
  readonly oldname: Buffer;
  readonly newname: Buffer;
}
export interface LinkRequest extends RequestBase<FuseOpcode.FUSE_LINK> {
  /** arg.oldnodeid is the inode to link; header.nodeid the new parent. */
  readonly arg: FuseLinkIn;
  readonly newname: Buffer;
}
export interface OpenRequest<K extends FuseOpcode = FuseOpcode.FUSE_OPEN | FuseOpcode.FUSE_OPENDIR> extends RequestBase<K> {
  readonly arg: FuseOpenIn;
}
export interface ReadRequest<
  K extends FuseOpcode = FuseOpcode.FUSE_READ | FuseOpcode.FUSE_READDIR | FuseOpcode.FUSE_READDIRPLUS,
> extends RequestBase<K> {
  readonly arg: FuseReadIn;
}
export interface WriteRequest extends RequestBase<FuseOpcode.FUSE_WRITE> {
  readonly arg: FuseWriteIn;
  /**
   * Exactly arg.size bytes: one view, or (decodeRequestSegments) the guest segments the data spans,
   * left in guest memory.
   */
  readonly data: Bytes;
}
export interface StatfsRequest extends RequestBase<FuseOpcode.FUSE_STATFS> {}
export interface ReleaseRequest<K extends FuseOpcode = FuseOpcode.FUSE_RELEASE | FuseOpcode.FUSE_RELEASEDIR> extends RequestBase<K> {
  readonly arg: FuseReleaseIn;
}
export interface FsyncRequest<K extends FuseOpcode = FuseOpcode.FUSE_FSYNC | FuseOpcode.FUSE_FSYNCDIR> extends RequestBase<K> {
  readonly arg: FuseFsyncIn;
}
export interface SetxattrRequest extends RequestBase<FuseOpcode.FUSE_SETXATTR> {
  /** setxattr_flags is 0 unless FUSE_SETXATTR_EXT was negotiated. */
  readonly arg: FuseSetxattrIn;
  readonly name: Buffer;
  /** Exactly arg.size bytes. */
  readonly value: Buffer;
}
export interface GetxattrRequest extends RequestBase<FuseOpcode.FUSE_GETXATTR> {
  /** arg.size 0 asks for the value's size (reply with encodeXattrSizeReply). */
  readonly arg: FuseGetxattrIn;
  readonly name: Buffer;
}
export interface ListxattrRequest extends RequestBase<FuseOpcode.FUSE_LISTXATTR> {
  readonly arg: FuseGetxattrIn;
}
export interface RemovexattrRequest extends RequestBase<FuseOpcode.FUSE_REMOVEXATTR> {
  readonly name: Buffer;
}
export interface FlushRequest extends RequestBase<FuseOpcode.FUSE_FLUSH> {
  readonly arg: FuseFlushIn;
}
export interface InitRequest extends RequestBase<FuseOpcode.FUSE_INIT> {
  /**
   * Fields an older kernel did not send are 0 (max_readahead and flags before
   * 7.6, flags2 before 7.36). Use joinInitFlags(arg) for the 64-bit flags.
   */
  readonly arg: FuseInitIn;
}
export interface LkRequest<
  K extends FuseOpcode = FuseOpcode.FUSE_GETLK | FuseOpcode.FUSE_SETLK | FuseOpcode.FUSE_SETLKW,
> extends RequestBase<K> {
  readonly arg: FuseLkIn;
}
export interface AccessRequest extends RequestBase<FuseOpcode.FUSE_ACCESS> {
  readonly arg: FuseAccessIn;
}
export interface CreateRequest extends RequestBase<FuseOpcode.FUSE_CREATE> {
  /** Before 7.12 only flags and mode were sent; umask and open_flags are 0. */
  readonly arg: FuseCreateIn;
  readonly name: Buffer;
}
export interface TmpfileRequest extends RequestBase<FuseOpcode.FUSE_TMPFILE> {
  readonly arg: FuseCreateIn;
  /** The kernel's placeholder dentry name, "/" in practice; meaningless. */
  readonly name: Buffer;
}
export interface InterruptRequest extends RequestBase<FuseOpcode.FUSE_INTERRUPT, true> {
  readonly arg: FuseInterruptIn;
}
export interface BmapRequest extends RequestBase<FuseOpcode.FUSE_BMAP> {
  readonly arg: FuseBmapIn;
}
export interface DestroyRequest extends RequestBase<FuseOpcode.FUSE_DESTROY> {}
export interface IoctlRequest extends RequestBase<FuseOpcode.FUSE_IOCTL> {
  readonly arg: FuseIoctlIn;
  /** Exactly arg.in_size bytes of input data. */
  readonly data: Buffer;
}
export interface PollRequest extends RequestBase<FuseOpcode.FUSE_POLL> {
  readonly arg: FusePollIn;
}
export interface NotifyReplyRequest extends RequestBase<FuseOpcode.FUSE_NOTIFY_REPLY, true> {
  /** header.unique is the notify_unique of the FUSE_NOTIFY_RETRIEVE answered. */
  readonly arg: FuseNotifyRetrieveIn;
  /** Exactly arg.size bytes of cached file data. */
  readonly data: Buffer;
}
export interface BatchForgetRequest extends RequestBase<FuseOpcode.FUSE_BATCH_FORGET, true> {
  readonly arg: FuseBatchForgetIn;
  /** arg.count entries. */
  readonly forgets: FuseForgetOne[];
}
export interface FallocateRequest extends RequestBase<FuseOpcode.FUSE_FALLOCATE> {
  readonly arg: FuseFallocateIn;
}
export interface LseekRequest extends RequestBase<FuseOpcode.FUSE_LSEEK> {
  readonly arg: FuseLseekIn;
}
export interface CopyFileRangeRequest extends RequestBase<FuseOpcode.FUSE_COPY_FILE_RANGE> {
  readonly arg: FuseCopyFileRangeIn;
}
export interface SetupmappingRequest extends RequestBase<FuseOpcode.FUSE_SETUPMAPPING> {
  readonly arg: FuseSetupmappingIn;
}
export interface RemovemappingRequest extends RequestBase<FuseOpcode.FUSE_REMOVEMAPPING> {
  readonly arg: FuseRemovemappingIn;
  /** arg.count entries. */
  readonly mappings: FuseRemovemappingOne[];
}
export interface SyncfsRequest extends RequestBase<FuseOpcode.FUSE_SYNCFS> {}
export interface CuseInitRequest extends RequestBase<FuseOpcode.CUSE_INIT> {
  readonly arg: CuseInitIn;
}

/** Every decodable request, discriminated by `opcode`. */
export type DecodedRequest =
  | LookupRequest
  | ForgetRequest
  | GetattrRequest
  | SetattrRequest
  | ReadlinkRequest
  | SymlinkRequest
  | MknodRequest
  | MkdirRequest
  | UnlinkRequest<FuseOpcode.FUSE_UNLINK>
  | UnlinkRequest<FuseOpcode.FUSE_RMDIR>
  | RenameRequest
  | LinkRequest
  | OpenRequest<FuseOpcode.FUSE_OPEN>
  | ReadRequest<FuseOpcode.FUSE_READ>
  | WriteRequest
  | StatfsRequest
  | ReleaseRequest<FuseOpcode.FUSE_RELEASE>
  | FsyncRequest<FuseOpcode.FUSE_FSYNC>
  | SetxattrRequest
  | GetxattrRequest
  | ListxattrRequest
  | RemovexattrRequest
  | FlushRequest
  | InitRequest
  | OpenRequest<FuseOpcode.FUSE_OPENDIR>
  | ReadRequest<FuseOpcode.FUSE_READDIR>
  | ReleaseRequest<FuseOpcode.FUSE_RELEASEDIR>
  | FsyncRequest<FuseOpcode.FUSE_FSYNCDIR>
  | LkRequest<FuseOpcode.FUSE_GETLK>
  | LkRequest<FuseOpcode.FUSE_SETLK>
  | LkRequest<FuseOpcode.FUSE_SETLKW>
  | AccessRequest
  | CreateRequest
  | InterruptRequest
  | BmapRequest
  | DestroyRequest
  | IoctlRequest
  | PollRequest
  | NotifyReplyRequest
  | BatchForgetRequest
  | FallocateRequest
  | ReadRequest<FuseOpcode.FUSE_READDIRPLUS>
  | Rename2Request
  | LseekRequest
  | CopyFileRangeRequest
  | SetupmappingRequest
  | RemovemappingRequest
  | SyncfsRequest
  | TmpfileRequest
  | CuseInitRequest;

/** The request type of one opcode, e.g. RequestOf<FuseOpcode.FUSE_READ>. */
export type RequestOf<K extends FuseOpcode> = Extract<DecodedRequest, { opcode: K }>;

// ---------------------------------------------------------------------------
// Parsing

const DEFAULT_OPTIONS: DecodeOptions = {};
const SLASH = 0x2f;

/** Scratch for the compat paths where the kernel sent a struct shorter than ours. */
const scratch = new Uint8Array(64);
const scratchView = new DataView(scratch.buffer);

/**
 * Cursor over one request's argument area; throws FuseDecodeError. What it returns owns its bytes
 * (names, values and extensions are copies): the area may be guest memory, which the guest can change
 * after a name was checked, and a view of it posted to a worker would carry the whole of guest RAM.
 */
class Parser {
  /** Position in `buf`. */
  pos: number;
  ext: Buffer | undefined;

  constructor(
    readonly buf: Uint8Array,
    readonly view: DataView,
    readonly header: FuseInHeader,
    /** Where the argument area starts in `buf`: after the header, or 0 when the header came apart. */
    start: number,
    /** End of the argument area (start of the extensions). */
    readonly end: number,
    readonly minor: number,
    readonly opts: DecodeOptions,
  ) {
    this.pos = start;
    this.ext = end < buf.length ? Buffer.from(buf.subarray(end)) : undefined;
  }

  fail(errno: number, detail: string): never {
    const op = this.header.opcode;
    throw new FuseDecodeError(errno, detail, this.header.unique, op, isNoReply(op));
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  /** Reads `size` bytes as `layout`; a size below layout.size zero-fills the rest. */
  struct<T>(layout: Struct<T, never>, size: number = layout.size): T {
    if (this.remaining < size) {
      this.fail(EINVAL, `truncated ${layout.name}: ${this.remaining} of ${size} bytes`);
    }
    let value: T;
    if (size === layout.size) {
      value = layout.read(this.view, this.buf.byteOffset + this.pos);
    } else {
      scratch.fill(0);
      scratch.set(this.buf.subarray(this.pos, this.pos + size));
      value = layout.read(scratchView, 0);
    }
    this.pos += size;
    return value;
  }

  /** A NUL-terminated string within the argument area (without its NUL). */
  cstring(what: string): Buffer {
    const nul = this.buf.indexOf(0, this.pos);
    if (nul < 0 || nul >= this.end) this.fail(EINVAL, `${what} is not NUL-terminated`);
    const s = Buffer.from(this.buf.subarray(this.pos, nul));
    this.pos = nul + 1;
    return s;
  }

  /** A directory entry name: 1..FUSE_NAME_MAX bytes, no '/'. */
  entryName(what: string): Buffer {
    const name = this.cstring(what);
    if (name.length === 0) this.fail(EINVAL, `empty ${what}`);
    if (name.length > FUSE_NAME_MAX) this.fail(ENAMETOOLONG, `${what} of ${name.length} bytes`);
    if (name.indexOf(SLASH) >= 0) this.fail(EINVAL, `${what} contains '/'`);
    return name;
  }

  /**
   * Exactly `size` bytes: the rest of the argument area, copied (`view`: a view of it, for a WRITE's
   * data, which goes to the file as it is and to a worker only through a slab).
   */
  data(size: number, what: string, view = false): Buffer {
    if (this.remaining !== size) this.fail(EINVAL, `${what}: ${this.remaining} bytes follow, size says ${size}`);
    const d = this.buf.subarray(this.pos, this.end);
    this.pos = this.end;
    return view ? Buffer.from(d.buffer, d.byteOffset, d.byteLength) : Buffer.from(d);
  }

  /** `count` fixed-size records filling the rest of the argument area. */
  records<T>(layout: Struct<T, never>, count: number): T[] {
    if (count * layout.size !== this.remaining) {
      this.fail(EINVAL, `count ${count} x ${layout.name} does not match ${this.remaining} bytes`);
    }
    const out: T[] = new Array<T>(count);
    const base = this.buf.byteOffset;
    for (let i = 0; i < count; i++) {
      out[i] = layout.read(this.view, base + this.pos);
      this.pos += layout.size;
    }
    return out;
  }

  /** Before 7.38 the security context of creating ops trailed the names unmarked. */
  legacySecctx(): void {
    if (this.ext === undefined && this.minor >= 36 && this.minor < 38 && this.pos < this.end) {
      this.ext = Buffer.from(this.buf.subarray(this.pos, this.end));
      this.pos = this.end;
    }
  }

  /** The arguments must fill the argument area exactly. */
  done(): void {
    if (this.pos !== this.end) this.fail(EINVAL, `${this.end - this.pos} unexpected trailing bytes`);
  }
}

type Decoder<K extends FuseOpcode> = (p: Parser) => RequestOf<K>;

/** Decoder for an opcode whose only argument is `layout`. */
function fixed<K extends FuseOpcode, T>(opcode: K, layout: Struct<T, never>) {
  return (p: Parser) => {
    const arg = p.struct(layout);
    p.done();
    return { opcode, noReply: false as const, header: p.header, ext: p.ext, arg };
  };
}

/** Decoder for an opcode without arguments. */
function bare<K extends FuseOpcode>(opcode: K) {
  return (p: Parser) => {
    p.done();
    return { opcode, noReply: false as const, header: p.header, ext: p.ext };
  };
}

function decodeInit(p: Parser): InitRequest {
  // The kernel sends sizeof(its fuse_init_in): 8 bytes before 7.6, 16 before
  // 7.36, then 64 with FUSE_INIT_EXT. Later kernels may send more: ignored.
  if (p.remaining < 8) p.fail(EINVAL, `truncated fuse_init_in: ${p.remaining} bytes`);
  const size = Math.min(p.remaining, fuse_init_in.size);
  const arg = p.struct(fuse_init_in, size);
  if (arg.major === FUSE_KERNEL_VERSION) {
    if (arg.minor >= 6 && size < 16) p.fail(EINVAL, `fuse_init_in of ${size} bytes for 7.${arg.minor}`);
    if ((BigInt(arg.flags) & FUSE_INIT_EXT) !== 0n && size < fuse_init_in.size) {
      p.fail(EINVAL, `FUSE_INIT_EXT with a fuse_init_in of ${size} bytes`);
    }
  }
  // Other majors: only major/minor matter (the reply just states our major).
  p.pos = p.end;
  return { opcode: FuseOpcode.FUSE_INIT, noReply: false, header: p.header, ext: p.ext, arg };
}

const DECODERS: { readonly [K in FuseOpcode]: Decoder<K> } = {
  [FuseOpcode.FUSE_LOOKUP]: (p) => {
    const name = p.entryName('name');
    p.done();
    return { opcode: FuseOpcode.FUSE_LOOKUP, noReply: false, header: p.header, ext: p.ext, name };
  },
  [FuseOpcode.FUSE_FORGET]: (p) => {
    const arg = p.struct(fuse_forget_in);
    p.done();
    return { opcode: FuseOpcode.FUSE_FORGET, noReply: true, header: p.header, ext: p.ext, arg };
  },
  [FuseOpcode.FUSE_GETATTR]: fixed(FuseOpcode.FUSE_GETATTR, fuse_getattr_in),
  [FuseOpcode.FUSE_SETATTR]: fixed(FuseOpcode.FUSE_SETATTR, fuse_setattr_in),
  [FuseOpcode.FUSE_READLINK]: bare(FuseOpcode.FUSE_READLINK),
  [FuseOpcode.FUSE_SYMLINK]: (p) => {
    const name = p.entryName('name');
    const linkname = p.cstring('link target');
    p.legacySecctx();
    p.done();
    return { opcode: FuseOpcode.FUSE_SYMLINK, noReply: false, header: p.header, ext: p.ext, name, linkname };
  },
  [FuseOpcode.FUSE_MKNOD]: (p) => {
    const arg = p.struct(fuse_mknod_in, p.minor < 12 ? FUSE_COMPAT_MKNOD_IN_SIZE : fuse_mknod_in.size);
    const name = p.entryName('name');
    p.legacySecctx();
    p.done();
    return { opcode: FuseOpcode.FUSE_MKNOD, noReply: false, header: p.header, ext: p.ext, arg, name };
  },
  [FuseOpcode.FUSE_MKDIR]: (p) => {
    const arg = p.struct(fuse_mkdir_in);
    const name = p.entryName('name');
    p.legacySecctx();
    p.done();
    return { opcode: FuseOpcode.FUSE_MKDIR, noReply: false, header: p.header, ext: p.ext, arg, name };
  },
  [FuseOpcode.FUSE_UNLINK]: (p) => {
    const name = p.entryName('name');
    p.done();
    return { opcode: FuseOpcode.FUSE_UNLINK, noReply: false, header: p.header, ext: p.ext, name };
  },
  [FuseOpcode.FUSE_RMDIR]: (p) => {
    const name = p.entryName('name');
    p.done();
    return { opcode: FuseOpcode.FUSE_RMDIR, noReply: false, header: p.header, ext: p.ext, name };
  },
  [FuseOpcode.FUSE_RENAME]: (p) => {
    const arg = p.struct(fuse_rename_in);
    const oldname = p.entryName('old name');
    const newname = p.entryName('new name');
    p.done();
    return { opcode: FuseOpcode.FUSE_RENAME, noReply: false, header: p.header, ext: p.ext, arg, oldname, newname };
  },
  [FuseOpcode.FUSE_LINK]: (p) => {
    const arg = p.struct(fuse_link_in);
    const newname = p.entryName('new name');
    p.done();
    return { opcode: FuseOpcode.FUSE_LINK, noReply: false, header: p.header, ext: p.ext, arg, newname };
  },
  [FuseOpcode.FUSE_OPEN]: fixed(FuseOpcode.FUSE_OPEN, fuse_open_in),
  [FuseOpcode.FUSE_READ]: fixed(FuseOpcode.FUSE_READ, fuse_read_in),
  [FuseOpcode.FUSE_WRITE]: (p) => {
    const arg = p.struct(fuse_write_in, p.minor < 9 ? FUSE_COMPAT_WRITE_IN_SIZE : fuse_write_in.size);
    const data = p.data(arg.size, 'write data', true);
    return { opcode: FuseOpcode.FUSE_WRITE, noReply: false, header: p.header, ext: p.ext, arg, data };
  },
  [FuseOpcode.FUSE_STATFS]: bare(FuseOpcode.FUSE_STATFS),
  [FuseOpcode.FUSE_RELEASE]: fixed(FuseOpcode.FUSE_RELEASE, fuse_release_in),
  [FuseOpcode.FUSE_FSYNC]: fixed(FuseOpcode.FUSE_FSYNC, fuse_fsync_in),
  [FuseOpcode.FUSE_SETXATTR]: (p) => {
    const arg = p.struct(fuse_setxattr_in, p.opts.setxattrExt ? fuse_setxattr_in.size : FUSE_COMPAT_SETXATTR_IN_SIZE);
    const name = p.cstring('xattr name');
    const value = p.data(arg.size, 'xattr value');
    return { opcode: FuseOpcode.FUSE_SETXATTR, noReply: false, header: p.header, ext: p.ext, arg, name, value };
  },
  [FuseOpcode.FUSE_GETXATTR]: (p) => {
    const arg = p.struct(fuse_getxattr_in);
    const name = p.cstring('xattr name');
    p.done();
    return { opcode: FuseOpcode.FUSE_GETXATTR, noReply: false, header: p.header, ext: p.ext, arg, name };
  },
  [FuseOpcode.FUSE_LISTXATTR]: fixed(FuseOpcode.FUSE_LISTXATTR, fuse_getxattr_in),
  [FuseOpcode.FUSE_REMOVEXATTR]: (p) => {
    const name = p.cstring('xattr name');
    p.done();
    return { opcode: FuseOpcode.FUSE_REMOVEXATTR, noReply: false, header: p.header, ext: p.ext, name };
  },
  [FuseOpcode.FUSE_FLUSH]: fixed(FuseOpcode.FUSE_FLUSH, fuse_flush_in),
  [FuseOpcode.FUSE_INIT]: decodeInit,
  [FuseOpcode.FUSE_OPENDIR]: fixed(FuseOpcode.FUSE_OPENDIR, fuse_open_in),
  [FuseOpcode.FUSE_READDIR]: fixed(FuseOpcode.FUSE_READDIR, fuse_read_in),
  [FuseOpcode.FUSE_RELEASEDIR]: fixed(FuseOpcode.FUSE_RELEASEDIR, fuse_release_in),
  [FuseOpcode.FUSE_FSYNCDIR]: fixed(FuseOpcode.FUSE_FSYNCDIR, fuse_fsync_in),
  [FuseOpcode.FUSE_GETLK]: fixed(FuseOpcode.FUSE_GETLK, fuse_lk_in),
  [FuseOpcode.FUSE_SETLK]: fixed(FuseOpcode.FUSE_SETLK, fuse_lk_in),
  [FuseOpcode.FUSE_SETLKW]: fixed(FuseOpcode.FUSE_SETLKW, fuse_lk_in),
  [FuseOpcode.FUSE_ACCESS]: fixed(FuseOpcode.FUSE_ACCESS, fuse_access_in),
  [FuseOpcode.FUSE_CREATE]: (p) => {
    // Before 7.12 the kernel sent a fuse_open_in-sized prefix (flags, mode).
    const arg = p.struct(fuse_create_in, p.minor < 12 ? fuse_open_in.size : fuse_create_in.size);
    const name = p.entryName('name');
    p.legacySecctx();
    p.done();
    return { opcode: FuseOpcode.FUSE_CREATE, noReply: false, header: p.header, ext: p.ext, arg, name };
  },
  [FuseOpcode.FUSE_INTERRUPT]: (p) => {
    const arg = p.struct(fuse_interrupt_in);
    p.done();
    return { opcode: FuseOpcode.FUSE_INTERRUPT, noReply: true, header: p.header, ext: p.ext, arg };
  },
  [FuseOpcode.FUSE_BMAP]: fixed(FuseOpcode.FUSE_BMAP, fuse_bmap_in),
  [FuseOpcode.FUSE_DESTROY]: bare(FuseOpcode.FUSE_DESTROY),
  [FuseOpcode.FUSE_IOCTL]: (p) => {
    const arg = p.struct(fuse_ioctl_in);
    const data = p.data(arg.in_size, 'ioctl input');
    return { opcode: FuseOpcode.FUSE_IOCTL, noReply: false, header: p.header, ext: p.ext, arg, data };
  },
  [FuseOpcode.FUSE_POLL]: fixed(FuseOpcode.FUSE_POLL, fuse_poll_in),
  [FuseOpcode.FUSE_NOTIFY_REPLY]: (p) => {
    const arg = p.struct(fuse_notify_retrieve_in);
    const data = p.data(arg.size, 'retrieved data');
    return { opcode: FuseOpcode.FUSE_NOTIFY_REPLY, noReply: true, header: p.header, ext: p.ext, arg, data };
  },
  [FuseOpcode.FUSE_BATCH_FORGET]: (p) => {
    const arg = p.struct(fuse_batch_forget_in);
    const forgets = p.records(fuse_forget_one, arg.count);
    return { opcode: FuseOpcode.FUSE_BATCH_FORGET, noReply: true, header: p.header, ext: p.ext, arg, forgets };
  },
  [FuseOpcode.FUSE_FALLOCATE]: fixed(FuseOpcode.FUSE_FALLOCATE, fuse_fallocate_in),
  [FuseOpcode.FUSE_READDIRPLUS]: fixed(FuseOpcode.FUSE_READDIRPLUS, fuse_read_in),
  [FuseOpcode.FUSE_RENAME2]: (p) => {
    const arg = p.struct(fuse_rename2_in);
    const oldname = p.entryName('old name');
    const newname = p.entryName('new name');
    p.done();
    return { opcode: FuseOpcode.FUSE_RENAME2, noReply: false, header: p.header, ext: p.ext, arg, oldname, newname };
  },
  [FuseOpcode.FUSE_LSEEK]: fixed(FuseOpcode.FUSE_LSEEK, fuse_lseek_in),
  [FuseOpcode.FUSE_COPY_FILE_RANGE]: fixed(FuseOpcode.FUSE_COPY_FILE_RANGE, fuse_copy_file_range_in),
  [FuseOpcode.FUSE_SETUPMAPPING]: fixed(FuseOpcode.FUSE_SETUPMAPPING, fuse_setupmapping_in),
  [FuseOpcode.FUSE_REMOVEMAPPING]: (p) => {
    // The records follow the 4-byte fuse_removemapping_in, unaligned.
    const arg = p.struct(fuse_removemapping_in);
    const mappings = p.records(fuse_removemapping_one, arg.count);
    return { opcode: FuseOpcode.FUSE_REMOVEMAPPING, noReply: false, header: p.header, ext: p.ext, arg, mappings };
  },
  [FuseOpcode.FUSE_SYNCFS]: (p) => {
    p.struct(fuse_syncfs_in); // padding only
    p.done();
    return { opcode: FuseOpcode.FUSE_SYNCFS, noReply: false, header: p.header, ext: p.ext };
  },
  [FuseOpcode.FUSE_TMPFILE]: (p) => {
    const arg = p.struct(fuse_create_in);
    const name = p.cstring('name');
    p.legacySecctx();
    p.done();
    return { opcode: FuseOpcode.FUSE_TMPFILE, noReply: false, header: p.header, ext: p.ext, arg, name };
  },
  [FuseOpcode.CUSE_INIT]: fixed(FuseOpcode.CUSE_INIT, cuse_init_in),
};

/** Dense dispatch table indexed by opcode. */
const TABLE: ((p: Parser) => DecodedRequest)[] = [];
for (const [k, d] of Object.entries(DECODERS) as [string, (p: Parser) => DecodedRequest][]) TABLE[Number(k)] = d;

/**
 * Decodes one request; returns the FuseDecodeError instead of throwing it.
 * Never throws for any input bytes.
 */
export function tryDecodeRequest(bytes: Uint8Array, opts: DecodeOptions = DEFAULT_OPTIONS): DecodedRequest | FuseDecodeError {
  const total = bytes.byteLength;
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, total);
  if (total < fuse_in_header.size) return shortHeader(buf);
  const view = viewOf(buf);
  return decodeArgs(fuse_in_header.read(view, buf.byteOffset), total, buf, view, fuse_in_header.size, opts);
}

/** The arguments after a decoded header: in `buf` from `start` to its end (the request is `total` bytes). */
function decodeArgs(header: FuseInHeader, total: number, buf: Uint8Array, view: DataView, start: number, opts: DecodeOptions): DecodedRequest | FuseDecodeError {
  const { opcode, unique } = header;
  if (header.len !== total) {
    return new FuseDecodeError(EINVAL, `len ${header.len} != ${total} bytes received`, unique, opcode, isNoReply(opcode), 'bad header');
  }
  const decoder = opcode < TABLE.length ? TABLE[opcode] : undefined;
  if (decoder === undefined) {
    return new FuseDecodeError(ENOSYS, 'unknown opcode', unique, opcode, false, 'unknown opcode');
  }
  const extBytes = header.total_extlen * 8;
  if (extBytes > total - fuse_in_header.size) {
    return new FuseDecodeError(EINVAL, `total_extlen ${header.total_extlen} exceeds the request`, unique, opcode, isNoReply(opcode), 'bad header');
  }
  const p = new Parser(buf, view, header, start, buf.length - extBytes, opts.minor ?? FUSE_KERNEL_MINOR_VERSION, opts);
  try {
    return decoder(p);
  } catch (e) {
    if (e instanceof FuseDecodeError) return e;
    throw e;
  }
}

/**
 * A request shorter than fuse_in_header: answerable (EINVAL) when its unique (bytes 8-15) is there,
 * so that the driver can match the reply to the request; else there is nothing to answer. Its
 * opcode (bytes 4-7) says whether a reply is expected at all.
 */
function shortHeader(buf: Buffer): FuseDecodeError {
  const detail = `${buf.length} bytes cannot hold fuse_in_header`;
  if (buf.length < UNIQUE_END) return new FuseDecodeError(EINVAL, detail, undefined, undefined, false, 'short header');
  const opcode = buf.readUInt32LE(4);
  return new FuseDecodeError(EINVAL, detail, buf.readBigUInt64LE(8), opcode, isNoReply(opcode), 'short header');
}

/** fuse_in_header's unique ends at byte 16 (after len and opcode). */
const UNIQUE_END = 16;

const WRITE_HEAD = fuse_in_header.size + fuse_write_in.size;

/**
 * Decodes a request given as the segments of a descriptor chain's readable part: as one buffer (a copy
 * when there are several), except a WRITE, whose data is left in the segments after its 80-byte head
 * (the Linux driver puts the header, fuse_write_in and each page of data in descriptors of their own).
 * Throws FuseDecodeError if it is malformed.
 */
export function decodeRequestSegments(segments: readonly Uint8Array[], opts: DecodeOptions = DEFAULT_OPTIONS): DecodedRequest {
  if (segments.length === 1) return decodeRequest(segments[0], opts);
  // (No segment at all falls through both tests below to the whole decoder: a short header.)
  const first = segments[0];
  // The Linux driver's layout: the header in a descriptor of its own, then the arguments. With them
  // in one more segment, nothing is copied: the header is read from the first, the rest from the second.
  if (segments.length === 2 && first.byteLength === fuse_in_header.size) {
    const rest = segments[1];
    const r = decodeArgs(fuse_in_header.read(viewOf(first), first.byteOffset), fuse_in_header.size + rest.byteLength, rest, viewOf(rest), 0, opts);
    if (r instanceof FuseDecodeError) throw r;
    return r;
  }
  const total = viewsLength(segments);
  if (total > WRITE_HEAD && (opts.minor ?? FUSE_KERNEL_MINOR_VERSION) >= 9) {
    // The 80-byte head read in place when the header and fuse_write_in have a descriptor each (as Linux
    // sends a WRITE, its pages after them), else joined from however the segments cut it.
    const inPlace = first.byteLength === fuse_in_header.size && segments[1].byteLength === fuse_write_in.size;
    const head = inPlace ? first : Buffer.concat(sliceViews(segments, 0, WRITE_HEAD));
    const header = fuse_in_header.read(viewOf(head), head.byteOffset);
    if (header.opcode === FuseOpcode.FUSE_WRITE && header.len === total && header.total_extlen === 0) {
      const argBytes = inPlace ? segments[1] : head.subarray(fuse_in_header.size);
      const arg = fuse_write_in.read(viewOf(argBytes), argBytes.byteOffset);
      // Anything inconsistent is left to the whole-buffer decoder, which says what is wrong.
      if (arg.size === total - WRITE_HEAD) {
        const data = inPlace ? segments.slice(2) : sliceViews(segments, WRITE_HEAD, arg.size);
        return { opcode: FuseOpcode.FUSE_WRITE, noReply: false, header, ext: undefined, arg, data };
      }
    }
  }
  return decodeRequest(Buffer.concat(segments, total), opts);
}

/** Decodes one request; throws FuseDecodeError if it is malformed. */
export function decodeRequest(bytes: Uint8Array, opts?: DecodeOptions): DecodedRequest {
  const r = tryDecodeRequest(bytes, opts);
  if (r instanceof FuseDecodeError) throw r;
  return r;
}

/** A name from a request as a string (UTF-8, invalid sequences replaced). */
export function nameToString(name: Uint8Array): string {
  return Buffer.from(name.buffer, name.byteOffset, name.byteLength).toString('utf8');
}
