import {
  defineStruct,
  FUSE_ASYNC_READ,
  FUSE_HAS_INODE_DAX,
  FUSE_INIT_EXT,
  FUSE_SECURITY_CTX,
  fuse_attr,
  fuse_entry_out,
  fuse_in_header,
  fuse_init_in,
  fuse_kstatfs,
  fuse_lk_in,
  joinInitFlags,
  pad,
  splitInitFlags,
  type FuseEntryOut,
} from '../../src/fuse';
import { ABI } from './abi.fixture';
import { hex } from './helpers';

describe('defineStruct', () => {
  it('refuses a declaration whose computed size differs from sizeof', () => {
    expect(() => defineStruct('bad', 12, { a: 'u64', b: 'u32' })).toThrow(/computed size 16 != sizeof 12/);
  });

  it('aligns fields like C', () => {
    const s = defineStruct('t', 24, { a: 'u16', b: 'u32', c: 'u16', d: 'u64' });
    expect(s.offsets).toEqual({ a: 0, b: 4, c: 8, d: 16 });
    expect(s.align).toBe(8);
  });

  it('rejects field names that are not identifiers', () => {
    expect(() => defineStruct('t', 4, { 'a-b': 'u32' })).toThrow(/bad field name/);
  });
});

describe('encode/decode', () => {
  it('decodes fuse_in_header from known bytes', () => {
    const b = Buffer.from(
      '38000000' + '01000000' + '0800000000000080' + '0100000000000000' + 'e8030000' + '64000000' + '39300000' + '0200' + '0000',
      'hex',
    );
    expect(fuse_in_header.decode(b)).toEqual({
      len: 56,
      opcode: 1,
      unique: 0x8000000000000008n,
      nodeid: 1n,
      uid: 1000,
      gid: 100,
      pid: 12345,
      total_extlen: 2,
    });
  });

  it('encodes fuse_attr to known bytes, times signed', () => {
    const attr = {
      ...fuse_attr.zero(),
      ino: 0x0102030405060708n,
      size: 0xffffffffffffffffn,
      atime: -1n, // before 1970
      mode: 0o100644,
      nlink: 1,
      blksize: 4096,
      flags: 2,
    };
    const b = Buffer.alloc(88);
    expect(fuse_attr.encode(attr, b)).toBe(88);
    const f = ABI.structs.fuse_attr.fields;
    expect(b.readBigUInt64LE(f.ino)).toBe(0x0102030405060708n);
    expect(hex(b.subarray(f.size, f.size + 8))).toBe('ffffffffffffffff');
    expect(b.readBigInt64LE(f.atime)).toBe(-1n);
    expect(b.readUInt32LE(f.mode)).toBe(0o100644);
    expect(b.readUInt32LE(f.blksize)).toBe(4096);
    expect(b.readUInt32LE(f.flags)).toBe(2);
    expect(fuse_attr.decode(b)).toEqual(attr);
  });

  it('round-trips nested structs at an offset inside a larger buffer', () => {
    const entry: FuseEntryOut = {
      nodeid: 42n,
      generation: 7n,
      entry_valid: 1n,
      attr_valid: 2n,
      entry_valid_nsec: 3,
      attr_valid_nsec: 4,
      attr: { ...fuse_attr.zero(), ino: 42n, mode: 0o40755, nlink: 2 },
    };
    const b = Buffer.alloc(200);
    fuse_entry_out.encode(entry, b, 13); // unaligned on purpose
    expect(fuse_entry_out.decode(b, 13)).toEqual(entry);
    expect(b.readBigUInt64LE(13 + ABI.structs.fuse_entry_out.fields.attr)).toBe(42n);

    const lk = { fh: 1n, owner: 0xdeadbeefcafebaben, lk: { start: 0n, end: 0x7fffffffffffffffn, type: 1, pid: 9 }, lk_flags: 1 };
    const b2 = Buffer.alloc(48);
    fuse_lk_in.encode(lk, b2);
    expect(fuse_lk_in.decode(b2)).toEqual(lk);
  });

  it('writes padding and reserved fields as zeros and leaves them out of values', () => {
    const b = Buffer.alloc(80, 0xff);
    const st = { blocks: 1n, bfree: 2n, bavail: 3n, files: 4n, ffree: 5n, bsize: 4096, namelen: 255, frsize: 4096 };
    fuse_kstatfs.encode(st, b);
    const f = ABI.structs.fuse_kstatfs.fields;
    expect(b.subarray(f.padding, 80).every((x) => x === 0)).toBe(true);
    expect(fuse_kstatfs.decode(b)).toEqual(st);
    expect(Object.keys(fuse_init_in.zero())).toEqual(['major', 'minor', 'max_readahead', 'flags', 'flags2']);
  });

  it('works on plain Uint8Arrays and subarrays', () => {
    const u = new Uint8Array(100);
    const sub = u.subarray(20, 60);
    fuse_in_header.encode({ ...fuse_in_header.zero(), len: 40, unique: 5n }, sub);
    expect(u[20]).toBe(40);
    expect(fuse_in_header.decode(sub).unique).toBe(5n);
  });

  it('checks bounds against the slice, not the underlying memory', () => {
    const backing = Buffer.alloc(4096);
    const slice = backing.subarray(100, 130);
    expect(() => fuse_in_header.decode(slice)).toThrow(RangeError);
    expect(() => fuse_in_header.encode(fuse_in_header.zero(), slice)).toThrow(RangeError);
    expect(() => fuse_in_header.decode(backing, 4090)).toThrow(RangeError);
    expect(() => fuse_in_header.decode(backing, -1)).toThrow(RangeError);
    expect(backing.every((x) => x === 0)).toBe(true);
  });

  it('pad() defaults to one u32', () => {
    expect(pad()).toEqual({ kind: 'pad', type: 'u32', count: 1 });
  });
});

describe('INIT flags', () => {
  it('joins flags2 only with FUSE_INIT_EXT', () => {
    expect(joinInitFlags({ flags: 1, flags2: 1 })).toBe(FUSE_ASYNC_READ);
    expect(joinInitFlags({ flags: 1 | (1 << 30), flags2: 3 })).toBe(
      FUSE_ASYNC_READ | FUSE_INIT_EXT | FUSE_SECURITY_CTX | FUSE_HAS_INODE_DAX,
    );
    expect(joinInitFlags({ flags: 0x80000000 | 0, flags2: 0 })).toBe(1n << 31n);
  });

  it('splits and sets FUSE_INIT_EXT when high bits are present', () => {
    expect(splitInitFlags(FUSE_ASYNC_READ)).toEqual({ flags: 1, flags2: 0 });
    expect(splitInitFlags(FUSE_ASYNC_READ | FUSE_HAS_INODE_DAX)).toEqual({ flags: 1 | 0x40000000, flags2: 2 });
    expect(splitInitFlags(1n << 31n)).toEqual({ flags: 0x80000000, flags2: 0 });
  });
});
