// Fuzzing the dirent encoders against sizes the guest chose (fuse_read_in.size) and buffers of any
// length: nothing is written outside [offset, offset + min(size, room)), the records written parse
// back (as fs/fuse/readdir.c parses them) to the entries given, in order, and packing stops only at
// an entry that does not fit.
import fc from 'fast-check';
import {
  direntplusSize,
  direntSize,
  encodeReaddirplusReply,
  encodeReaddirReply,
  FUSE_NAME_OFFSET,
  FUSE_NAME_OFFSET_DIRENTPLUS,
  OUT_HEADER_SIZE,
  packDirentplus,
  packDirents,
  type DirentEntry,
  type DirentplusEntry,
} from '../../src/fuse';
import { fuzz } from '@vfsd/vhost/testing';

const CANARY = 0xee;

const entryName = fc.uint8Array({ minLength: 1, maxLength: 80 }).map((b) => b.map((c) => (c === 0x2f ? 0x2e : c)));
const dirent: fc.Arbitrary<DirentEntry> = fc.record({
  ino: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
  off: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
  type: fc.nat({ max: 15 }),
  name: entryName,
});
const plusEntry: fc.Arbitrary<DirentplusEntry> = dirent.map((d) => ({
  dirent: d,
  entry_out: { nodeid: d.ino, generation: 1n, entry_valid: 0n, attr_valid: 0n, entry_valid_nsec: 0, attr_valid_nsec: 0, attr: { ino: d.ino, mode: 0o100644, nlink: 1, size: 0n, blocks: 0n, atime: 0n, mtime: 0n, ctime: 0n, atimensec: 0, mtimensec: 0, ctimensec: 0, uid: 0, gid: 0, rdev: 0, blksize: 4096, flags: 0 } },
}));

/** Sizes a guest may ask for: small, about a record, or anything up to 2^32 - 1. */
const guestSize = fc.oneof(fc.nat({ max: 64 }), fc.nat({ max: 2048 }), fc.constant(0xffffffff), fc.nat({ max: 0xffffffff }));

const layout = fc.record({ length: fc.nat({ max: 2048 }), offsetFrac: fc.double({ min: 0, max: 1, noNaN: true }) }).map(({ length, offsetFrac }) => ({ length, offset: Math.floor(offsetFrac * length) }));

/** The records in `body` as the kernel walks them. */
function parse(body: Buffer, plus: boolean): { ino: bigint; off: bigint; type: number; name: Buffer }[] {
  const base = plus ? FUSE_NAME_OFFSET_DIRENTPLUS - FUSE_NAME_OFFSET : 0;
  const out = [];
  let pos = 0;
  while (pos < body.length) {
    const d = pos + base;
    const namelen = body.readUInt32LE(d + 16);
    const rec = plus ? direntplusSize(namelen) : direntSize(namelen);
    expect(pos + rec).toBeLessThanOrEqual(body.length);
    // Padding after the name is zeros.
    expect(body.subarray(d + FUSE_NAME_OFFSET + namelen, pos + rec).every((b) => b === 0)).toBe(true);
    out.push({ ino: body.readBigUInt64LE(d), off: body.readBigUInt64LE(d + 8), type: body.readUInt32LE(d + 20), name: Buffer.from(body.subarray(d + FUSE_NAME_OFFSET, d + FUSE_NAME_OFFSET + namelen)) });
    pos += rec;
  }
  return out;
}

function untouchedOutside(bytes: Buffer, from: number, to: number): boolean {
  for (let i = 0; i < bytes.length; i++) if ((i < from || i >= to) && bytes[i] !== CANARY) return false;
  return true;
}

function checkPack(plus: boolean, { length, offset }: { length: number; offset: number }, maxSize: number, entries: DirentEntry[] | DirentplusEntry[], start: number): void {
  const bytes = Buffer.alloc(length, CANARY);
  const first = Math.min(start, entries.length);
  const { count, size } = plus ? packDirentplus(bytes, offset, maxSize, entries as DirentplusEntry[], first) : packDirents(bytes, offset, maxSize, entries as DirentEntry[], first);
  const limit = Math.min(maxSize, length - offset);
  expect(size).toBeLessThanOrEqual(limit);
  expect(untouchedOutside(bytes, offset, offset + size)).toBe(true);
  const want = entries.slice(first, first + count).map((e) => ('dirent' in e ? e.dirent : e));
  expect(parse(bytes.subarray(offset, offset + size), plus)).toEqual(want.map((d) => ({ ...d, name: Buffer.from(d.name) })));
  // It stopped because the next did not fit (or there was none).
  const next = entries[first + count];
  if (next) {
    const n = ('dirent' in next ? next.dirent : next).name.length;
    expect((plus ? direntplusSize(n) : direntSize(n)) > limit - size).toBe(true);
  }
}

function checkReply(plus: boolean, { length, offset }: { length: number; offset: number }, maxSize: number, entries: DirentEntry[] | DirentplusEntry[]): void {
  const bytes = Buffer.alloc(length, CANARY);
  let r;
  try {
    r = plus ? encodeReaddirplusReply(bytes, offset, 7n, maxSize, entries as DirentplusEntry[]) : encodeReaddirReply(bytes, offset, 7n, maxSize, entries as DirentEntry[]);
  } catch (e) {
    // Only a buffer without room for the out header is refused, and then nothing is written.
    expect(e).toBeInstanceOf(RangeError);
    expect(length - offset).toBeLessThan(OUT_HEADER_SIZE);
    expect(untouchedOutside(bytes, 0, 0)).toBe(true);
    return;
  }
  expect(r.len - OUT_HEADER_SIZE).toBeLessThanOrEqual(maxSize);
  expect(offset + r.len).toBeLessThanOrEqual(length);
  expect(untouchedOutside(bytes, offset, offset + r.len)).toBe(true);
  expect(bytes.readUInt32LE(offset)).toBe(r.len);
  expect(parse(bytes.subarray(offset + OUT_HEADER_SIZE, offset + r.len), plus)).toHaveLength(r.count);
}

describe('dirent encoder fuzz', () => {
  const entries = fc.array(dirent, { maxLength: 30 });
  const plusEntries = fc.array(plusEntry, { maxLength: 12 });
  const start = fc.nat({ max: 32 });
  fuzz('packDirents never writes past min(size, buffer) and packs a prefix that parses back', fc.property(layout, guestSize, entries, start, (l, s, e, st) => checkPack(false, l, s, e, st)), 1500);
  fuzz('packDirentplus likewise', fc.property(layout, guestSize, plusEntries, start, (l, s, e, st) => checkPack(true, l, s, e, st)), 1000);
  fuzz('READDIR and READDIRPLUS replies: header and body within the size asked and the buffer', fc.property(fc.boolean(), layout, guestSize, plusEntries, (plus, l, s, e) => checkReply(plus, l, s, plus ? e : e.map((x) => x.dirent))), 1500);
});
