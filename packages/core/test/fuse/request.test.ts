import {
  decodeRequest,
  decodeRequestSegments,
  EINVAL,
  ENAMETOOLONG,
  ENOSYS,
  FUSE_INIT_BSWAP_RESERVED,
  FuseDecodeError,
  FuseOpcode as Op,
  nameToString,
  tryDecodeRequest,
  type DecodedRequest,
  type DecodeOptions,
  type RequestOf,
  type WriteRequest,
} from '../../src/fuse';
import { bytesJoined } from '../../src/io-views';
import { Bytes, request } from './helpers';

const UNIQUE = 0x1122334455667788n;

/** Decodes and asserts the opcode, narrowing the type. */
function decodeAs<K extends Op>(opcode: K, bytes: Uint8Array, opts?: DecodeOptions): RequestOf<K> {
  const r: DecodedRequest = decodeRequest(bytes, opts);
  expect(r.opcode).toBe(opcode);
  return r as RequestOf<K>;
}

/** Asserts a decode error with this errno, and that it carries the unique id. */
function expectError(bytes: Uint8Array, errno: number, opts?: DecodeOptions, message?: RegExp): FuseDecodeError {
  const r = tryDecodeRequest(bytes, opts);
  expect(r).toBeInstanceOf(FuseDecodeError);
  const e = r as FuseDecodeError;
  expect(e.errno).toBe(errno);
  if (message) expect(e.message).toMatch(message);
  expect(() => decodeRequest(bytes, opts)).toThrow(FuseDecodeError);
  return e;
}

const str = (b: Uint8Array): string => Buffer.from(b).toString('latin1');

describe('header', () => {
  it('decodes every fuse_in_header field', () => {
    const r = decodeAs(Op.FUSE_STATFS, request(Op.FUSE_STATFS, Buffer.alloc(0), { nodeid: 0xfffffffffffffffen, uid: 0xffffffff, gid: 7, pid: 99 }));
    expect(r.header).toEqual({
      len: 40,
      opcode: Op.FUSE_STATFS,
      unique: UNIQUE,
      nodeid: 0xfffffffffffffffen,
      uid: 0xffffffff,
      gid: 7,
      pid: 99,
      total_extlen: 0,
    });
    expect(r.noReply).toBe(false);
    expect(r.ext).toBeUndefined();
  });

  it('accepts a plain Uint8Array at an offset of a larger memory', () => {
    const bytes = request(Op.FUSE_LOOKUP, new Bytes().str('file.txt'));
    const memory = new Uint8Array(8192);
    memory.set(bytes, 1001);
    const r = decodeAs(Op.FUSE_LOOKUP, memory.subarray(1001, 1001 + bytes.length));
    expect(str(r.name)).toBe('file.txt');
    expect(Buffer.isBuffer(r.name)).toBe(true);
  });
});

describe('decodes each opcode', () => {
  it('LOOKUP: name without NUL, a copy of the request bytes (the guest cannot change it once checked)', () => {
    const bytes = request(Op.FUSE_LOOKUP, new Bytes().raw('caf\xc3\xa9\0'), { nodeid: 5n });
    const r = decodeAs(Op.FUSE_LOOKUP, bytes);
    expect(r.header.nodeid).toBe(5n);
    expect([...r.name]).toEqual([0x63, 0x61, 0x66, 0xc3, 0xa9]);
    expect(nameToString(r.name)).toBe('café');
    bytes[40] = 0x2f; // a '/' written after the decode does not reach the name
    expect(str(r.name)).toBe('caf\xc3\xa9');
  });

  it('LOOKUP of "." and ".." is allowed (FUSE_EXPORT_SUPPORT)', () => {
    expect(str(decodeAs(Op.FUSE_LOOKUP, request(Op.FUSE_LOOKUP, new Bytes().str('..'))).name)).toBe('..');
  });

  it('FORGET is a no-reply request', () => {
    const r = decodeAs(Op.FUSE_FORGET, request(Op.FUSE_FORGET, new Bytes().u64(3n), { nodeid: 77n }));
    expect(r.noReply).toBe(true);
    expect(r.arg).toEqual({ nlookup: 3n });
  });

  it('GETATTR', () => {
    const r = decodeAs(Op.FUSE_GETATTR, request(Op.FUSE_GETATTR, new Bytes().u32(1).u32(0xdead).u64(0x99n)));
    expect(r.arg).toEqual({ getattr_flags: 1, fh: 0x99n });
  });

  it('SETATTR with every field, times signed', () => {
    const body = new Bytes()
      .u32(0xfff) // valid
      .u32(0) // padding
      .u64(1n) // fh
      .u64(1n << 40n) // size
      .u64(0xabcdef0123456789n) // lock_owner
      .u64(-86400n) // atime (1969)
      .u64(1700000000n) // mtime
      .u64(1700000001n) // ctime
      .u32(1)
      .u32(2)
      .u32(3) // nsecs
      .u32(0o4755) // mode
      .u32(0) // unused4
      .u32(1000)
      .u32(1001) // uid gid
      .u32(0); // unused5
    const r = decodeAs(Op.FUSE_SETATTR, request(Op.FUSE_SETATTR, body));
    expect(r.arg).toEqual({
      valid: 0xfff,
      fh: 1n,
      size: 1n << 40n,
      lock_owner: 0xabcdef0123456789n,
      atime: -86400n,
      mtime: 1700000000n,
      ctime: 1700000001n,
      atimensec: 1,
      mtimensec: 2,
      ctimensec: 3,
      mode: 0o4755,
      uid: 1000,
      gid: 1001,
    });
  });

  it('READLINK, STATFS, DESTROY have no arguments', () => {
    decodeAs(Op.FUSE_READLINK, request(Op.FUSE_READLINK));
    decodeAs(Op.FUSE_STATFS, request(Op.FUSE_STATFS));
    decodeAs(Op.FUSE_DESTROY, request(Op.FUSE_DESTROY));
  });

  it('SYMLINK: entry name then link target', () => {
    const r = decodeAs(Op.FUSE_SYMLINK, request(Op.FUSE_SYMLINK, new Bytes().str('link').str('../a/b')));
    expect(str(r.name)).toBe('link');
    expect(str(r.linkname)).toBe('../a/b');
  });

  it('MKNOD, and its 8-byte compat form below 7.12', () => {
    const r = decodeAs(Op.FUSE_MKNOD, request(Op.FUSE_MKNOD, new Bytes().u32(0o20644).u32(0x0801).u32(0o022).u32(0).str('dev')));
    expect(r.arg).toEqual({ mode: 0o20644, rdev: 0x0801, umask: 0o022 });
    expect(str(r.name)).toBe('dev');
    const old = decodeAs(Op.FUSE_MKNOD, request(Op.FUSE_MKNOD, new Bytes().u32(0o10600).u32(0).str('fifo')), { minor: 11 });
    expect(old.arg).toEqual({ mode: 0o10600, rdev: 0, umask: 0 });
    expect(str(old.name)).toBe('fifo');
  });

  it('MKDIR', () => {
    const r = decodeAs(Op.FUSE_MKDIR, request(Op.FUSE_MKDIR, new Bytes().u32(0o755).u32(0o022).str('d')));
    expect(r.arg).toEqual({ mode: 0o755, umask: 0o022 });
    expect(str(r.name)).toBe('d');
  });

  it('UNLINK and RMDIR', () => {
    expect(str(decodeAs(Op.FUSE_UNLINK, request(Op.FUSE_UNLINK, new Bytes().str('f'))).name)).toBe('f');
    expect(str(decodeAs(Op.FUSE_RMDIR, request(Op.FUSE_RMDIR, new Bytes().str('d'))).name)).toBe('d');
  });

  it('RENAME and RENAME2: two names', () => {
    const r = decodeAs(Op.FUSE_RENAME, request(Op.FUSE_RENAME, new Bytes().u64(9n).str('old').str('new')));
    expect(r.arg).toEqual({ newdir: 9n });
    expect([str(r.oldname), str(r.newname)]).toEqual(['old', 'new']);
    const r2 = decodeAs(Op.FUSE_RENAME2, request(Op.FUSE_RENAME2, new Bytes().u64(9n).u32(2).u32(0).str('a').str('b')));
    expect(r2.arg).toEqual({ newdir: 9n, flags: 2 });
    expect([str(r2.oldname), str(r2.newname)]).toEqual(['a', 'b']);
  });

  it('LINK', () => {
    const r = decodeAs(Op.FUSE_LINK, request(Op.FUSE_LINK, new Bytes().u64(12n).str('hard')));
    expect(r.arg).toEqual({ oldnodeid: 12n });
    expect(str(r.newname)).toBe('hard');
  });

  it('OPEN and OPENDIR', () => {
    expect(decodeAs(Op.FUSE_OPEN, request(Op.FUSE_OPEN, new Bytes().u32(0o100002).u32(1))).arg).toEqual({ flags: 0o100002, open_flags: 1 });
    expect(decodeAs(Op.FUSE_OPENDIR, request(Op.FUSE_OPENDIR, new Bytes().u32(0o200000).u32(0))).arg).toEqual({ flags: 0o200000, open_flags: 0 });
  });

  it('READ, READDIR, READDIRPLUS', () => {
    const body = (): Bytes => new Bytes().u64(3n).u64(0x7ffffffffffff000n).u32(131072).u32(2).u64(0x55n).u32(0o2).u32(0);
    const expected = { fh: 3n, offset: 0x7ffffffffffff000n, size: 131072, read_flags: 2, lock_owner: 0x55n, flags: 2 };
    for (const op of [Op.FUSE_READ, Op.FUSE_READDIR, Op.FUSE_READDIRPLUS] as const) {
      expect(decodeAs(op, request(op, body())).arg).toEqual(expected);
    }
  });

  it('WRITE: data of exactly arg.size bytes, and the 24-byte compat form below 7.9', () => {
    const data = Buffer.from('hello\0world');
    const r = decodeAs(
      Op.FUSE_WRITE,
      request(Op.FUSE_WRITE, new Bytes().u64(4n).u64(4096n).u32(data.length).u32(1).u64(0n).u32(0o1).u32(0).raw(data)),
    );
    expect(r.arg).toEqual({ fh: 4n, offset: 4096n, size: 11, write_flags: 1, lock_owner: 0n, flags: 1 });
    expect(Buffer.compare(bytesJoined(r.data), data)).toBe(0);
    const old = decodeAs(Op.FUSE_WRITE, request(Op.FUSE_WRITE, new Bytes().u64(4n).u64(0n).u32(2).u32(0).raw('hi')), { minor: 8 });
    expect(old.arg).toEqual({ fh: 4n, offset: 0n, size: 2, write_flags: 0, lock_owner: 0n, flags: 0 });
    expect(str(bytesJoined(old.data))).toBe('hi');
  });

  it('WRITE in segments (header, fuse_write_in, a page each): the data stays in its segments, not copied', () => {
    const data = Buffer.alloc(3 * 4096 + 100);
    for (let i = 0; i < data.length; i++) data[i] = i & 0xff;
    const whole = request(Op.FUSE_WRITE, new Bytes().u64(4n).u64(8192n).u32(data.length).u32(0).u64(0n).u32(0o2).u32(0).raw(data));
    const segments = [whole.subarray(0, 40), whole.subarray(40, 80), ...[0, 1, 2, 3].map((i) => whole.subarray(80 + i * 4096, Math.min(whole.length, 80 + (i + 1) * 4096)))];
    const r = decodeRequestSegments(segments) as WriteRequest;
    expect(r.opcode).toBe(Op.FUSE_WRITE);
    expect(r.arg).toMatchObject({ fh: 4n, offset: 8192n, size: data.length });
    expect(Array.isArray(r.data)).toBe(true);
    const views = r.data as readonly Uint8Array[];
    expect(views.map((v) => v.byteLength)).toEqual([4096, 4096, 4096, 100]);
    expect(views.every((v, i) => v.buffer === whole.buffer && v.byteOffset === whole.byteOffset + 80 + i * 4096)).toBe(true);
    expect(Buffer.compare(bytesJoined(r.data), data)).toBe(0);
    // The head itself split oddly still decodes; a size that disagrees is the whole decoder's EINVAL.
    const odd = decodeRequestSegments([whole.subarray(0, 13), whole.subarray(13, 97), whole.subarray(97)]) as WriteRequest;
    expect(Buffer.compare(bytesJoined(odd.data), data)).toBe(0);
    const bad = Buffer.from(whole);
    bad.writeUInt32LE(data.length - 1, 40 + 16);
    expect(() => decodeRequestSegments([bad.subarray(0, 80), bad.subarray(80)])).toThrow(/write data: 12388 bytes follow, size says 12387/);
    expect(() => decodeRequestSegments([bad.subarray(0, 40), bad.subarray(40, 80), bad.subarray(80)])).toThrow(/write data: 12388 bytes follow, size says 12387/);
    // A chain without readable bytes is a short header (nothing to answer), not a crash.
    expect(() => decodeRequestSegments([])).toThrow(FuseDecodeError);
    // Other requests in several segments are joined as before.
    const getattr = request(Op.FUSE_GETATTR, new Bytes().u32(0).u32(0).u64(0n));
    expect(decodeRequestSegments([getattr.subarray(0, 40), getattr.subarray(40)]).opcode).toBe(Op.FUSE_GETATTR);
  });

  it('RELEASE, RELEASEDIR, FSYNC, FSYNCDIR, FLUSH', () => {
    const rel = new Bytes().u64(8n).u32(2).u32(1).u64(0xffn);
    expect(decodeAs(Op.FUSE_RELEASE, request(Op.FUSE_RELEASE, rel)).arg).toEqual({ fh: 8n, flags: 2, release_flags: 1, lock_owner: 0xffn });
    expect(decodeAs(Op.FUSE_RELEASEDIR, request(Op.FUSE_RELEASEDIR, rel)).arg.fh).toBe(8n);
    const fs = new Bytes().u64(8n).u32(1).u32(0);
    expect(decodeAs(Op.FUSE_FSYNC, request(Op.FUSE_FSYNC, fs)).arg).toEqual({ fh: 8n, fsync_flags: 1 });
    expect(decodeAs(Op.FUSE_FSYNCDIR, request(Op.FUSE_FSYNCDIR, fs)).arg.fsync_flags).toBe(1);
    expect(decodeAs(Op.FUSE_FLUSH, request(Op.FUSE_FLUSH, new Bytes().u64(8n).u32(0).u32(0).u64(0x1234n))).arg).toEqual({ fh: 8n, lock_owner: 0x1234n });
  });

  it('SETXATTR: 8-byte args by default, 16 with FUSE_SETXATTR_EXT; value may hold NULs', () => {
    const value = Buffer.from([0, 1, 0, 2]);
    const r = decodeAs(Op.FUSE_SETXATTR, request(Op.FUSE_SETXATTR, new Bytes().u32(4).u32(1).str('user.k').raw(value)));
    expect(r.arg).toEqual({ size: 4, flags: 1, setxattr_flags: 0 });
    expect(str(r.name)).toBe('user.k');
    expect([...r.value]).toEqual([0, 1, 0, 2]);
    const ext = decodeAs(
      Op.FUSE_SETXATTR,
      request(Op.FUSE_SETXATTR, new Bytes().u32(4).u32(2).u32(1).u32(0).str('system.posix_acl_access').raw(value)),
      { setxattrExt: true },
    );
    expect(ext.arg).toEqual({ size: 4, flags: 2, setxattr_flags: 1 });
    expect(str(ext.name)).toBe('system.posix_acl_access');
  });

  it('GETXATTR, LISTXATTR, REMOVEXATTR', () => {
    const g = decodeAs(Op.FUSE_GETXATTR, request(Op.FUSE_GETXATTR, new Bytes().u32(0).u32(0).str('security.selinux')));
    expect(g.arg).toEqual({ size: 0 });
    expect(str(g.name)).toBe('security.selinux');
    expect(decodeAs(Op.FUSE_LISTXATTR, request(Op.FUSE_LISTXATTR, new Bytes().u32(4096).u32(0))).arg).toEqual({ size: 4096 });
    expect(str(decodeAs(Op.FUSE_REMOVEXATTR, request(Op.FUSE_REMOVEXATTR, new Bytes().str('user.a/b'))).name)).toBe('user.a/b');
  });

  describe('INIT', () => {
    it('7.38: 64 bytes with flags2', () => {
      const body = new Bytes().u32(7).u32(38).u32(131072).u32(0x7ffff7ff).u32(0x0b).zeros(44);
      const r = decodeAs(Op.FUSE_INIT, request(Op.FUSE_INIT, body, { nodeid: 0n }));
      expect(r.arg).toEqual({ major: 7, minor: 38, max_readahead: 131072, flags: 0x7ffff7ff, flags2: 0x0b });
    });

    it('7.31: 16 bytes, flags2 reads 0', () => {
      const r = decodeAs(Op.FUSE_INIT, request(Op.FUSE_INIT, new Bytes().u32(7).u32(31).u32(65536).u32(0x3fffffb)));
      expect(r.arg).toEqual({ major: 7, minor: 31, max_readahead: 65536, flags: 0x3fffffb, flags2: 0 });
    });

    it('7.5: 8 bytes; another major needs only major/minor; a longer future struct is accepted', () => {
      expect(decodeAs(Op.FUSE_INIT, request(Op.FUSE_INIT, new Bytes().u32(7).u32(5))).arg.minor).toBe(5);
      expect(decodeAs(Op.FUSE_INIT, request(Op.FUSE_INIT, new Bytes().u32(8).u32(0))).arg.major).toBe(8);
      const future = new Bytes().u32(7).u32(45).u32(0).u32(1 << 30).u32(0).zeros(44 + 64);
      expect(decodeAs(Op.FUSE_INIT, request(Op.FUSE_INIT, future)).arg.minor).toBe(45);
    });

    it('rejects a body too short for its version', () => {
      expectError(request(Op.FUSE_INIT, new Bytes().u32(7)), EINVAL);
      expectError(request(Op.FUSE_INIT, new Bytes().u32(7).u32(31).u32(0)), EINVAL);
      expectError(request(Op.FUSE_INIT, new Bytes().u32(7).u32(36).u32(0).u32(1 << 30)), EINVAL, undefined, /FUSE_INIT_EXT/);
    });
  });

  it('GETLK, SETLK, SETLKW', () => {
    const body = (): Bytes => new Bytes().u64(2n).u64(0xfeedn).u64(10n).u64(0x7fffffffffffffffn).u32(1).u32(321).u32(0).u32(0);
    const expected = { fh: 2n, owner: 0xfeedn, lk: { start: 10n, end: 0x7fffffffffffffffn, type: 1, pid: 321 }, lk_flags: 0 };
    for (const op of [Op.FUSE_GETLK, Op.FUSE_SETLK, Op.FUSE_SETLKW] as const) {
      expect(decodeAs(op, request(op, body())).arg).toEqual(expected);
    }
  });

  it('ACCESS', () => {
    expect(decodeAs(Op.FUSE_ACCESS, request(Op.FUSE_ACCESS, new Bytes().u32(4).u32(0))).arg).toEqual({ mask: 4 });
  });

  it('CREATE, and its 8-byte compat form below 7.12', () => {
    const r = decodeAs(Op.FUSE_CREATE, request(Op.FUSE_CREATE, new Bytes().u32(0o101).u32(0o100644).u32(0o022).u32(1).str('new')));
    expect(r.arg).toEqual({ flags: 0o101, mode: 0o100644, umask: 0o022, open_flags: 1 });
    expect(str(r.name)).toBe('new');
    const old = decodeAs(Op.FUSE_CREATE, request(Op.FUSE_CREATE, new Bytes().u32(0o101).u32(0o100600).str('x')), { minor: 11 });
    expect(old.arg).toEqual({ flags: 0o101, mode: 0o100600, umask: 0, open_flags: 0 });
  });

  it('TMPFILE carries the placeholder name "/"', () => {
    const r = decodeAs(Op.FUSE_TMPFILE, request(Op.FUSE_TMPFILE, new Bytes().u32(0o20000002).u32(0o600).u32(0o022).u32(0).str('/')));
    expect(r.arg.mode).toBe(0o600);
    expect(str(r.name)).toBe('/');
  });

  it('INTERRUPT is a no-reply request', () => {
    const r = decodeAs(Op.FUSE_INTERRUPT, request(Op.FUSE_INTERRUPT, new Bytes().u64(1000n), { unique: 1001n, nodeid: 0n }));
    expect(r.noReply).toBe(true);
    expect(r.arg).toEqual({ unique: 1000n });
  });

  it('BMAP, POLL, FALLOCATE, LSEEK', () => {
    expect(decodeAs(Op.FUSE_BMAP, request(Op.FUSE_BMAP, new Bytes().u64(77n).u32(4096).u32(0))).arg).toEqual({ block: 77n, blocksize: 4096 });
    expect(decodeAs(Op.FUSE_POLL, request(Op.FUSE_POLL, new Bytes().u64(1n).u64(2n).u32(1).u32(0x19))).arg).toEqual({ fh: 1n, kh: 2n, flags: 1, events: 0x19 });
    expect(decodeAs(Op.FUSE_FALLOCATE, request(Op.FUSE_FALLOCATE, new Bytes().u64(1n).u64(0n).u64(1n << 33n).u32(3).u32(0))).arg).toEqual({
      fh: 1n,
      offset: 0n,
      length: 1n << 33n,
      mode: 3,
    });
    expect(decodeAs(Op.FUSE_LSEEK, request(Op.FUSE_LSEEK, new Bytes().u64(1n).u64(512n).u32(3).u32(0))).arg).toEqual({ fh: 1n, offset: 512n, whence: 3 });
  });

  it('IOCTL: input data of exactly in_size bytes', () => {
    const r = decodeAs(
      Op.FUSE_IOCTL,
      request(Op.FUSE_IOCTL, new Bytes().u64(5n).u32(0x10).u32(0x80086601).u64(0x7ffd0000n).u32(3).u32(8).raw('abc')),
    );
    expect(r.arg).toEqual({ fh: 5n, flags: 0x10, cmd: 0x80086601, arg: 0x7ffd0000n, in_size: 3, out_size: 8 });
    expect(str(r.data)).toBe('abc');
  });

  it('NOTIFY_REPLY: no reply, data of arg.size bytes', () => {
    const r = decodeAs(
      Op.FUSE_NOTIFY_REPLY,
      request(Op.FUSE_NOTIFY_REPLY, new Bytes().u64(0n).u64(4096n).u32(4).u32(0).u64(0n).u64(0n).raw('data')),
    );
    expect(r.noReply).toBe(true);
    expect(r.arg).toEqual({ offset: 4096n, size: 4 });
    expect(str(r.data)).toBe('data');
  });

  it('BATCH_FORGET: count records', () => {
    const r = decodeAs(
      Op.FUSE_BATCH_FORGET,
      request(Op.FUSE_BATCH_FORGET, new Bytes().u32(2).u32(0).u64(10n).u64(1n).u64(11n).u64(0xffffffffn)),
    );
    expect(r.noReply).toBe(true);
    expect(r.arg).toEqual({ count: 2 });
    expect(r.forgets).toEqual([
      { nodeid: 10n, nlookup: 1n },
      { nodeid: 11n, nlookup: 0xffffffffn },
    ]);
    expect(decodeAs(Op.FUSE_BATCH_FORGET, request(Op.FUSE_BATCH_FORGET, new Bytes().u32(0).u32(0))).forgets).toEqual([]);
  });

  it('COPY_FILE_RANGE', () => {
    const r = decodeAs(
      Op.FUSE_COPY_FILE_RANGE,
      request(Op.FUSE_COPY_FILE_RANGE, new Bytes().u64(1n).u64(2n).u64(3n).u64(4n).u64(5n).u64(0xffffffffffffffffn).u64(0n)),
    );
    expect(r.arg).toEqual({ fh_in: 1n, off_in: 2n, nodeid_out: 3n, fh_out: 4n, off_out: 5n, len: 0xffffffffffffffffn, flags: 0n });
  });

  it('SETUPMAPPING and REMOVEMAPPING (records at the unaligned offset 4)', () => {
    const s = decodeAs(Op.FUSE_SETUPMAPPING, request(Op.FUSE_SETUPMAPPING, new Bytes().u64(1n).u64(2n << 20n).u64(2n << 20n).u64(3n).u64(4n << 20n)));
    expect(s.arg).toEqual({ fh: 1n, foffset: 2n << 20n, len: 2n << 20n, flags: 3n, moffset: 4n << 20n });
    const r = decodeAs(
      Op.FUSE_REMOVEMAPPING,
      request(Op.FUSE_REMOVEMAPPING, new Bytes().u32(2).u64(0n).u64(1n << 21n).u64(1n << 21n).u64(1n << 21n)),
    );
    expect(r.arg).toEqual({ count: 2 });
    expect(r.mappings).toEqual([
      { moffset: 0n, len: 1n << 21n },
      { moffset: 1n << 21n, len: 1n << 21n },
    ]);
  });

  it('SYNCFS', () => {
    decodeAs(Op.FUSE_SYNCFS, request(Op.FUSE_SYNCFS, new Bytes().u64(0n)));
  });

  it('CUSE_INIT', () => {
    expect(decodeAs(Op.CUSE_INIT, request(Op.CUSE_INIT, new Bytes().u32(7).u32(38).u32(0).u32(1))).arg).toEqual({ major: 7, minor: 38, flags: 1 });
  });
});

describe('extensions', () => {
  it('splits off total_extlen * 8 trailing bytes as ext', () => {
    const secctx = new Bytes().u32(8).u32(0).build(); // empty fuse_secctx_header
    const body = new Bytes().u32(0o101).u32(0o644).u32(0).u32(0).str('f').raw(secctx);
    const r = decodeAs(Op.FUSE_CREATE, request(Op.FUSE_CREATE, body, { total_extlen: 1 }));
    expect(str(r.name)).toBe('f');
    expect(r.ext && [...r.ext]).toEqual([...secctx]);
  });

  it('at minor 36/37 takes bytes after the names of creating ops as the legacy secctx', () => {
    const tail = new Bytes().u32(8).u32(0).build();
    const mk = request(Op.FUSE_MKDIR, new Bytes().u32(0o755).u32(0).str('d').raw(tail));
    expect(decodeAs(Op.FUSE_MKDIR, mk, { minor: 37 }).ext?.length).toBe(8);
    expectError(mk, EINVAL, { minor: 38 }, /trailing/);
    expectError(mk, EINVAL, { minor: 35 }, /trailing/);
  });

  it('rejects total_extlen larger than the request', () => {
    expectError(request(Op.FUSE_STATFS, new Bytes().u64(0n), { total_extlen: 2 }), EINVAL, undefined, /total_extlen/);
  });
});

describe('decode errors', () => {
  it('truncated header: EINVAL with the unique while bytes 8-15 are there, else without one (nothing to reply to)', () => {
    const whole = request(Op.FUSE_GETATTR, Buffer.alloc(16));
    for (const n of [39, 16]) {
      const e = expectError(whole.subarray(0, n), EINVAL, undefined, new RegExp(`${n} bytes cannot hold fuse_in_header`));
      expect(e.unique).toBe(UNIQUE);
      expect(e.opcode).toBe(Op.FUSE_GETATTR);
      expect(e.noReply).toBe(false);
    }
    // A FORGET expects no reply, even cut short.
    expect((tryDecodeRequest(request(Op.FUSE_FORGET, Buffer.alloc(8)).subarray(0, 20)) as FuseDecodeError).noReply).toBe(true);
    for (const n of [15, 8, 0]) {
      const e = expectError(whole.subarray(0, n), EINVAL);
      expect(e.unique).toBeUndefined();
      expect(e.opcode).toBeUndefined();
    }
  });

  it('len differing from the bytes received: EINVAL with the unique id', () => {
    const truncated = request(Op.FUSE_LOOKUP, new Bytes().str('abc')).subarray(0, 42);
    const e = expectError(truncated, EINVAL, undefined, /len 44 != 42/);
    expect(e.unique).toBe(UNIQUE);
    expect(e.opcode).toBe(Op.FUSE_LOOKUP);
    expectError(request(Op.FUSE_STATFS, Buffer.alloc(0), { len: 39 }), EINVAL);
    expectError(request(Op.FUSE_STATFS, Buffer.alloc(8), { len: 40 }), EINVAL);
  });

  it('truncated struct', () => {
    expectError(request(Op.FUSE_READ, Buffer.alloc(39)), EINVAL, undefined, /truncated fuse_read_in: 39 of 40/);
    expectError(request(Op.FUSE_SETATTR, Buffer.alloc(0)), EINVAL);
    expectError(request(Op.FUSE_MKNOD, new Bytes().u32(0).u32(0).str('x')), EINVAL); // 7.38 needs 16 bytes
  });

  it('trailing bytes after a fixed struct or a name', () => {
    expectError(request(Op.FUSE_GETATTR, Buffer.alloc(17)), EINVAL, undefined, /1 unexpected trailing/);
    expectError(request(Op.FUSE_LOOKUP, new Bytes().str('a').raw('b')), EINVAL);
    expectError(request(Op.FUSE_READLINK, Buffer.alloc(8)), EINVAL);
  });

  it('names: missing NUL, empty, containing "/", too long', () => {
    expectError(request(Op.FUSE_LOOKUP, new Bytes().raw('abc')), EINVAL, undefined, /not NUL-terminated/);
    expectError(request(Op.FUSE_LOOKUP, new Bytes().raw('\0')), EINVAL, undefined, /empty/);
    expectError(request(Op.FUSE_LOOKUP, new Bytes().str('../etc/passwd')), EINVAL, undefined, /'\/'/);
    expectError(request(Op.FUSE_MKDIR, new Bytes().u32(0).u32(0).str('x'.repeat(1025))), ENAMETOOLONG);
    decodeAs(Op.FUSE_LOOKUP, request(Op.FUSE_LOOKUP, new Bytes().str('x'.repeat(1024))));
    expectError(request(Op.FUSE_RENAME, new Bytes().u64(1n).str('old')), EINVAL, undefined, /new name/);
    expectError(request(Op.FUSE_SYMLINK, new Bytes().str('l').raw('target')), EINVAL, undefined, /link target/);
    expectError(request(Op.FUSE_GETXATTR, new Bytes().u32(0).u32(0).raw('user.x')), EINVAL);
  });

  it('a NUL beyond the argument area (in the extensions) does not count', () => {
    const bytes = request(Op.FUSE_LOOKUP, new Bytes().raw('abcdefg').u32(8).u32(0), { total_extlen: 1 });
    expectError(bytes, EINVAL, undefined, /not NUL-terminated/);
  });

  it('write data length must match size', () => {
    const hdr = (size: number): Bytes => new Bytes().u64(1n).u64(0n).u32(size).u32(0).u64(0n).u32(0).u32(0);
    expectError(request(Op.FUSE_WRITE, hdr(10).raw('short')), EINVAL, undefined, /write data: 5 bytes follow, size says 10/);
    expectError(request(Op.FUSE_WRITE, hdr(2).raw('long')), EINVAL);
    expectError(request(Op.FUSE_WRITE, hdr(0xffffffff)), EINVAL);
  });

  it('setxattr value length must match size (and the ext flag must match the kernel)', () => {
    expectError(request(Op.FUSE_SETXATTR, new Bytes().u32(5).u32(0).str('user.k').raw('1234')), EINVAL, undefined, /xattr value/);
    // A 16-byte fuse_setxattr_in decoded as 8 bytes leaves garbage: refused, not misread.
    expectError(request(Op.FUSE_SETXATTR, new Bytes().u32(1).u32(0).u32(0).u32(0).str('user.k').raw('v')), EINVAL);
    expectError(request(Op.FUSE_SETXATTR, new Bytes().u32(1).u32(0).str('user.k').raw('v')), EINVAL, { setxattrExt: true });
  });

  it('ioctl and notify-reply data must match their sizes', () => {
    expectError(request(Op.FUSE_IOCTL, new Bytes().u64(5n).u32(0).u32(1).u64(0n).u32(4).u32(0).raw('abc')), EINVAL);
    const e = expectError(request(Op.FUSE_NOTIFY_REPLY, new Bytes().u64(0n).u64(0n).u32(9).u32(0).u64(0n).u64(0n)), EINVAL);
    expect(e.noReply).toBe(true);
  });

  it('batch forget count must match the records', () => {
    const tooLarge = expectError(
      request(Op.FUSE_BATCH_FORGET, new Bytes().u32(3).u32(0).u64(10n).u64(1n)),
      EINVAL,
      undefined,
      /count 3 x fuse_forget_one does not match 16 bytes/,
    );
    expect(tooLarge.noReply).toBe(true);
    expectError(request(Op.FUSE_BATCH_FORGET, new Bytes().u32(0xffffffff).u32(0)), EINVAL);
    expectError(request(Op.FUSE_BATCH_FORGET, new Bytes().u32(0).u32(0).u64(10n).u64(1n)), EINVAL);
    expectError(request(Op.FUSE_BATCH_FORGET, new Bytes().u32(1)), EINVAL, undefined, /truncated fuse_batch_forget_in/);
    expectError(request(Op.FUSE_REMOVEMAPPING, new Bytes().u32(2).u64(0n).u64(1n)), EINVAL);
  });

  it('a malformed FORGET is flagged no-reply', () => {
    expect(expectError(request(Op.FUSE_FORGET, Buffer.alloc(4)), EINVAL).noReply).toBe(true);
    expect(expectError(request(Op.FUSE_GETATTR, Buffer.alloc(4)), EINVAL).noReply).toBe(false);
  });

  it.each([0, 7, 19, 52, 4095, 0xffffffff, FUSE_INIT_BSWAP_RESERVED])('unknown opcode %d: ENOSYS with the unique id', (op) => {
    const e = expectError(request(op, Buffer.alloc(8)), ENOSYS, undefined, /unknown opcode/);
    expect(e.unique).toBe(UNIQUE);
    expect(e.opcode).toBe(op);
    expect(e.noReply).toBe(false);
  });

  it('decodeRequest rethrows, tryDecodeRequest never throws on arbitrary bytes', () => {
    // Deterministic fuzz: every known opcode with random argument bytes, random
    // total_extlen and options. Only FuseDecodeError may come out, never a throw.
    let seed = 12345;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const ops = Object.values(Op).filter((v): v is Op => typeof v === 'number');
    let ok = 0;
    for (let i = 0; i < 3000; i++) {
      const body = Buffer.alloc(rnd(120));
      for (let j = 0; j < body.length; j++) body[j] = rnd(4) === 0 ? 0 : rnd(256);
      const bytes = request(ops[rnd(ops.length)], body, { total_extlen: rnd(4) === 0 ? rnd(3) : 0 });
      const opts = { minor: [7, 11, 36, 38][rnd(4)], setxattrExt: rnd(2) === 0 };
      const r = tryDecodeRequest(bytes, opts);
      if (!(r instanceof FuseDecodeError)) ok++;
    }
    expect(ok).toBeGreaterThan(0);
  });
});
