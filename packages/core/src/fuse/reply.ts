/**
 * Encoding of FUSE replies (server -> kernel): fuse_out_header followed by the
 * opcode's reply struct or data.
 *
 * Every encoder writes into caller-supplied memory (for virtio-fs: the
 * device-writable buffer in guest memory) at `offset`, returns the number of
 * bytes written, which is also the fuse_out_header.len it wrote, and throws a
 * RangeError, before writing anything, if that does not fit in `bytes`.
 * Padding is always written as zeros.
 *
 * Which reply goes with which request (kernel fs/fuse):
 *   LOOKUP MKNOD MKDIR SYMLINK LINK   encodeEntryReply (nodeid 0 = negative entry)
 *   CREATE TMPFILE                    encodeCreateReply
 *   GETATTR SETATTR                   encodeAttrReply
 *   OPEN OPENDIR                      encodeOpenReply
 *   READ READLINK                     encodeDataReply / encodeDataReplyHeader
 *   READDIR READDIRPLUS               encodeReaddirReply / encodeReaddirplusReply (dirent.ts)
 *   WRITE COPY_FILE_RANGE             encodeWriteReply
 *   STATFS                            encodeStatfsReply
 *   GETXATTR LISTXATTR                encodeXattrSizeReply when arg.size is 0,
 *                                     else encodeDataReply (ERANGE if too small)
 *   GETLK                             encodeLkReply
 *   INIT / CUSE_INIT                  encodeInitReply / encodeCuseInitReply
 *   BMAP LSEEK POLL IOCTL             encodeBmapReply encodeLseekReply encodePollReply encodeIoctlReply
 *   everything else (SETLK, RELEASE, FLUSH, FSYNC, UNLINK, RENAME, ACCESS,
 *   SETXATTR, FALLOCATE, SETUPMAPPING, SYNCFS, DESTROY, ...)  encodeEmptyReply
 *   FORGET BATCH_FORGET NOTIFY_REPLY  no reply at all
 *   INTERRUPT                         nothing, or encodeErrorReply(EAGAIN | ENOSYS)
 */
import { checkRange, viewOf, type Struct } from './layout';
import { CUSE_INIT_INFO_MAX, FUSE_KERNEL_MINOR_VERSION, FuseNotifyCode } from './opcodes';
import {
  cuse_init_out,
  FUSE_COMPAT_22_INIT_OUT_SIZE,
  FUSE_COMPAT_ATTR_OUT_SIZE,
  FUSE_COMPAT_ENTRY_OUT_SIZE,
  FUSE_COMPAT_INIT_OUT_SIZE,
  FUSE_COMPAT_STATFS_SIZE,
  fuse_attr_out,
  fuse_bmap_out,
  fuse_entry_out,
  fuse_file_lock,
  fuse_getxattr_out,
  fuse_init_out,
  fuse_ioctl_out,
  fuse_kstatfs,
  fuse_lseek_out,
  fuse_open_out,
  fuse_out_header,
  fuse_poll_out,
  fuse_write_out,
  type CuseInitOut,
  type FuseAttrOutReply,
  type FuseEntryOutReply,
  type FuseFileLock,
  type FuseInitOut,
  type FuseIoctlOut,
  type FuseKstatfs,
  type FuseOpenOut,
} from './structs';

/** sizeof(struct fuse_out_header). */
export const OUT_HEADER_SIZE = 16;

/** Errors the kernel accepts in a reply: 1..511 (it rejects -ERESTARTSYS and below). */
const MAX_ERRNO = 511;

/** Scratch for compat replies that are a prefix of the full struct. */
const scratch = new Uint8Array(128);
const scratchView = new DataView(scratch.buffer);

/**
 * Writes a fuse_out_header. Low level: no bounds check, `pos` is absolute in
 * `view` (see viewOf). `error` is 0, -errno, or a notify code.
 */
export function writeOutHeader(view: DataView, pos: number, len: number, error: number, unique: bigint): void {
  view.setUint32(pos, len, true);
  view.setInt32(pos + 4, error, true);
  view.setBigUint64(pos + 8, unique, true);
}

/** Error reply: a bare fuse_out_header with error = -errno (errno positive, 1..511). */
export function encodeErrorReply(bytes: Uint8Array, offset: number, unique: bigint, errno: number): number {
  if (!Number.isInteger(errno) || errno < 1 || errno > MAX_ERRNO) {
    throw new RangeError(`errno ${errno} is not in 1..${MAX_ERRNO}`);
  }
  checkRange(bytes, offset, OUT_HEADER_SIZE, 'error reply');
  writeOutHeader(viewOf(bytes), bytes.byteOffset + offset, OUT_HEADER_SIZE, -errno, unique);
  return OUT_HEADER_SIZE;
}

/** Success without a body. */
export function encodeEmptyReply(bytes: Uint8Array, offset: number, unique: bigint): number {
  checkRange(bytes, offset, OUT_HEADER_SIZE, 'reply');
  writeOutHeader(viewOf(bytes), bytes.byteOffset + offset, OUT_HEADER_SIZE, 0, unique);
  return OUT_HEADER_SIZE;
}

/**
 * Only the header of a success reply whose `bodyLen` bytes the caller writes
 * (or already wrote) itself at offset + OUT_HEADER_SIZE, e.g. a READ that
 * preadv()s straight into guest memory.
 */
export function encodeDataReplyHeader(bytes: Uint8Array, offset: number, unique: bigint, bodyLen: number): number {
  const len = OUT_HEADER_SIZE + bodyLen;
  checkRange(bytes, offset, len, 'reply');
  writeOutHeader(viewOf(bytes), bytes.byteOffset + offset, len, 0, unique);
  return len;
}

/**
 * The out header alone of a success whose body (bodyLen bytes) is already in place after it (a READ
 * read straight into guest memory): only the header's 16 bytes need room in `bytes`.
 */
export function encodeHeaderOfPlacedReply(bytes: Uint8Array, offset: number, unique: bigint, bodyLen: number): number {
  checkRange(bytes, offset, OUT_HEADER_SIZE, 'reply');
  writeOutHeader(viewOf(bytes), bytes.byteOffset + offset, OUT_HEADER_SIZE + bodyLen, 0, unique);
  return OUT_HEADER_SIZE + bodyLen;
}

/** Success with raw bytes as body (READ, READLINK, GETXATTR/LISTXATTR values). */
export function encodeDataReply(bytes: Uint8Array, offset: number, unique: bigint, data: Uint8Array): number {
  const len = encodeDataReplyHeader(bytes, offset, unique, data.byteLength);
  bytes.set(data, offset + OUT_HEADER_SIZE);
  return len;
}

/**
 * Success with one struct as body, optionally truncated to `size` bytes (the
 * FUSE_COMPAT_* sizes are prefixes of the current structs).
 */
export function encodeStructReply<T>(
  bytes: Uint8Array,
  offset: number,
  unique: bigint,
  layout: Struct<unknown, T>,
  value: T,
  size: number = layout.size,
): number {
  const len = OUT_HEADER_SIZE + size;
  checkRange(bytes, offset, len, `${layout.name} reply`);
  const view = viewOf(bytes);
  const pos = bytes.byteOffset + offset;
  writeOutHeader(view, pos, len, 0, unique);
  if (size === layout.size) {
    layout.write(view, pos + OUT_HEADER_SIZE, value);
  } else {
    if (size > layout.size || layout.size > scratch.length) throw new RangeError(`bad size ${size} for ${layout.name}`);
    layout.write(scratchView, 0, value);
    bytes.set(scratch.subarray(0, size), offset + OUT_HEADER_SIZE);
  }
  return len;
}

/**
 * A struct reply in the Linux driver's layout: the out header in a buffer of its own (`header`, exactly
 * OUT_HEADER_SIZE bytes) and the whole struct at the start of `body`; nothing is copied. Returns the
 * reply's length, or -1 (nothing written) when the buffers are not of that shape.
 */
export function encodeStructReplyParts<T>(header: Uint8Array, body: Uint8Array, unique: bigint, layout: Struct<unknown, T>, value: T): number {
  if (header.byteLength !== OUT_HEADER_SIZE || body.byteLength < layout.size) return -1;
  const len = OUT_HEADER_SIZE + layout.size;
  writeOutHeader(viewOf(header), header.byteOffset, len, 0, unique);
  layout.write(viewOf(body), body.byteOffset, value);
  return len;
}

/** Bytes of fuse_entry_out the kernel expects at negotiated `minor` (below 7.9, the compat size). */
export function entryOutSize(minor: number): number {
  return minor < 9 ? FUSE_COMPAT_ENTRY_OUT_SIZE : fuse_entry_out.size;
}

/** Bytes of fuse_attr_out the kernel expects at negotiated `minor` (below 7.9, the compat size). */
export function attrOutSize(minor: number): number {
  return minor < 9 ? FUSE_COMPAT_ATTR_OUT_SIZE : fuse_attr_out.size;
}

/**
 * LOOKUP, MKNOD, MKDIR, SYMLINK, LINK. `minor` is the negotiated minor:
 * below 7.9 the kernel expects FUSE_COMPAT_ENTRY_OUT_SIZE bytes.
 */
export function encodeEntryReply(
  bytes: Uint8Array,
  offset: number,
  unique: bigint,
  entry: FuseEntryOutReply,
  minor: number = FUSE_KERNEL_MINOR_VERSION,
): number {
  return encodeStructReply(bytes, offset, unique, fuse_entry_out, entry, entryOutSize(minor));
}

/** GETATTR, SETATTR. Below 7.9 the kernel expects FUSE_COMPAT_ATTR_OUT_SIZE bytes. */
export function encodeAttrReply(
  bytes: Uint8Array,
  offset: number,
  unique: bigint,
  attr: FuseAttrOutReply,
  minor: number = FUSE_KERNEL_MINOR_VERSION,
): number {
  return encodeStructReply(bytes, offset, unique, fuse_attr_out, attr, attrOutSize(minor));
}

/** OPEN, OPENDIR. */
export function encodeOpenReply(bytes: Uint8Array, offset: number, unique: bigint, open: FuseOpenOut): number {
  return encodeStructReply(bytes, offset, unique, fuse_open_out, open);
}

/** CREATE, TMPFILE: fuse_entry_out immediately followed by fuse_open_out. */
export function encodeCreateReply(
  bytes: Uint8Array,
  offset: number,
  unique: bigint,
  entry: FuseEntryOutReply,
  open: FuseOpenOut,
): number {
  const len = OUT_HEADER_SIZE + fuse_entry_out.size + fuse_open_out.size;
  checkRange(bytes, offset, len, 'create reply');
  const view = viewOf(bytes);
  const pos = bytes.byteOffset + offset;
  writeOutHeader(view, pos, len, 0, unique);
  fuse_entry_out.write(view, pos + OUT_HEADER_SIZE, entry);
  fuse_open_out.write(view, pos + OUT_HEADER_SIZE + fuse_entry_out.size, open);
  return len;
}

/** WRITE, COPY_FILE_RANGE: the number of bytes written. */
export function encodeWriteReply(bytes: Uint8Array, offset: number, unique: bigint, size: number): number {
  return encodeStructReply(bytes, offset, unique, fuse_write_out, { size });
}

/** STATFS (fuse_statfs_out). Below 7.4 the kernel expects FUSE_COMPAT_STATFS_SIZE bytes. */
export function encodeStatfsReply(
  bytes: Uint8Array,
  offset: number,
  unique: bigint,
  st: FuseKstatfs,
  minor: number = FUSE_KERNEL_MINOR_VERSION,
): number {
  const size = minor < 4 ? FUSE_COMPAT_STATFS_SIZE : fuse_kstatfs.size;
  return encodeStructReply(bytes, offset, unique, fuse_kstatfs, st, size);
}

/** GETXATTR / LISTXATTR with arg.size 0: the size the value (or list) needs. */
export function encodeXattrSizeReply(bytes: Uint8Array, offset: number, unique: bigint, size: number): number {
  return encodeStructReply(bytes, offset, unique, fuse_getxattr_out, { size });
}

/** GETLK (fuse_lk_out). */
export function encodeLkReply(bytes: Uint8Array, offset: number, unique: bigint, lk: FuseFileLock): number {
  return encodeStructReply(bytes, offset, unique, fuse_file_lock, lk);
}

/** BMAP (fuse_bmap_out). */
export function encodeBmapReply(bytes: Uint8Array, offset: number, unique: bigint, block: bigint): number {
  return encodeStructReply(bytes, offset, unique, fuse_bmap_out, { block });
}

/** LSEEK (fuse_lseek_out). */
export function encodeLseekReply(bytes: Uint8Array, offset: number, unique: bigint, off: bigint): number {
  return encodeStructReply(bytes, offset, unique, fuse_lseek_out, { offset: off });
}

/** POLL (fuse_poll_out). */
export function encodePollReply(bytes: Uint8Array, offset: number, unique: bigint, revents: number): number {
  return encodeStructReply(bytes, offset, unique, fuse_poll_out, { revents });
}

/**
 * IOCTL: fuse_ioctl_out then `data`, which is the output data (at most
 * arg.out_size bytes), or with FUSE_IOCTL_RETRY the in_iovs + out_iovs
 * fuse_ioctl_iovec records.
 */
export function encodeIoctlReply(
  bytes: Uint8Array,
  offset: number,
  unique: bigint,
  out: FuseIoctlOut,
  data?: Uint8Array,
): number {
  const dataLen = data === undefined ? 0 : data.byteLength;
  const len = OUT_HEADER_SIZE + fuse_ioctl_out.size + dataLen;
  checkRange(bytes, offset, len, 'ioctl reply');
  const view = viewOf(bytes);
  const pos = bytes.byteOffset + offset;
  writeOutHeader(view, pos, len, 0, unique);
  fuse_ioctl_out.write(view, pos + OUT_HEADER_SIZE, out);
  if (data !== undefined) bytes.set(data, offset + OUT_HEADER_SIZE + fuse_ioctl_out.size);
  return len;
}

/**
 * INIT. The size depends on the *kernel's* minor from fuse_init_in (as in
 * libfuse): 8 bytes below 7.5, 24 below 7.23, else the full 64. To set 64-bit
 * flags use splitInitFlags() for out.flags / out.flags2.
 */
export function encodeInitReply(
  bytes: Uint8Array,
  offset: number,
  unique: bigint,
  out: FuseInitOut,
  kernelMinor: number,
): number {
  const size =
    kernelMinor < 5 ? FUSE_COMPAT_INIT_OUT_SIZE : kernelMinor < 23 ? FUSE_COMPAT_22_INIT_OUT_SIZE : fuse_init_out.size;
  return encodeStructReply(bytes, offset, unique, fuse_init_out, out, size);
}

/** CUSE_INIT: cuse_init_out then the device info strings ("DEVNAME=...\0"). */
export function encodeCuseInitReply(
  bytes: Uint8Array,
  offset: number,
  unique: bigint,
  out: CuseInitOut,
  devInfo: Uint8Array,
): number {
  if (devInfo.byteLength > CUSE_INIT_INFO_MAX) throw new RangeError(`CUSE device info over ${CUSE_INIT_INFO_MAX} bytes`);
  const len = OUT_HEADER_SIZE + cuse_init_out.size + devInfo.byteLength;
  checkRange(bytes, offset, len, 'cuse init reply');
  const view = viewOf(bytes);
  const pos = bytes.byteOffset + offset;
  writeOutHeader(view, pos, len, 0, unique);
  cuse_init_out.write(view, pos + OUT_HEADER_SIZE, out);
  bytes.set(devInfo, offset + OUT_HEADER_SIZE + cuse_init_out.size);
  return len;
}

/**
 * An unsolicited notification: fuse_out_header with unique 0 and error set
 * to the notify code, the fuse_notify_*_out struct, then `tail` (the
 * NUL-terminated name for INVAL_ENTRY / DELETE, the data for STORE).
 */
export function encodeNotify<T>(
  bytes: Uint8Array,
  offset: number,
  code: FuseNotifyCode,
  layout: Struct<unknown, T>,
  value: T,
  tail?: Uint8Array,
): number {
  const tailLen = tail === undefined ? 0 : tail.byteLength;
  const len = OUT_HEADER_SIZE + layout.size + tailLen;
  checkRange(bytes, offset, len, 'notification');
  const view = viewOf(bytes);
  const pos = bytes.byteOffset + offset;
  writeOutHeader(view, pos, len, code, 0n);
  layout.write(view, pos + OUT_HEADER_SIZE, value);
  if (tail !== undefined) bytes.set(tail, offset + OUT_HEADER_SIZE + layout.size);
  return len;
}

/** Decodes a fuse_out_header (for tests, tracing and reply validation). */
export function decodeOutHeader(bytes: Uint8Array, offset = 0): { len: number; error: number; unique: bigint } {
  return fuse_out_header.decode(bytes, offset);
}
