// Fuzzing the replies whose size the guest chose (READ, READDIR, READDIRPLUS, GETXATTR, LISTXATTR:
// fuse_read_in.size / fuse_getxattr_in.size) against chains of any shape: the reply stays inside the
// chain's writable segments (nothing around them changes), its body is never longer than the size
// asked, and the filesystem is never asked for more than the chain can carry back (a guest could
// otherwise make the daemon read or allocate up to 4 GiB for a 16-byte buffer).
import fc from 'fast-check';
import type { DirentSink, FileSystem, ReadReply, ReadTarget } from '../src/filesystem';
import {
  decodeRequest,
  direntplusSize,
  direntSize,
  EIO,
  ERANGE,
  FUSE_KERNEL_MINOR_VERSION,
  FUSE_KERNEL_VERSION,
  FuseOpcode as Op,
  OUT_HEADER_SIZE,
  fuse_getxattr_in,
  fuse_init_in,
  fuse_read_in,
  type FuseEntryOutReply,
  type Struct,
} from '../src/fuse';
import { scatterInto } from '../src/io-views';
import { FuseServer } from '../src/server/fuse-server';
import { ReplyWriter } from '../src/server/reply-writer';
import { RequestHandle } from '../src/virtio-fs/request-context';
import { fuzz } from '@vfsd/vhost/testing';
import { request } from './fuse/helpers';

const CANARY = 0xee;

function entryOf(ino: bigint): FuseEntryOutReply {
  return { nodeid: ino, generation: 0n, entry_valid: 0n, attr_valid: 0n, entry_valid_nsec: 0, attr_valid_nsec: 0, attr: { ino, mode: 0o100644, nlink: 1, size: 0n, blocks: 0n, atime: 0n, mtime: 0n, ctime: 0n, atimensec: 0, mtimensec: 0, ctimensec: 0, uid: 0, gid: 0, rdev: 0, blksize: 4096, flags: 0 } };
}

/** A filesystem whose directory, file and xattrs are the case's; it records the largest size asked of it. */
class CaseFs implements FileSystem {
  asked = 0;
  constructor(
    readonly names: Buffer[],
    readonly file: Buffer,
    readonly xattr: Buffer,
  ) {}
  readdir(_: unknown, req: { arg: { size: number } }, sink: DirentSink): void {
    this.asked = Math.max(this.asked, req.arg.size, sink.left);
    // As the passthrough does: entries until the sink refuses one.
    for (const [i, name] of this.names.entries()) {
      if (!sink.add(BigInt(i + 2), BigInt(i + 1), 8, name, sink.plus ? entryOf(BigInt(i + 2)) : undefined)) break;
    }
  }
  read(_: unknown, req: { arg: { offset: bigint; size: number } }, into?: ReadTarget): ReadReply {
    this.asked = Math.max(this.asked, req.arg.size);
    // The size asked is what a real filesystem allocates or reads for a reply without a target.
    const data = this.file.subarray(Math.min(Number(req.arg.offset), this.file.length)).subarray(0, req.arg.size);
    return into ? { placed: scatterInto(into.buffers, data) } : Buffer.from(data);
  }
  getxattr(): Buffer {
    return this.xattr;
  }
  listxattr(): Buffer {
    return this.xattr;
  }
}

const OPS = [Op.FUSE_READ, Op.FUSE_READDIR, Op.FUSE_READDIRPLUS, Op.FUSE_GETXATTR, Op.FUSE_LISTXATTR] as const;

const guestSize = fc.oneof(fc.nat({ max: 64 }), fc.nat({ max: 4096 }), fc.constant(0xffffffff), fc.nat({ max: 0xffffffff }));

/** Writable segments at random places of one arena, with gaps between them (the canary shows writes). */
const chain = fc.array(fc.record({ gap: fc.nat({ max: 32 }), len: fc.oneof(fc.constant(16), fc.integer({ min: 1, max: 700 })) }), { maxLength: 5 });

const caseArb = fc.record({
  op: fc.constantFrom(...OPS),
  size: guestSize,
  offset: fc.nat({ max: 3000 }),
  chain,
  names: fc.array(fc.uint8Array({ minLength: 1, maxLength: 40 }).map((b) => Buffer.from(b.map((c) => (c === 0x2f ? 0x2e : c)))), { maxLength: 40 }),
  file: fc.nat({ max: 3000 }).map((n) => Buffer.alloc(n, 0x5a)),
  xattr: fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
});

function struct<T>(s: Struct<unknown, T>, v: T): Buffer {
  const b = Buffer.alloc(s.size);
  s.encode(v, b, 0);
  return b;
}

function initialized(fs: FileSystem): FuseServer {
  const server = new FuseServer(fs);
  const init = decodeRequest(request(Op.FUSE_INIT, struct(fuse_init_in, { major: FUSE_KERNEL_VERSION, minor: FUSE_KERNEL_MINOR_VERSION, max_readahead: 0, flags: 0, flags2: 0 })));
  const out = new ReplyWriter([new Uint8Array(256)], 256, new Uint8Array(4096));
  server.serve(new RequestHandle(init.header, false), init, out);
  expect(server.initialized).toBe(true);
  return server;
}

type Case = typeof caseArb extends fc.Arbitrary<infer T> ? T : never;

function check(c: Case): void {
  const fs = new CaseFs(c.names, c.file, c.xattr);
  const server = initialized(fs);
  const body =
    c.op === Op.FUSE_GETXATTR || c.op === Op.FUSE_LISTXATTR
      ? Buffer.concat([struct(fuse_getxattr_in, { size: c.size }), c.op === Op.FUSE_GETXATTR ? Buffer.from('user.x\0') : Buffer.alloc(0)])
      : struct(fuse_read_in, { fh: 0n, offset: BigInt(c.offset), size: c.size, read_flags: 0, lock_owner: 0n, flags: 0 });
  const req = decodeRequest(request(c.op, body, { unique: 99n }));
  const arena = Buffer.alloc(c.chain.reduce((n, s) => n + s.gap + s.len, 0) + 32, CANARY);
  const segments: Buffer[] = [];
  const inside = new Uint8Array(arena.length);
  let at = 0;
  for (const s of c.chain) {
    at += s.gap;
    segments.push(arena.subarray(at, at + s.len));
    inside.fill(1, at, at + s.len);
    at += s.len;
  }
  const capacity = segments.reduce((n, s) => n + s.length, 0);
  const out = new ReplyWriter(segments, capacity, new Uint8Array(4096));
  const served = server.serve(new RequestHandle(req.header, false), req, out);
  expect(served).toBeUndefined(); // this filesystem answers inline
  const outside = arena.filter((_, i) => !inside[i]);
  expect(outside.every((b) => b === CANARY)).toBe(true);
  expect(out.length).toBeLessThanOrEqual(capacity);
  // The filesystem was asked for no more than the chain can carry (one byte more tells "too big").
  if (c.op !== Op.FUSE_GETXATTR && c.op !== Op.FUSE_LISTXATTR) expect(fs.asked).toBeLessThanOrEqual(Math.max(0, capacity - OUT_HEADER_SIZE) + 1);
  if (out.length === 0) {
    expect(capacity).toBeLessThan(OUT_HEADER_SIZE);
    return;
  }
  const reply = Buffer.concat(segments).subarray(0, out.length);
  expect(reply.readUInt32LE(0)).toBe(out.length);
  expect(reply.readBigUInt64LE(8)).toBe(99n);
  const error = -reply.readInt32LE(4);
  const bodyLen = out.length - OUT_HEADER_SIZE;
  if (error !== 0) {
    expect([EIO, ERANGE]).toContain(error);
    expect(bodyLen).toBe(0);
    return;
  }
  if ((c.op === Op.FUSE_GETXATTR || c.op === Op.FUSE_LISTXATTR) && c.size === 0) {
    expect(reply.readUInt32LE(16)).toBe(c.xattr.length); // the size-only form
    return;
  }
  expect(bodyLen).toBeLessThanOrEqual(c.size);
  if (c.op === Op.FUSE_READ) expect(bodyLen).toBe(Math.max(0, Math.min(c.size, c.file.length - c.offset)));
  if (c.op === Op.FUSE_GETXATTR || c.op === Op.FUSE_LISTXATTR) expect(reply.subarray(16).equals(c.xattr)).toBe(true);
  if (c.op === Op.FUSE_READDIR || c.op === Op.FUSE_READDIRPLUS) {
    const plus = c.op === Op.FUSE_READDIRPLUS;
    // Whole records only; each one of the names, in order.
    let pos = 16;
    let i = 0;
    while (pos < out.length) {
      const n = reply.readUInt32LE(pos + (plus ? 128 : 0) + 16);
      expect(Buffer.from(reply.subarray(pos + (plus ? 152 : 24), pos + (plus ? 152 : 24) + n)).equals(c.names[i++])).toBe(true);
      pos += plus ? direntplusSize(n) : direntSize(n);
    }
    expect(pos).toBe(out.length);
  }
}

describe('replies sized by the guest', () => {
  fuzz('stay in the chain and within the size asked; the filesystem is asked for what the chain can carry', fc.property(caseArb, check), 2500);

  test('a READ of 4 GiB - 1 into a 16-byte chain: EIO, and the filesystem is asked for 1 byte, not 4 GiB', () => {
    const fs = new CaseFs([], Buffer.alloc(100, 1), Buffer.alloc(0));
    const server = initialized(fs);
    const req = decodeRequest(request(Op.FUSE_READ, struct(fuse_read_in, { fh: 0n, offset: 0n, size: 0xffffffff, read_flags: 0, lock_owner: 0n, flags: 0 })));
    const seg = Buffer.alloc(16);
    const out = new ReplyWriter([seg], 16, new Uint8Array(64));
    server.serve(new RequestHandle(req.header, false), req, out);
    expect(seg.readInt32LE(4)).toBe(-EIO);
    expect(fs.asked).toBe(1);
  });

  test('a READDIR of 4 GiB - 1 into a 100-byte chain: the entries that fit, the filesystem asked for 84 bytes', () => {
    const fs = new CaseFs([Buffer.from('a'), Buffer.from('b'), Buffer.from('c'), Buffer.from('d')], Buffer.alloc(0), Buffer.alloc(0));
    const server = initialized(fs);
    const req = decodeRequest(request(Op.FUSE_READDIR, struct(fuse_read_in, { fh: 0n, offset: 0n, size: 0xffffffff, read_flags: 0, lock_owner: 0n, flags: 0 })));
    const seg = Buffer.alloc(100);
    const out = new ReplyWriter([seg], 100, new Uint8Array(64));
    server.serve(new RequestHandle(req.header, false), req, out);
    expect(seg.readInt32LE(4)).toBe(0);
    expect(out.length).toBe(16 + 2 * direntSize(1)); // 3 x 32 bytes would not fit 84
    expect(fs.asked).toBe(84);
  });
});
