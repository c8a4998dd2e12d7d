import {
  decodeOutHeader,
  EAGAIN,
  encodeAttrReply,
  encodeBmapReply,
  encodeCreateReply,
  encodeCuseInitReply,
  encodeDataReply,
  encodeDataReplyHeader,
  encodeEmptyReply,
  encodeEntryReply,
  encodeErrorReply,
  encodeInitReply,
  encodeIoctlReply,
  encodeLkReply,
  encodeLseekReply,
  encodeNotify,
  encodeOpenReply,
  encodePollReply,
  encodeStatfsReply,
  encodeStructReply,
  encodeWriteReply,
  encodeXattrSizeReply,
  ENOENT,
  FOPEN_KEEP_CACHE,
  FUSE_ASYNC_READ,
  FUSE_HAS_INODE_DAX,
  fuse_attr,
  fuseAttrOf,
  fuse_bmap_out,
  fuse_notify_inval_entry_out,
  FuseNotifyCode,
  splitInitFlags,
  type FuseEntryOut,
  type FuseInitOut,
} from '../../src/fuse';
import { ABI } from './abi.fixture';
import { hex } from './helpers';

const U = 0x0102030405060708n;
const UNIQUE_HEX = '0807060504030201';

function entry(nodeid: bigint): FuseEntryOut {
  return {
    nodeid,
    generation: 1n,
    entry_valid: 2n,
    attr_valid: 3n,
    entry_valid_nsec: 4,
    attr_valid_nsec: 5,
    attr: { ...fuse_attr.zero(), ino: nodeid, mode: 0o100644, nlink: 1, size: 6n, blksize: 4096 },
  };
}

describe('headers', () => {
  it('error reply: 16 bytes, error = -errno', () => {
    const b = Buffer.alloc(16);
    expect(encodeErrorReply(b, 0, U, ENOENT)).toBe(16);
    expect(hex(b)).toBe('10000000' + 'feffffff' + UNIQUE_HEX);
    expect(decodeOutHeader(b)).toEqual({ len: 16, error: -2, unique: U });
  });

  it('error reply refuses errno values the kernel rejects', () => {
    const b = Buffer.alloc(16);
    for (const bad of [0, -2, 512, 1.5, NaN]) expect(() => encodeErrorReply(b, 0, U, bad)).toThrow(RangeError);
    expect(encodeErrorReply(b, 0, U, 511)).toBe(16);
  });

  it('empty reply', () => {
    const b = Buffer.alloc(20, 0xee);
    expect(encodeEmptyReply(b, 2, U)).toBe(16);
    expect(hex(b)).toBe('eeee' + '10000000' + '00000000' + UNIQUE_HEX + 'eeee');
  });

  it('throws before writing anything when the reply does not fit', () => {
    const b = Buffer.alloc(143, 0xaa);
    expect(() => encodeErrorReply(b, 130, U, EAGAIN)).toThrow(RangeError);
    expect(() => encodeEntryReply(b, 0, U, entry(2n))).toThrow(RangeError);
    expect(() => encodeCreateReply(b, 0, U, entry(2n), { fh: 1n, open_flags: 0 })).toThrow(RangeError);
    expect(() => encodeDataReply(b, 100, U, Buffer.alloc(28))).toThrow(RangeError);
    expect(b.every((x) => x === 0xaa)).toBe(true);
  });
});

describe('bodies', () => {
  it('entry reply: header + fuse_entry_out at the ABI offsets', () => {
    const b = Buffer.alloc(144);
    expect(encodeEntryReply(b, 0, U, entry(42n))).toBe(144);
    expect(decodeOutHeader(b)).toEqual({ len: 144, error: 0, unique: U });
    const f = ABI.structs.fuse_entry_out.fields;
    const a = ABI.structs.fuse_attr.fields;
    const body = b.subarray(16);
    expect(body.readBigUInt64LE(f.nodeid)).toBe(42n);
    expect(body.readUInt32LE(f.attr_valid_nsec)).toBe(5);
    expect(body.readUInt32LE(f.attr + a.mode)).toBe(0o100644);
    expect(body.readUInt32LE(f.attr + a.blksize)).toBe(4096);
  });

  it('entry and attr replies use the compat sizes below 7.9', () => {
    const b = Buffer.alloc(200);
    expect(encodeEntryReply(b, 0, U, entry(42n), 8)).toBe(16 + 120);
    expect(b.readUInt32LE(0)).toBe(136);
    const attrOut = { attr_valid: 1n, attr_valid_nsec: 0, attr: entry(3n).attr };
    expect(encodeAttrReply(b, 0, U, attrOut)).toBe(16 + 104);
    expect(encodeAttrReply(b, 0, U, attrOut, 8)).toBe(16 + 96);
  });

  it('an attr given as its wire bytes encodes the same bytes as its fields; a wrong size is refused', () => {
    const fields = entry(42n);
    const wire = Buffer.alloc(fuse_attr.size);
    fuse_attr.encode(fields.attr, wire);
    const a = Buffer.alloc(144);
    const b = Buffer.alloc(144, 0xee);
    encodeEntryReply(a, 0, U, fields);
    encodeEntryReply(b, 0, U, { ...fields, attr: wire });
    expect(hex(b)).toBe(hex(a));
    expect(fuseAttrOf(wire)).toEqual(fields.attr);
    expect(() => encodeEntryReply(b, 0, U, { ...fields, attr: wire.subarray(8) })).toThrow(RangeError);
  });

  it('create reply: entry_out then open_out', () => {
    const b = Buffer.alloc(160);
    expect(encodeCreateReply(b, 0, U, entry(9n), { fh: 77n, open_flags: FOPEN_KEEP_CACHE })).toBe(160);
    expect(b.readUInt32LE(0)).toBe(160);
    expect(b.readBigUInt64LE(16)).toBe(9n);
    expect(b.readBigUInt64LE(16 + 128)).toBe(77n);
    expect(b.readUInt32LE(16 + 128 + 8)).toBe(FOPEN_KEEP_CACHE);
  });

  it('small replies: open, write, xattr size, poll, bmap, lseek, lk', () => {
    const b = Buffer.alloc(64);
    expect(encodeOpenReply(b, 0, U, { fh: 5n, open_flags: 1 })).toBe(32);
    expect(hex(b.subarray(16, 32))).toBe('0500000000000000' + '01000000' + '00000000');
    expect(encodeWriteReply(b, 0, U, 4096)).toBe(24);
    expect(hex(b.subarray(16, 24))).toBe('00100000' + '00000000');
    expect(encodeXattrSizeReply(b, 0, U, 17)).toBe(24);
    expect(b.readUInt32LE(16)).toBe(17);
    expect(encodePollReply(b, 0, U, 0x41)).toBe(24);
    expect(b.readUInt32LE(16)).toBe(0x41);
    expect(encodeBmapReply(b, 0, U, 1234n)).toBe(24);
    expect(b.readBigUInt64LE(16)).toBe(1234n);
    expect(encodeLseekReply(b, 0, U, 1n << 40n)).toBe(24);
    expect(b.readBigUInt64LE(16)).toBe(1n << 40n);
    expect(encodeLkReply(b, 0, U, { start: 1n, end: 2n, type: 2, pid: 3 })).toBe(40);
    expect(hex(b.subarray(16, 40))).toBe('0100000000000000' + '0200000000000000' + '02000000' + '03000000');
  });

  it('statfs reply, compat size below 7.4', () => {
    const b = Buffer.alloc(96, 0xff);
    const st = { blocks: 1n, bfree: 2n, bavail: 3n, files: 4n, ffree: 5n, bsize: 6, namelen: 255, frsize: 8 };
    expect(encodeStatfsReply(b, 0, U, st)).toBe(96);
    expect(b.readUInt32LE(16 + 44)).toBe(255);
    expect(b.subarray(16 + 52).every((x) => x === 0)).toBe(true); // padding + spare zeroed
    expect(encodeStatfsReply(b, 0, U, st, 3)).toBe(16 + 48);
  });

  it('data replies, and a header for data written in place', () => {
    const b = Buffer.alloc(32);
    expect(encodeDataReply(b, 0, U, Buffer.from('target'))).toBe(22);
    expect(b.subarray(16, 22).toString()).toBe('target');
    expect(encodeDataReply(b, 0, U, new Uint8Array(0))).toBe(16);
    expect(encodeDataReplyHeader(b, 0, U, 16)).toBe(32);
    expect(b.readUInt32LE(0)).toBe(32);
  });

  it('ioctl reply with output data', () => {
    const b = Buffer.alloc(40);
    expect(encodeIoctlReply(b, 0, U, { result: -1, flags: 0, in_iovs: 0, out_iovs: 0 }, Buffer.from('xy'))).toBe(34);
    expect(b.readInt32LE(16)).toBe(-1);
    expect(b.subarray(32, 34).toString()).toBe('xy');
    expect(encodeIoctlReply(b, 0, U, { result: 0, flags: 0, in_iovs: 0, out_iovs: 0 })).toBe(32);
  });

  it('generic struct reply', () => {
    const b = Buffer.alloc(24);
    expect(encodeStructReply(b, 0, U, fuse_bmap_out, { block: 3n })).toBe(24);
    expect(() => encodeStructReply(b, 0, U, fuse_bmap_out, { block: 3n }, 9)).toThrow(RangeError);
  });
});

describe('INIT', () => {
  const out = (): FuseInitOut => ({
    major: 7,
    minor: 38,
    max_readahead: 131072,
    ...splitInitFlags(FUSE_ASYNC_READ | FUSE_HAS_INODE_DAX),
    max_background: 64,
    congestion_threshold: 48,
    max_write: 1 << 20,
    time_gran: 1,
    max_pages: 256,
    map_alignment: 12,
  });

  it('full 64-byte fuse_init_out for a 7.23+ kernel', () => {
    const b = Buffer.alloc(80, 0xff);
    expect(encodeInitReply(b, 0, U, out(), 38)).toBe(80);
    const f = ABI.structs.fuse_init_out.fields;
    const body = b.subarray(16);
    expect(body.readUInt32LE(f.major)).toBe(7);
    expect(body.readUInt32LE(f.minor)).toBe(38);
    expect(body.readUInt32LE(f.flags)).toBe(1 | (1 << 30));
    expect(body.readUInt16LE(f.max_background)).toBe(64);
    expect(body.readUInt16LE(f.congestion_threshold)).toBe(48);
    expect(body.readUInt32LE(f.max_write)).toBe(1 << 20);
    expect(body.readUInt16LE(f.max_pages)).toBe(256);
    expect(body.readUInt16LE(f.map_alignment)).toBe(12);
    expect(body.readUInt32LE(f.flags2)).toBe(2);
    expect(body.subarray(f.unused).every((x) => x === 0)).toBe(true);
  });

  it('compat sizes for old kernels', () => {
    const b = Buffer.alloc(80);
    expect(encodeInitReply(b, 0, U, out(), 22)).toBe(16 + 24);
    expect(b.readUInt32LE(0)).toBe(40);
    expect(encodeInitReply(b, 0, U, out(), 4)).toBe(16 + 8);
  });

  it('CUSE_INIT reply with device info', () => {
    const b = Buffer.alloc(128);
    const info = Buffer.from('DEVNAME=foo\0');
    const cuse = { major: 7, minor: 38, flags: 1, max_read: 4096, max_write: 4096, dev_major: 10, dev_minor: 200 };
    expect(encodeCuseInitReply(b, 0, U, cuse, info)).toBe(16 + 72 + info.length);
    expect(b.subarray(88, 88 + info.length).toString()).toBe('DEVNAME=foo\0');
  });
});

describe('notifications', () => {
  it('inval entry: unique 0, error = code, struct then name', () => {
    const b = Buffer.alloc(64);
    const name = Buffer.from('gone\0');
    const len = encodeNotify(b, 0, FuseNotifyCode.FUSE_NOTIFY_INVAL_ENTRY, fuse_notify_inval_entry_out, { parent: 1n, namelen: 4, flags: 0 }, name);
    expect(len).toBe(16 + 16 + 5);
    expect(decodeOutHeader(b)).toEqual({ len, error: 3, unique: 0n });
    expect(b.readBigUInt64LE(16)).toBe(1n);
    expect(b.subarray(32, 37).toString()).toBe('gone\0');
  });
});
