// stat through libc's statx into a reused buffer (about 0.7 µs; works on O_PATH fds; Node's fstatSync
// with bigints and the record made from it cost 1.2 µs), decoded to a plain record so it can cross
// postMessage. statInto/statAtInto (sys/libc.ts) + decodeStatx are the building blocks for code that
// wants to read fields straight from the buffer.
import { fuse_attr } from '@vfsd/core/abi';
import { check } from './errno';
import { STATX_SIZE, statAtInto, statInto } from './libc';

/**
 * What the passthrough keeps of a stat: the identity and type the inode table needs, and the whole of it
 * as fuse_attr's wire bytes (flags 0), copied word by word from the statx buffer: replies carry them as
 * they are (no bigint arithmetic, no attr object per request). fuseAttrOf (core) reads the fields.
 */
export interface StatRecord {
  dev: bigint;
  ino: bigint;
  mode: number;
  attr: Uint8Array;
}

/**
 * A statx buffer with typed views over it: the decoder reads through the views (about 50 ns a record,
 * against 600 ns through Buffer's readBigUInt64LE & co.). One per caller; statInto fills `bytes`.
 */
export interface StatxBuffer {
  readonly bytes: Buffer;
  readonly u16: Uint16Array;
  readonly u32: Uint32Array;
  readonly i64: BigInt64Array;
  readonly u64: BigUint64Array;
}

export function statxBuffer(): StatxBuffer {
  const ab = new ArrayBuffer(STATX_SIZE);
  return { bytes: Buffer.from(ab), u16: new Uint16Array(ab), u32: new Uint32Array(ab), i64: new BigInt64Array(ab), u64: new BigUint64Array(ab) };
}

// struct statx (linux/stat.h), the same layout on every architecture, as indexes into the views
// (byte offset / element size).
const U32_BLKSIZE = 1; // stx_blksize @4
const U32_NLINK = 4; // @16
const U32_UID = 5; // @20
const U32_GID = 6; // @24
const U16_MODE = 14; // @28
const U64_INO = 4; // @32
const U64_SIZE = 5; // @40
const U64_BLOCKS = 6; // @48
const I64_ATIME = 8; // stx_atime.tv_sec @64, tv_nsec (u32) @72
const I64_CTIME = 12; // @96
const I64_MTIME = 14; // @112
const U32_RDEV_MAJOR = 32; // @128, minor @132
const U32_DEV_MAJOR = 34; // @136, minor @140

/** glibc's makedev: the dev_t that stat(2) and Node report for a (major, minor) pair. */
function makedev(major: number, minor: number): bigint {
  // A share is mostly one filesystem: the last answer saves a BigInt per stat.
  if (major === lastMajor && minor === lastMinor) return lastDev;
  lastMajor = major;
  lastMinor = minor;
  lastDev = computeMakedev(major, minor);
  return lastDev;
}
let lastMajor = 0;
let lastMinor = 0;
let lastDev = 0n;

function computeMakedev(major: number, minor: number): bigint {
  if (major === 0 && minor === 0) return 0n;
  if (major < 0x1000 && minor < 0x100000) return BigInt(((minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12)) >>> 0);
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return ((ma & 0xfffff000n) << 32n) | ((ma & 0xfffn) << 8n) | ((mi & 0xffffff00n) << 12n) | (mi & 0xffn);
}

// fuse_attr's words, from the codec's layout (byte offset / 4).
const A = Object.fromEntries(Object.entries(fuse_attr.offsets).map(([k, v]) => [k, v / 4])) as Record<keyof typeof fuse_attr.offsets, number>;
const ATTR_WORDS = fuse_attr.size / 4;

/**
 * Room for attrs: records are cut from one slab until it is full, then a new one starts (the old one
 * is freed with its last record). A fresh 88-byte typed array per stat would be an off-heap
 * ArrayBuffer each (malloc, a finalizer, a new DataView in the codec); a slice of a slab is not.
 */
const SLAB_WORDS = 16384;
let slab = new Uint32Array(SLAB_WORDS);
let slabBytes = new Uint8Array(slab.buffer);
let slabAt = 0;

/** fuse_attr in wire layout from a statx buffer (rdev as the 32-bit dev_t the kernel decodes). */
function attrWire(b: StatxBuffer): Uint8Array {
  const x = b.u32;
  if (slabAt + ATTR_WORDS > SLAB_WORDS) {
    slab = new Uint32Array(SLAB_WORDS);
    slabBytes = new Uint8Array(slab.buffer);
    slabAt = 0;
  }
  const o = slab;
  const base = slabAt;
  slabAt += ATTR_WORDS;
  o[base + A.ino] = x[2 * U64_INO];
  o[base + A.ino + 1] = x[2 * U64_INO + 1];
  o[base + A.size] = x[2 * U64_SIZE];
  o[base + A.size + 1] = x[2 * U64_SIZE + 1];
  o[base + A.blocks] = x[2 * U64_BLOCKS];
  o[base + A.blocks + 1] = x[2 * U64_BLOCKS + 1];
  o[base + A.atime] = x[2 * I64_ATIME];
  o[base + A.atime + 1] = x[2 * I64_ATIME + 1];
  o[base + A.mtime] = x[2 * I64_MTIME];
  o[base + A.mtime + 1] = x[2 * I64_MTIME + 1];
  o[base + A.ctime] = x[2 * I64_CTIME];
  o[base + A.ctime + 1] = x[2 * I64_CTIME + 1];
  o[base + A.atimensec] = x[2 * I64_ATIME + 2];
  o[base + A.mtimensec] = x[2 * I64_MTIME + 2];
  o[base + A.ctimensec] = x[2 * I64_CTIME + 2];
  o[base + A.mode] = b.u16[U16_MODE];
  o[base + A.nlink] = x[U32_NLINK];
  o[base + A.uid] = x[U32_UID];
  o[base + A.gid] = x[U32_GID];
  const major = x[U32_RDEV_MAJOR];
  const minor = x[U32_RDEV_MAJOR + 1];
  // The low 32 bits of glibc's makedev, which is what the C virtiofsd passes on.
  o[base + A.rdev] = ((minor & 0xff) | ((major & 0xfff) << 8) | ((minor & 0xffffff00) << 12)) >>> 0;
  o[base + A.blksize] = x[U32_BLKSIZE];
  return slabBytes.subarray(base * 4, (base + ATTR_WORDS) * 4);
}

/** The record of a statx buffer filled by statInto/statAtInto. */
export function decodeStatx(b: StatxBuffer): StatRecord {
  const { u16, u32, u64 } = b;
  return {
    dev: makedev(u32[U32_DEV_MAJOR], u32[U32_DEV_MAJOR + 1]),
    ino: u64[U64_INO],
    mode: u16[U16_MODE],
    attr: attrWire(b),
  };
}

const buf = statxBuffer();

/** The inode behind fd (also an O_PATH fd, also a symlink's own); throws SysErrno. */
export function fstatRecord(fd: number): StatRecord {
  check('statx', statInto(fd, buf.bytes));
  return decodeStatx(buf);
}

/** lstat of `name` in directory `dirFd`; throws SysErrno. */
export function statAtRecord(dirFd: number, name: Uint8Array): StatRecord {
  check('statx', statAtInto(dirFd, name, buf.bytes));
  return decodeStatx(buf);
}
