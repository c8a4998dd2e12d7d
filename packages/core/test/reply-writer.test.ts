// ReplyWriter against chains of the shapes drivers use: the bytes that reach the chain are the same
// whatever the shape, and nothing outside the reply's bytes changes.
import { encodeAttrReply, FUSE_COMPAT_ATTR_OUT_SIZE, fuse_attr_out, OUT_HEADER_SIZE, type FuseAttrOutReply } from '../src/fuse';
import { gatherInto } from '../src/io-views';
import { ReplyWriter } from '../src/server/reply-writer';

const attr: FuseAttrOutReply = {
  attr_valid: 7n,
  attr_valid_nsec: 9,
  attr: { ino: 42n, size: 4096n, blocks: 8n, atime: 1n, mtime: 2n, ctime: 3n, atimensec: 4, mtimensec: 5, ctimensec: 6, mode: 0o100644, nlink: 1, uid: 1000, gid: 1000, rdev: 0, blksize: 4096, flags: 0 },
};
const LEN = OUT_HEADER_SIZE + fuse_attr_out.size;

/** `sizes` as views of one guest-like buffer, each followed by 8 canary bytes. */
function chain(sizes: number[]): { segs: Uint8Array[]; memory: Uint8Array } {
  const memory = new Uint8Array(sizes.reduce((a, n) => a + n + 8, 0)).fill(0xee);
  let at = 0;
  const segs = sizes.map((n) => {
    const v = memory.subarray(at, at + n);
    at += n + 8;
    return v;
  });
  return { segs, memory };
}

function expected(size = fuse_attr_out.size): Uint8Array {
  const b = new Uint8Array(OUT_HEADER_SIZE + size);
  encodeAttrReply(b, 0, 77n, attr, size === fuse_attr_out.size ? 38 : 8);
  return b;
}

describe('ReplyWriter.struct', () => {
  it.each([
    ['the Linux layout: a 16-byte out header, then the body', [16, fuse_attr_out.size]],
    ['header and body in one segment', [LEN]],
    ['a first segment that holds only part of the reply (scattered)', [20, 200]],
    ['a 16-byte header and a body split in two', [16, 50, 100]],
  ])('%s', (_, sizes) => {
    const { segs, memory } = chain(sizes);
    const before = Buffer.from(memory);
    const out = new ReplyWriter(segs, sizes.reduce((a, n) => a + n, 0), new Uint8Array(256));
    expect(out.struct(77n, fuse_attr_out, attr, fuse_attr_out.size)).toBe(true);
    expect(out.length).toBe(LEN);
    const got = new Uint8Array(sizes.reduce((a, n) => a + n, 0));
    gatherInto(got, segs);
    expect(Buffer.from(got.subarray(0, LEN))).toEqual(Buffer.from(expected()));
    // Only the reply's bytes changed.
    let changed = 0;
    for (let i = 0; i < memory.length; i++) if (memory[i] !== before[i]) changed++;
    expect(changed).toBeLessThanOrEqual(LEN);
    for (let k = 0, at = 0; k < sizes.length; at += sizes[k] + 8, k++) expect([...memory.subarray(at + sizes[k], at + sizes[k] + 8)]).toEqual(new Array(8).fill(0xee));
  });

  it('a compat size (a prefix of the struct) takes the contiguous path with the same bytes', () => {
    const { segs } = chain([16, fuse_attr_out.size]);
    const out = new ReplyWriter(segs, 16 + fuse_attr_out.size, new Uint8Array(256));
    expect(out.struct(77n, fuse_attr_out, attr, FUSE_COMPAT_ATTR_OUT_SIZE)).toBe(true);
    expect(out.length).toBe(OUT_HEADER_SIZE + FUSE_COMPAT_ATTR_OUT_SIZE);
    const got = new Uint8Array(out.length);
    gatherInto(got, [segs[0], segs[1].subarray(0, FUSE_COMPAT_ATTR_OUT_SIZE)]);
    expect(Buffer.from(got)).toEqual(Buffer.from(expected(FUSE_COMPAT_ATTR_OUT_SIZE)));
  });

  it('a chain too small for the reply gets nothing written and false', () => {
    const { segs, memory } = chain([16, 40]);
    const before = Buffer.from(memory);
    const out = new ReplyWriter(segs, 56, new Uint8Array(256));
    expect(out.struct(77n, fuse_attr_out, attr, fuse_attr_out.size)).toBe(false);
    expect(out.length).toBe(0);
    expect(Buffer.from(memory)).toEqual(before);
  });
});
