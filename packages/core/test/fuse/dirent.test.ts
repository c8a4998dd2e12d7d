import {
  createSuppGroup,
  decodeExtensions,
  decodeOutHeader,
  decodeSecctx,
  direntplusSize,
  direntSize,
  DirentPacker,
  direntTypeFromMode,
  DT_DIR,
  DT_LNK,
  DT_REG,
  encodeDirent,
  encodeDirentplus,
  encodeReaddirplusReply,
  encodeReaddirReply,
  FUSE_NAME_OFFSET,
  FUSE_NAME_OFFSET_DIRENTPLUS,
  fuse_attr,
  FuseDecodeError,
  packDirents,
  type DirentEntry,
  type DirentplusEntry,
} from '../../src/fuse';
import { ABI } from './abi.fixture';
import { Bytes, hex } from './helpers';

const d = (name: string, ino: bigint, off: bigint, type = DT_REG): DirentEntry => ({ ino, off, type, name: Buffer.from(name) });

/** Walks fuse_dirent records like fs/fuse/readdir.c parse_dirfile. */
function parseDirents(buf: Buffer): { ino: bigint; off: bigint; type: number; name: string }[] {
  const out = [];
  let pos = 0;
  while (buf.length - pos >= FUSE_NAME_OFFSET) {
    const namelen = buf.readUInt32LE(pos + 16);
    const reclen = (FUSE_NAME_OFFSET + namelen + 7) & ~7;
    if (reclen > buf.length - pos) break;
    out.push({
      ino: buf.readBigUInt64LE(pos),
      off: buf.readBigUInt64LE(pos + 8),
      type: buf.readUInt32LE(pos + 20),
      name: buf.subarray(pos + 24, pos + 24 + namelen).toString(),
    });
    pos += reclen;
  }
  return out;
}

describe('sizes', () => {
  it('FUSE_DIRENT_SIZE / FUSE_DIRENTPLUS_SIZE', () => {
    expect(FUSE_NAME_OFFSET).toBe(ABI.structs.fuse_dirent.fields.name);
    expect(FUSE_NAME_OFFSET_DIRENTPLUS).toBe(ABI.structs.fuse_direntplus.size);
    expect([1, 7, 8, 9, 255].map(direntSize)).toEqual([32, 32, 32, 40, 280]);
    expect([1, 8, 9].map(direntplusSize)).toEqual([160, 160, 168]);
  });

  it('d_type from st_mode', () => {
    expect(direntTypeFromMode(0o100644)).toBe(DT_REG);
    expect(direntTypeFromMode(0o40755)).toBe(DT_DIR);
    expect(direntTypeFromMode(0o120777)).toBe(DT_LNK);
  });
});

describe('fuse_dirent records', () => {
  it('encodes known bytes with zero padding to 8', () => {
    const b = Buffer.alloc(40, 0xff);
    expect(encodeDirent(b, 0, 40, d('abcdefghi', 0x10n, 3n))).toBe(40);
    expect(hex(b)).toBe(
      '1000000000000000' + '0300000000000000' + '09000000' + '08000000' + Buffer.from('abcdefghi').toString('hex') + '00'.repeat(7),
    );
  });

  it('returns 0 and writes nothing when the aligned record does not fit', () => {
    const b = Buffer.alloc(64, 0xee);
    expect(encodeDirent(b, 0, 31, d('a', 1n, 1n))).toBe(0); // needs 32 with padding
    expect(b.every((x) => x === 0xee)).toBe(true);
  });

  it('refuses names the kernel would fail the whole reply for', () => {
    const b = Buffer.alloc(2048);
    expect(() => encodeDirent(b, 0, 2048, d('', 1n, 1n))).toThrow(RangeError);
    expect(() => encodeDirent(b, 0, 2048, d('a/b', 1n, 1n))).toThrow(RangeError);
    expect(() => encodeDirent(b, 0, 2048, d('x'.repeat(1025), 1n, 1n))).toThrow(RangeError);
    expect(encodeDirent(b, 0, 2048, d('x'.repeat(1024), 1n, 1n))).toBe(1048);
  });

  it('packs as many as fit and reports the count', () => {
    const entries = [d('.', 1n, 1n, DT_DIR), d('..', 1n, 2n, DT_DIR), d('file-one', 5n, 3n), d('a-longer-name', 6n, 4n)];
    const b = Buffer.alloc(200);
    // 32 + 32 + 32 = 96 fit in 100; the 4th needs 40 more.
    expect(packDirents(b, 0, 100, entries)).toEqual({ count: 3, size: 96 });
    expect(parseDirents(b.subarray(0, 96)).map((e) => e.name)).toEqual(['.', '..', 'file-one']);
    // Resume at the 4th.
    expect(packDirents(b, 0, 100, entries, 3)).toEqual({ count: 1, size: 40 });
  });

  it('READDIR reply: header + records, capped by the request size and the buffer', () => {
    const entries = Array.from({ length: 50 }, (_, i) => d(`entry-${i}`, BigInt(100 + i), BigInt(i + 1)));
    const b = Buffer.alloc(16 + 4096);
    const r = encodeReaddirReply(b, 0, 7n, 4096, entries);
    expect(r.count).toBe(50); // 50 x 32 bytes
    expect(r.len).toBe(16 + 50 * 32);
    expect(decodeOutHeader(b)).toEqual({ len: r.len, error: 0, unique: 7n });
    const parsed = parseDirents(b.subarray(16, r.len));
    expect(parsed[49]).toEqual({ ino: 149n, off: 50n, type: DT_REG, name: 'entry-49' });

    const small = Buffer.alloc(16 + 100);
    expect(encodeReaddirReply(small, 0, 7n, 4096, entries)).toEqual({ count: 3, len: 16 + 96 });
    expect(encodeReaddirReply(b, 0, 7n, 4096, entries, 50)).toEqual({ count: 0, len: 16 }); // end of directory
  });
});

describe('fuse_direntplus records', () => {
  const plus = (name: string, nodeid: bigint, off: bigint): DirentplusEntry => ({
    entry_out: {
      nodeid,
      generation: 0n,
      entry_valid: 1n,
      attr_valid: 1n,
      entry_valid_nsec: 0,
      attr_valid_nsec: 0,
      attr: { ...fuse_attr.zero(), ino: nodeid, mode: 0o100644 },
    },
    dirent: d(name, nodeid, off),
  });

  it('entry_out then dirent then the name, aligned', () => {
    const b = Buffer.alloc(168, 0xff);
    expect(encodeDirentplus(b, 0, 168, plus('123456789', 9n, 1n))).toBe(168);
    expect(b.readBigUInt64LE(0)).toBe(9n); // entry_out.nodeid
    const dir = ABI.structs.fuse_direntplus.fields.dirent;
    expect(b.readBigUInt64LE(dir)).toBe(9n); // dirent.ino
    expect(b.readUInt32LE(dir + 16)).toBe(9); // namelen
    expect(b.subarray(152, 161).toString()).toBe('123456789');
    expect(b.subarray(161).every((x) => x === 0)).toBe(true);
  });

  it('READDIRPLUS reply packs what fits', () => {
    const entries = [plus('a', 2n, 1n), plus('b', 3n, 2n), plus('c', 4n, 3n)];
    const b = Buffer.alloc(16 + 400);
    expect(encodeReaddirplusReply(b, 0, 1n, 400, entries)).toEqual({ count: 2, len: 16 + 320 });
  });

  it('the packer a filesystem adds to: the same records, the first that does not fit refused and remembered', () => {
    const entries = [plus('a', 2n, 1n), plus('123456789', 3n, 2n), plus('c', 4n, 3n)];
    const want = Buffer.alloc(400);
    const packed = encodeReaddirplusReply(want, 0, 1n, 400 - 16, entries);
    expect(packed.count).toBe(2);
    const sink = new DirentPacker(Buffer.alloc(400 - 16, 0xff), true);
    expect(sink.fits(1)).toBe(true);
    for (const e of entries) if (!sink.add(e.dirent.ino, e.dirent.off, e.dirent.type, e.dirent.name, e.entry_out)) break;
    expect([sink.count, sink.size, sink.refused]).toEqual([2, 160 + 168, 160]);
    expect(sink.fits(1)).toBe(false);
    expect(hex(sink.bytes.subarray(0, sink.size))).toBe(hex(want.subarray(16, 16 + sink.size)));
    // READDIRPLUS without an entry_out, and names the kernel would refuse, are bugs of the filesystem.
    expect(() => new DirentPacker(Buffer.alloc(400), true).add(2n, 1n, DT_REG, Buffer.from('a'))).toThrow(RangeError);
    expect(() => new DirentPacker(Buffer.alloc(400), false).add(2n, 1n, DT_REG, Buffer.from('a/b'))).toThrow(RangeError);
    const plain = new DirentPacker(Buffer.alloc(64 + 31), false);
    expect([plain.add(2n, 1n, DT_REG, Buffer.from('x')), plain.add(3n, 2n, DT_DIR, Buffer.from('y')), plain.add(4n, 3n, DT_REG, Buffer.from('z'))]).toEqual([true, true, false]);
    expect(parseDirents(Buffer.from(plain.bytes.subarray(0, plain.size))).map((e) => e.name)).toEqual(['x', 'y']);
  });
});

describe('request extensions', () => {
  it('decodes a security context extension', () => {
    const name = 'security.selinux\0';
    const value = 'system_u:object_r:foo_t:s0\0';
    const entryLen = 8 + name.length + value.length;
    const padded = (entryLen + 7) & ~7;
    const ext = new Bytes()
      .u32(8 + padded)
      .u32(1) // fuse_secctx_header: size, nr_secctx
      .u32(value.length)
      .u32(0) // fuse_secctx
      .raw(name)
      .raw(value)
      .zeros(padded - entryLen)
      .build();
    const records = decodeExtensions(ext);
    expect(records).toHaveLength(1);
    expect(records[0].type).toBe(1);
    const ctx = decodeSecctx(records[0]);
    expect(ctx.map((c) => [c.name.toString(), c.value.toString()])).toEqual([['security.selinux', value]]);
  });

  it('an empty secctx header has no contexts; other types pass through', () => {
    const ext = new Bytes().u32(8).u32(0).u32(16).u32(32).u64(5n).build();
    const records = decodeExtensions(ext);
    expect(records.map((r) => [r.type, r.data.length])).toEqual([
      [0, 0],
      [32, 8],
    ]);
    expect(decodeSecctx(records[0])).toEqual([]);
    expect(() => decodeSecctx(records[1])).toThrow(FuseDecodeError);
  });

  it('finds the supplementary group of a create (FUSE_EXT_GROUPS: nr_groups 1, the group, padded to 8)', () => {
    // As fs/fuse/dir.c get_create_supp_group lays it out, after a secctx record.
    const ext = new Bytes().u32(8).u32(0).u32(16).u32(32).u32(1).u32(65531).build();
    expect(hex(ext)).toBe('08000000000000001000000020000000' + '01000000fbff0000');
    expect(createSuppGroup(ext)).toBe(65531);
    expect(createSuppGroup(undefined)).toBeUndefined();
    expect(createSuppGroup(new Bytes().u32(8).u32(0).build())).toBeUndefined();
    expect(() => createSuppGroup(new Bytes().u32(16).u32(32).u32(2).u32(7).build())).toThrow(FuseDecodeError);
  });

  it('rejects malformed extension records', () => {
    expect(() => decodeExtensions(new Bytes().u32(4).u32(0).build())).toThrow(FuseDecodeError);
    expect(() => decodeExtensions(new Bytes().u32(24).u32(0).u64(0n).build())).toThrow(FuseDecodeError);
    expect(() => decodeExtensions(new Bytes().u32(8).build())).toThrow(FuseDecodeError);
    expect(() => decodeSecctx({ type: 1, data: new Bytes().u32(100).u32(0).str('n').build() })).toThrow(FuseDecodeError);
  });
});
