/**
 * Directory entry packing for READDIR (fuse_dirent records) and READDIRPLUS
 * (fuse_direntplus records), as fs/fuse/readdir.c parses them: each record is
 * the struct, then `namelen` name bytes (no NUL), then zeros up to the next
 * multiple of 8 (FUSE_DIRENT_ALIGN). The kernel drops a record that does not
 * fit whole, and fails the whole reply with EIO on an empty name, a name over
 * FUSE_NAME_MAX or a name containing '/'; those are refused here up front.
 *
 * `off` of an entry is the cookie of the entry *after* it: the kernel passes
 * it back as fuse_read_in.offset to continue the listing.
 *
 * READDIRPLUS: every entry with a non-zero entry_out.nodeid counts as a
 * LOOKUP (nlookup + 1) for the kernel, except "." and "..", which it never
 * links. entry_out.nodeid 0 means "no attributes for this one".
 */
import { checkRange, viewOf } from './layout';
import { FUSE_NAME_MAX } from './opcodes';
import { OUT_HEADER_SIZE, writeOutHeader } from './reply';
import {
  direntplusSize,
  direntSize,
  FUSE_NAME_OFFSET,
  fuse_entry_out,
  type FuseEntryOutReply,
} from './structs';

// d_type values for fuse_dirent.type (<dirent.h>); equal to (mode & S_IFMT) >> 12.
export const DT_UNKNOWN = 0;
export const DT_FIFO = 1;
export const DT_CHR = 2;
export const DT_DIR = 4;
export const DT_BLK = 6;
export const DT_REG = 8;
export const DT_LNK = 10;
export const DT_SOCK = 12;
export const DT_WHT = 14;

/** fuse_dirent.type for an st_mode. */
export function direntTypeFromMode(mode: number): number {
  return (mode >>> 12) & 0xf;
}

/** One READDIR entry: the fuse_dirent fields plus the name (namelen is implied). */
export interface DirentEntry {
  ino: bigint;
  /** Cookie of the next entry. */
  off: bigint;
  /** DT_* */
  type: number;
  /** Raw name bytes, without NUL. */
  name: Uint8Array;
}

/** One READDIRPLUS entry (struct fuse_direntplus). */
export interface DirentplusEntry {
  entry_out: FuseEntryOutReply;
  dirent: DirentEntry;
}

const SLASH = 0x2f;

function checkName(name: Uint8Array): void {
  const n = name.byteLength;
  if (n === 0 || n > FUSE_NAME_MAX) throw new RangeError(`dirent name of ${n} bytes (must be 1..${FUSE_NAME_MAX})`);
  if (name.indexOf(SLASH) >= 0) throw new RangeError(`dirent name contains '/'`);
}

/** Writes fuse_dirent + name + zero padding at absolute `pos`; `recLen` is the aligned size. */
function writeRecord(view: DataView, bytes: Uint8Array, pos: number, recLen: number, ino: bigint, off: bigint, type: number, name: Uint8Array): void {
  const n = name.byteLength;
  view.setBigUint64(pos, ino, true);
  view.setBigUint64(pos + 8, off, true);
  view.setUint32(pos + 16, n, true);
  view.setUint32(pos + 20, type, true);
  const at = pos - bytes.byteOffset + FUSE_NAME_OFFSET;
  const end = at + recLen - FUSE_NAME_OFFSET;
  // Names are short: a plain loop beats TypedArray#set's call overhead.
  if (n <= 32) {
    for (let i = 0; i < n; i++) bytes[at + i] = name[i];
  } else {
    bytes.set(name, at);
  }
  for (let i = at + n; i < end; i++) bytes[i] = 0;
}

/**
 * Writes one fuse_dirent record at `offset` if it fits in `avail` bytes;
 * returns its size, or 0 if it does not fit (nothing written).
 */
export function encodeDirent(bytes: Uint8Array, offset: number, avail: number, d: DirentEntry): number {
  checkName(d.name);
  const rec = direntSize(d.name.byteLength);
  if (rec > avail) return 0;
  checkRange(bytes, offset, rec, 'fuse_dirent');
  writeRecord(viewOf(bytes), bytes, bytes.byteOffset + offset, rec, d.ino, d.off, d.type, d.name);
  return rec;
}

/**
 * Writes one fuse_direntplus record at `offset` if it fits in `avail` bytes;
 * returns its size, or 0 if it does not fit (nothing written).
 */
export function encodeDirentplus(bytes: Uint8Array, offset: number, avail: number, e: DirentplusEntry): number {
  checkName(e.dirent.name);
  const rec = direntplusSize(e.dirent.name.byteLength);
  if (rec > avail) return 0;
  checkRange(bytes, offset, rec, 'fuse_direntplus');
  const view = viewOf(bytes);
  const pos = bytes.byteOffset + offset;
  fuse_entry_out.write(view, pos, e.entry_out);
  writeRecord(view, bytes, pos + fuse_entry_out.size, rec - fuse_entry_out.size, e.dirent.ino, e.dirent.off, e.dirent.type, e.dirent.name);
  return rec;
}

/** Result of packing: entries[start .. start+count) were written in `size` bytes. */
export interface PackResult {
  count: number;
  size: number;
}

/**
 * A readdir reply body packed as the filesystem adds entries (its DirentSink): records go into `bytes`
 * while they fit, the first that does not is refused and ends the listing. With READDIRPLUS the
 * filesystem asks fits() before it looks an entry up, since each entry sent counts as a lookup.
 */
export class DirentPacker {
  /** Entries packed. */
  count = 0;
  /** Bytes packed. */
  size = 0;
  /** Size of the first record refused, 0 while none was. */
  refused = 0;
  private readonly view: DataView;
  private readonly room: number;

  constructor(
    /** The records, from its start. */
    readonly bytes: Uint8Array,
    readonly plus: boolean,
  ) {
    this.view = viewOf(bytes);
    this.room = bytes.byteLength;
  }

  /** Whether an entry whose name has `nameLen` bytes still fits. */
  fits(nameLen: number): boolean {
    return this.recordSize(nameLen) <= this.left;
  }

  /** Bytes left for records. */
  get left(): number {
    return this.room - this.size;
  }

  private recordSize(nameLen: number): number {
    return this.plus ? direntplusSize(nameLen) : direntSize(nameLen);
  }

  /**
   * Packs one entry (READDIRPLUS: with its entry_out, nodeid 0 for "no attributes"); false when it
   * does not fit (nothing written). Names are copied: `name` may be a view of a reused buffer.
   */
  add(ino: bigint, off: bigint, type: number, name: Uint8Array, entry?: FuseEntryOutReply): boolean {
    checkName(name);
    const rec = this.recordSize(name.byteLength);
    if (rec > this.left) {
      if (this.refused === 0) this.refused = rec;
      return false;
    }
    const pos = this.bytes.byteOffset + this.size;
    let at = pos;
    if (this.plus) {
      if (!entry) throw new RangeError('READDIRPLUS entry without its entry_out');
      fuse_entry_out.write(this.view, pos, entry);
      at += fuse_entry_out.size;
    }
    writeRecord(this.view, this.bytes, at, pos + rec - at, ino, off, type, name);
    this.size += rec;
    this.count++;
    return true;
  }
}

/** A packer over at most `maxSize` bytes of `bytes` from `offset`. */
function packerAt(bytes: Uint8Array, offset: number, maxSize: number, plus: boolean): DirentPacker {
  checkRange(bytes, offset, 0, plus ? 'direntplus' : 'dirents');
  return new DirentPacker(bytes.subarray(offset, offset + Math.min(maxSize, bytes.byteLength - offset)), plus);
}

/**
 * Packs entries[start..] as fuse_dirent records into at most `maxSize` bytes
 * at `offset` (and within `bytes`), stopping at the first that does not fit.
 */
export function packDirents(
  bytes: Uint8Array,
  offset: number,
  maxSize: number,
  entries: readonly DirentEntry[],
  start = 0,
): PackResult {
  const p = packerAt(bytes, offset, maxSize, false);
  let i = start;
  for (; i < entries.length; i++) {
    const d = entries[i];
    if (!p.add(d.ino, d.off, d.type, d.name)) break;
  }
  return { count: i - start, size: p.size };
}

/** As packDirents, with fuse_direntplus records. */
export function packDirentplus(
  bytes: Uint8Array,
  offset: number,
  maxSize: number,
  entries: readonly DirentplusEntry[],
  start = 0,
): PackResult {
  const p = packerAt(bytes, offset, maxSize, true);
  let i = start;
  for (; i < entries.length; i++) {
    const { dirent: d, entry_out } = entries[i];
    if (!p.add(d.ino, d.off, d.type, d.name, entry_out)) break;
  }
  return { count: i - start, size: p.size };
}

/** Result of a readdir reply: `count` entries packed, `len` bytes written (header included). */
export interface ReaddirReply {
  count: number;
  len: number;
}

function replyRoom(bytes: Uint8Array, offset: number, maxSize: number): number {
  checkRange(bytes, offset, OUT_HEADER_SIZE, 'readdir reply');
  return Math.min(maxSize, bytes.byteLength - offset - OUT_HEADER_SIZE);
}

/**
 * A complete READDIR reply: header + as many entries (from `start`) as fit
 * in `maxSize` (the request's fuse_read_in.size) and in `bytes`. An empty
 * body (count 0) tells the kernel the directory is at its end.
 */
export function encodeReaddirReply(
  bytes: Uint8Array,
  offset: number,
  unique: bigint,
  maxSize: number,
  entries: readonly DirentEntry[],
  start = 0,
): ReaddirReply {
  const room = replyRoom(bytes, offset, maxSize);
  const { count, size } = packDirents(bytes, offset + OUT_HEADER_SIZE, room, entries, start);
  const len = OUT_HEADER_SIZE + size;
  writeOutHeader(viewOf(bytes), bytes.byteOffset + offset, len, 0, unique);
  return { count, len };
}

/** A complete READDIRPLUS reply; see encodeReaddirReply. */
export function encodeReaddirplusReply(
  bytes: Uint8Array,
  offset: number,
  unique: bigint,
  maxSize: number,
  entries: readonly DirentplusEntry[],
  start = 0,
): ReaddirReply {
  const room = replyRoom(bytes, offset, maxSize);
  const { count, size } = packDirentplus(bytes, offset + OUT_HEADER_SIZE, room, entries, start);
  const len = OUT_HEADER_SIZE + size;
  writeOutHeader(viewOf(bytes), bytes.byteOffset + offset, len, 0, unique);
  return { count, len };
}
