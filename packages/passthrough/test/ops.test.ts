// One group per FUSE operation against a temporary directory: results and errno values compared with
// the same operation done directly on the host. Run with the pool inline (0) and with workers (2, with
// inlineBelow 0 so that every call goes through the ring and its message port).
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  EEXIST,
  EINVAL,
  ENOENT,
  ENOSYS,
  ENOTDIR,
  ENOTEMPTY,
  EROFS,
  FATTR_ATIME,
  FATTR_ATIME_NOW,
  FATTR_FH,
  FATTR_GID,
  FATTR_MODE,
  FATTR_MTIME,
  FATTR_MTIME_NOW,
  FATTR_SIZE,
  FATTR_UID,
  FOPEN_DIRECT_IO,
  FOPEN_KEEP_CACHE,
  FUSE_ASYNC_DIO,
  FUSE_ATOMIC_O_TRUNC,
  FUSE_AUTO_INVAL_DATA,
  FUSE_CACHE_SYMLINKS,
  FUSE_DONT_MASK,
  FUSE_CREATE_SUPP_GROUP,
  FUSE_INIT_EXT,
  FUSE_DO_READDIRPLUS,
  FUSE_EXPORT_SUPPORT,
  FUSE_FLOCK_LOCKS,
  FUSE_HANDLE_KILLPRIV_V2,
  FUSE_PARALLEL_DIROPS,
  FUSE_POSIX_LOCKS,
  FUSE_READDIRPLUS_AUTO,
  FUSE_ROOT_ID,
  FuseOpcode,
  FsError,
  joinInitFlags,
  packDirentplus,
  packDirents,
  type FuseEntryOut,
  fuseAttrOf,
} from '@vfsd/core';
import { PassthroughFs, type PassthroughOptions } from '../src';
import { lseek as hostLseek } from '../src/sys/libc';
import { ctx, initReq, lookupReq, openReq, releaseReq, rq, tempDir, promised, type Listed, type PromisedPassthrough } from './helpers';

const O_RDONLY = 0;
const O_WRONLY = 1;
const O_RDWR = 2;
const O_CREAT = 0o100;
const O_EXCL = 0o200;
const O_TRUNC = 0o1000;
const O_DIRECTORY = 0o200000;
const S_IFREG = 0o100000;
const S_IFIFO = 0o010000;
const S_IFMT = 0o170000;
const SEEK_DATA = 3;
const SEEK_HOLE = 4;
const RENAME_NOREPLACE = 1;
const RENAME_EXCHANGE = 2;

/** The positive errno the host gives for fn, or 0. */
function hostErrno(fn: () => unknown): number {
  try {
    fn();
    return 0;
  } catch (e) {
    return Math.abs((e as NodeJS.ErrnoException).errno ?? 0);
  }
}

async function fsErrno(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 0;
  } catch (e) {
    if (!(e instanceof FsError)) throw e;
    return e.errno;
  }
}

const b = (s: string) => Buffer.from(s);

// The third run holds inodes by file handle with room for 16 fds: most calls reopen their inode.
describe.each<[string, number, Partial<PassthroughOptions>]>([
  ['inline', 0, {}],
  ['workers', 2, {}],
  ['file handles, 16 fds', 0, { inodeFileHandles: 'mandatory', inodeFdCache: 16 }],
])('PassthroughFs operations (%s)', (_label, threadPoolSize, modeOptions) => {
  let dir: string;
  let outside: string;
  let pfs: PromisedPassthrough;

  function make(options: Partial<PassthroughOptions> = {}): PromisedPassthrough {
    return promised(new PassthroughFs({ sharedDir: dir, threadPoolSize, pool: { inlineBelow: 0 }, ...modeOptions, ...options }));
  }

  beforeEach(() => {
    outside = tempDir();
    dir = path.join(outside, 'share');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(outside, 'secret'), 'secret');
    fs.writeFileSync(path.join(dir, 'a.txt'), 'hello');
    fs.mkdirSync(path.join(dir, 'sub'));
    fs.writeFileSync(path.join(dir, 'sub', 'b.txt'), 'bb');
    pfs = make();
  });

  afterEach(async () => {
    await pfs.shutdown();
    fs.rmSync(outside, { recursive: true, force: true });
  });

  async function lookup(name: string, parent: bigint = FUSE_ROOT_ID): Promise<FuseEntryOut> {
    return pfs.lookup(ctx(), lookupReq(name, parent));
  }

  async function openFile(nodeid: bigint, flags: number): Promise<bigint> {
    return (await pfs.open(ctx(), openReq(nodeid, flags))).fh;
  }

  async function listAll(nodeid: bigint, plus: boolean, size = 4096): Promise<Listed> {
    const fh = (await pfs.opendir(ctx(), rq(FuseOpcode.FUSE_OPENDIR, nodeid, { arg: { flags: O_RDONLY | O_DIRECTORY, open_flags: 0 } }))).fh;
    const all: Listed = [];
    let offset = 0n;
    for (;;) {
      const op = plus ? FuseOpcode.FUSE_READDIRPLUS : FuseOpcode.FUSE_READDIR;
      const got = await pfs.readdir(ctx(), rq(op, nodeid, { arg: { fh, offset, size, read_flags: 0, lock_owner: 0n, flags: 0 } }), plus);
      if (got.length === 0) break;
      all.push(...got);
      offset = got[got.length - 1].off;
    }
    await pfs.releasedir(ctx(), rq(FuseOpcode.FUSE_RELEASEDIR, nodeid, { arg: { fh, flags: 0, release_flags: 0, lock_owner: 0n } }));
    return all;
  }

  describe('INIT', () => {
    test('offers readdirplus and export support; the options change the open flags', async () => {
      const r = await pfs.init(ctx(), initReq());
      const flags = joinInitFlags({ flags: r.flags ?? 0, flags2: r.flags2 ?? 0 });
      expect(flags & FUSE_DO_READDIRPLUS).toBe(FUSE_DO_READDIRPLUS);
      expect(flags & FUSE_EXPORT_SUPPORT).toBe(FUSE_EXPORT_SUPPORT);
      // What a Linux 6.x virtiofs guest gets by default (the server adds ASYNC_READ, BIG_WRITES, MAX_PAGES).
      const expected = [
        FUSE_POSIX_LOCKS, FUSE_FLOCK_LOCKS, FUSE_ATOMIC_O_TRUNC, FUSE_EXPORT_SUPPORT, FUSE_DONT_MASK, FUSE_AUTO_INVAL_DATA,
        FUSE_DO_READDIRPLUS, FUSE_READDIRPLUS_AUTO, FUSE_ASYNC_DIO, FUSE_PARALLEL_DIROPS, FUSE_HANDLE_KILLPRIV_V2, FUSE_CACHE_SYMLINKS,
        // As root, creating as the caller: the kernel tells the parent's supplementary group.
        ...(process.geteuid?.() === 0 ? [FUSE_CREATE_SUPP_GROUP, FUSE_INIT_EXT] : []),
      ].reduce((a, f) => a | f, 0n);
      expect(flags).toBe(expected);
      const a = await lookup('a.txt');
      const fh = await openFile(a.nodeid, O_RDONLY);
      await pfs.release(ctx(), releaseReq(a.nodeid, fh));
      await pfs.shutdown();
      pfs = make({ cache: 'never' });
      const never = joinInitFlags({ flags: (await pfs.init(ctx(), initReq())).flags ?? 0, flags2: 0 });
      expect(never & FUSE_DO_READDIRPLUS).toBe(0n);
      const n = await lookup('a.txt');
      expect(n.entry_valid).toBe(0n);
      expect((await pfs.open(ctx(), openReq(n.nodeid, O_RDONLY))).open_flags & FOPEN_DIRECT_IO).toBe(FOPEN_DIRECT_IO);
      await pfs.shutdown();
      pfs = make({ cache: 'always' });
      const al = await lookup('a.txt');
      expect((await pfs.open(ctx(), openReq(al.nodeid, O_RDONLY))).open_flags & FOPEN_KEEP_CACHE).toBe(FOPEN_KEEP_CACHE);
    });
  });

  describe('OPENDIR / READDIR / READDIRPLUS / RELEASEDIR', () => {
    beforeEach(() => {
      for (let i = 0; i < 300; i++) fs.writeFileSync(path.join(dir, 'sub', `file-with-a-longish-name-${i}`), '');
    });

    test('READDIR lists what the host lists, with . and .., across many calls', async () => {
      const sub = await lookup('sub');
      const got = await listAll(sub.nodeid, false, 1024);
      const names = got.map((e) => e.name.toString()).sort();
      expect(names).toEqual(['.', '..', ...fs.readdirSync(path.join(dir, 'sub'))].sort());
      const b1 = got.find((e) => e.name.toString() === 'b.txt')!;
      expect(b1.ino).toBe(fs.statSync(path.join(dir, 'sub', 'b.txt'), { bigint: true }).ino);
      expect(b1.type).toBe(8); // DT_REG
      // What one call returns always fits its size when the server packs it.
      const one = await pfs.readdir(ctx(), rq(FuseOpcode.FUSE_READDIR, sub.nodeid, { arg: { fh: await openDirFh(sub.nodeid), offset: 0n, size: 500, read_flags: 0, lock_owner: 0n, flags: 0 } }), false);
      expect(packDirents(Buffer.alloc(500), 0, 500, one).count).toBe(one.length);
    });

    async function openDirFh(nodeid: bigint): Promise<bigint> {
      return (await pfs.opendir(ctx(), rq(FuseOpcode.FUSE_OPENDIR, nodeid, { arg: { flags: O_RDONLY | O_DIRECTORY, open_flags: 0 } }))).fh;
    }

    test('READDIRPLUS counts a lookup only for the entries that fit', async () => {
      const sub = await lookup('sub');
      const before = pfs.inodes.size;
      const fh = await openDirFh(sub.nodeid);
      const size = 1000;
      const got = await pfs.readdir(ctx(), rq(FuseOpcode.FUSE_READDIRPLUS, sub.nodeid, { arg: { fh, offset: 0n, size, read_flags: 0, lock_owner: 0n, flags: 0 } }), true);
      expect(got.length).toBeGreaterThan(0);
      const packed = packDirentplus(Buffer.alloc(size), 0, size, got.map((e) => ({ entry_out: e.entry!, dirent: e })));
      expect(packed.count).toBe(got.length);
      const real = got.filter((e) => e.entry!.nodeid !== 0n);
      expect(pfs.inodes.size - before).toBe(real.length);
      for (const e of got) {
        const name = e.name.toString();
        if (name === '.' || name === '..') expect(e.entry!.nodeid).toBe(0n);
        else {
          expect(pfs.inodes.get(e.entry!.nodeid)!.lookups).toBe(1n);
          expect(fuseAttrOf(e.entry!.attr).ino).toBe(fs.lstatSync(path.join(dir, 'sub', name), { bigint: true }).ino);
        }
      }
    });

    test('the whole listing through READDIRPLUS; FSYNCDIR; a bad handle is EBADF', async () => {
      const sub = await lookup('sub');
      const got = await listAll(sub.nodeid, true);
      expect(got.length).toBe(fs.readdirSync(path.join(dir, 'sub')).length + 2);
      const fh = await openDirFh(sub.nodeid);
      await pfs.fsyncdir(ctx(), rq(FuseOpcode.FUSE_FSYNCDIR, sub.nodeid, { arg: { fh, fsync_flags: 0 } }));
      await pfs.releasedir(ctx(), rq(FuseOpcode.FUSE_RELEASEDIR, sub.nodeid, { arg: { fh, flags: 0, release_flags: 0, lock_owner: 0n } }));
      expect(await fsErrno(pfs.fsyncdir(ctx(), rq(FuseOpcode.FUSE_FSYNCDIR, sub.nodeid, { arg: { fh, fsync_flags: 0 } })))).toBe(9);
    });

    test("'..' of the root is the root", async () => {
      expect((await lookup('..')).nodeid).toBe(FUSE_ROOT_ID);
      const sub = await lookup('sub');
      expect((await lookup('..', sub.nodeid)).nodeid).toBe(FUSE_ROOT_ID);
      expect((await lookup('.', sub.nodeid)).nodeid).toBe(sub.nodeid);
    });
  });

  describe('CREATE / READ / WRITE / FSYNC / FALLOCATE / LSEEK / COPY_FILE_RANGE / SYNCFS / TMPFILE', () => {
    async function create(name: string, flags: number, mode = S_IFREG | 0o666, umask = 0o022) {
      return pfs.create(ctx(), rq(FuseOpcode.FUSE_CREATE, FUSE_ROOT_ID, { name: b(name), arg: { flags, mode, umask, open_flags: 0 } }));
    }
    const write = (nodeid: bigint, fh: bigint, offset: bigint, data: Buffer) =>
      pfs.write(ctx(), rq(FuseOpcode.FUSE_WRITE, nodeid, { arg: { fh, offset, size: data.length, write_flags: 0, lock_owner: 0n, flags: 0 }, data }));
    const read = (nodeid: bigint, fh: bigint, offset: bigint, size: number) =>
      pfs.read(ctx(), rq(FuseOpcode.FUSE_READ, nodeid, { arg: { fh, offset, size, read_flags: 0, lock_owner: 0n, flags: 0 } }));

    test('create applies the umask, O_EXCL fails as on the host, data goes both ways', async () => {
      const { entry, open } = await create('new.txt', O_RDWR | O_CREAT | O_EXCL, S_IFREG | 0o666, 0o027);
      expect(fs.statSync(path.join(dir, 'new.txt')).mode & 0o777).toBe(0o640);
      expect(entry.attr.mode).toBe(S_IFREG | 0o640);
      expect(await write(entry.nodeid, open.fh, 0n, b('hello world'))).toBe(11);
      expect(Buffer.from(await read(entry.nodeid, open.fh, 6n, 100)).toString()).toBe('world');
      expect(fs.readFileSync(path.join(dir, 'new.txt'), 'utf8')).toBe('hello world');
      expect((await read(entry.nodeid, open.fh, 100n, 10)).length).toBe(0);
      await pfs.fsync(ctx(), rq(FuseOpcode.FUSE_FSYNC, entry.nodeid, { arg: { fh: open.fh, fsync_flags: 1 } }));
      await pfs.release(ctx(), releaseReq(entry.nodeid, open.fh));
      const host = hostErrno(() => fs.openSync(path.join(dir, 'new.txt'), O_RDWR | O_CREAT | O_EXCL));
      expect(host).toBe(EEXIST);
      expect(await fsErrno(create('new.txt', O_RDWR | O_CREAT | O_EXCL))).toBe(host);
      // Without O_EXCL an existing file is opened; O_TRUNC empties it.
      const again = await create('new.txt', O_RDWR | O_CREAT | O_TRUNC);
      expect(again.entry.nodeid).toBe(entry.nodeid);
      expect(fs.statSync(path.join(dir, 'new.txt')).size).toBe(0);
      await pfs.release(ctx(), releaseReq(entry.nodeid, again.open.fh));
      // Names that are not one component.
      expect(await fsErrno(create('x/y', O_RDWR | O_CREAT))).toBe(EINVAL);
      expect(await fsErrno(create('..', O_RDWR | O_CREAT))).toBe(ENOENT);
    });

    test('a big write and read (1 MiB) round trip', async () => {
      const { entry, open } = await create('big', O_RDWR | O_CREAT);
      const data = Buffer.alloc(1 << 20);
      for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
      expect(await write(entry.nodeid, open.fh, 4096n, data)).toBe(data.length);
      const back = Buffer.from(await read(entry.nodeid, open.fh, 4096n, data.length));
      expect(back.equals(data)).toBe(true);
      await pfs.release(ctx(), releaseReq(entry.nodeid, open.fh));
    });

    test('fallocate, SEEK_DATA / SEEK_HOLE, copy_file_range, syncfs agree with the host', async () => {
      const { entry, open } = await create('sparse', O_RDWR | O_CREAT);
      await pfs.fallocate(ctx(), rq(FuseOpcode.FUSE_FALLOCATE, entry.nodeid, { arg: { fh: open.fh, offset: 0n, length: 8192n, mode: 0 } }));
      expect(fs.statSync(path.join(dir, 'sparse')).size).toBe(8192);
      await write(entry.nodeid, open.fh, 1n << 20n, b('data'));
      const lseek = (offset: bigint, whence: number) => pfs.lseek(ctx(), rq(FuseOpcode.FUSE_LSEEK, entry.nodeid, { arg: { fh: open.fh, offset, whence } }));
      const hostFd = fs.openSync(path.join(dir, 'sparse'), O_RDONLY);
      try {
        for (const [off, whence] of [
          [0n, SEEK_HOLE],
          [0n, SEEK_DATA],
          [8192n, SEEK_DATA],
          [(1n << 20n) + 1n, SEEK_HOLE],
        ] as const) {
          expect(await lseek(off, whence)).toBe(hostLseek(hostFd, off, whence));
        }
        expect(hostLseek(hostFd, 10n << 20n, SEEK_DATA)).toBe(-6n);
        expect(await fsErrno(lseek(10n << 20n, SEEK_DATA))).toBe(6); // ENXIO past the end, as the host
      } finally {
        fs.closeSync(hostFd);
      }
      const dst = await create('copy', O_RDWR | O_CREAT);
      const n = await pfs.copyFileRange(
        ctx(),
        rq(FuseOpcode.FUSE_COPY_FILE_RANGE, entry.nodeid, { arg: { fh_in: open.fh, off_in: 1n << 20n, nodeid_out: dst.entry.nodeid, fh_out: dst.open.fh, off_out: 2n, len: 4n, flags: 0n } }),
      );
      expect(n).toBe(4);
      expect(fs.readFileSync(path.join(dir, 'copy')).subarray(2).toString()).toBe('data');
      await pfs.syncfs(ctx(), rq(FuseOpcode.FUSE_SYNCFS, FUSE_ROOT_ID, { arg: {} }));
      await pfs.release(ctx(), releaseReq(entry.nodeid, open.fh));
      await pfs.release(ctx(), releaseReq(dst.entry.nodeid, dst.open.fh));
    });

    test('tmpfile makes an unnamed file', async () => {
      const before = fs.readdirSync(dir).sort();
      const { entry, open } = await pfs.tmpfile(ctx(), rq(FuseOpcode.FUSE_TMPFILE, FUSE_ROOT_ID, { name: b('/'), arg: { flags: O_RDWR, mode: S_IFREG | 0o600, umask: 0, open_flags: 0 } }));
      expect(entry.attr.nlink).toBe(0);
      expect(await write(entry.nodeid, open.fh, 0n, b('t'))).toBe(1);
      expect(fs.readdirSync(dir).sort()).toEqual(before);
      await pfs.release(ctx(), releaseReq(entry.nodeid, open.fh));
    });
  });

  describe('namespace: MKDIR MKNOD SYMLINK READLINK UNLINK RMDIR RENAME RENAME2 LINK', () => {
    const mkdir = (name: string, parent = FUSE_ROOT_ID) => pfs.mkdir(ctx(), rq(FuseOpcode.FUSE_MKDIR, parent, { name: b(name), arg: { mode: 0o777, umask: 0o022 } }));
    const unlink = (name: string, parent = FUSE_ROOT_ID) => pfs.unlink(ctx(), rq(FuseOpcode.FUSE_UNLINK, parent, { name: b(name) }));
    const rmdir = (name: string, parent = FUSE_ROOT_ID) => pfs.rmdir(ctx(), rq(FuseOpcode.FUSE_RMDIR, parent, { name: b(name) }));
    const rename = (oldname: string, newname: string, flags = 0, from = FUSE_ROOT_ID, to = FUSE_ROOT_ID) =>
      pfs.rename(ctx(), rq(FuseOpcode.FUSE_RENAME2, from, { oldname: b(oldname), newname: b(newname), arg: { newdir: to, flags } }));

    test('mkdir and rmdir, with the host errnos', async () => {
      const d = await mkdir('d1');
      expect(fs.statSync(path.join(dir, 'd1')).mode & 0o777).toBe(0o755);
      expect(d.attr.mode & S_IFMT).toBe(0o040000);
      expect(await fsErrno(mkdir('d1'))).toBe(hostErrno(() => fs.mkdirSync(path.join(dir, 'd1'))));
      expect(await fsErrno(rmdir('sub'))).toBe(hostErrno(() => fs.rmdirSync(path.join(dir, 'sub'))));
      expect(await fsErrno(rmdir('sub'))).toBe(ENOTEMPTY);
      expect(await fsErrno(rmdir('a.txt'))).toBe(ENOTDIR);
      await rmdir('d1');
      expect(fs.existsSync(path.join(dir, 'd1'))).toBe(false);
      expect(await fsErrno(rmdir('d1'))).toBe(ENOENT);
    });

    test('mknod makes a FIFO; symlink and readlink; unlink', async () => {
      const f = await pfs.mknod(ctx(), rq(FuseOpcode.FUSE_MKNOD, FUSE_ROOT_ID, { name: b('fifo'), arg: { mode: S_IFIFO | 0o666, rdev: 0, umask: 0o002 } }));
      expect(f.attr.mode).toBe(S_IFIFO | 0o664);
      expect(fs.statSync(path.join(dir, 'fifo')).isFIFO()).toBe(true);
      const s = await pfs.symlink(ctx(), rq(FuseOpcode.FUSE_SYMLINK, FUSE_ROOT_ID, { name: b('ln'), linkname: b('../../etc/passwd') }));
      expect((await pfs.readlink(ctx(), rq(FuseOpcode.FUSE_READLINK, s.nodeid))).toString()).toBe('../../etc/passwd');
      expect(fs.readlinkSync(path.join(dir, 'ln'))).toBe('../../etc/passwd');
      expect(await fsErrno(pfs.readlink(ctx(), rq(FuseOpcode.FUSE_READLINK, f.nodeid)))).toBe(EINVAL);
      await unlink('ln');
      await unlink('fifo');
      expect(fs.readdirSync(dir).sort()).toEqual(['a.txt', 'sub']);
      expect(await fsErrno(unlink('nope'))).toBe(hostErrno(() => fs.unlinkSync(path.join(dir, 'nope'))));
      expect(await fsErrno(unlink('sub'))).toBe(hostErrno(() => fs.unlinkSync(path.join(dir, 'sub'))));
    });

    test('rename, rename over, NOREPLACE and EXCHANGE', async () => {
      const sub = await lookup('sub');
      await rename('a.txt', 'moved.txt', 0, FUSE_ROOT_ID, sub.nodeid);
      expect(fs.readFileSync(path.join(dir, 'sub', 'moved.txt'), 'utf8')).toBe('hello');
      await rename('moved.txt', 'b.txt', 0, sub.nodeid, sub.nodeid);
      expect(fs.readFileSync(path.join(dir, 'sub', 'b.txt'), 'utf8')).toBe('hello');
      fs.writeFileSync(path.join(dir, 'x'), 'x');
      fs.writeFileSync(path.join(dir, 'y'), 'y');
      expect(await fsErrno(rename('x', 'y', RENAME_NOREPLACE))).toBe(EEXIST);
      await rename('x', 'y', RENAME_EXCHANGE);
      expect(fs.readFileSync(path.join(dir, 'x'), 'utf8')).toBe('y');
      expect(fs.readFileSync(path.join(dir, 'y'), 'utf8')).toBe('x');
      expect(await fsErrno(rename('nope', 'z'))).toBe(hostErrno(() => fs.renameSync(path.join(dir, 'nope'), path.join(dir, 'z'))));
      expect(await fsErrno(rename('x', 'y', 64))).toBe(EINVAL);
    });

    test('link makes a second name for the inode', async () => {
      const a = await lookup('a.txt');
      const l = await pfs.link(ctx(), rq(FuseOpcode.FUSE_LINK, FUSE_ROOT_ID, { newname: b('a2'), arg: { oldnodeid: a.nodeid } }));
      expect(l.nodeid).toBe(a.nodeid);
      expect(l.attr.nlink).toBe(2);
      expect(fs.statSync(path.join(dir, 'a2')).ino).toBe(fs.statSync(path.join(dir, 'a.txt')).ino);
      expect(await fsErrno(pfs.link(ctx(), rq(FuseOpcode.FUSE_LINK, FUSE_ROOT_ID, { newname: b('a2'), arg: { oldnodeid: a.nodeid } })))).toBe(EEXIST);
    });
  });

  describe('SETATTR / STATFS / ACCESS', () => {
    const setattr = (nodeid: bigint, arg: Record<string, unknown>) =>
      pfs.setattr(ctx(), rq(FuseOpcode.FUSE_SETATTR, nodeid, { arg: { valid: 0, fh: 0n, size: 0n, lock_owner: 0n, atime: 0n, mtime: 0n, ctime: 0n, atimensec: 0, mtimensec: 0, ctimensec: 0, mode: 0, uid: 0, gid: 0, ...arg } }));

    test('mode, size (by inode and by handle), times (set and NOW), owner', async () => {
      const a = await lookup('a.txt');
      const p = path.join(dir, 'a.txt');
      expect((await setattr(a.nodeid, { valid: FATTR_MODE, mode: S_IFREG | 0o604 })).attr.mode).toBe(S_IFREG | 0o604);
      expect(fs.statSync(p).mode & 0o777).toBe(0o604);
      expect((await setattr(a.nodeid, { valid: FATTR_SIZE, size: 2n })).attr.size).toBe(2n);
      expect(fs.readFileSync(p, 'utf8')).toBe('he');
      const fh = await openFile(a.nodeid, O_RDWR);
      await setattr(a.nodeid, { valid: FATTR_SIZE | FATTR_FH, size: 1n, fh });
      expect(fs.statSync(p).size).toBe(1);
      await pfs.release(ctx(), releaseReq(a.nodeid, fh));
      const t = await setattr(a.nodeid, { valid: FATTR_ATIME | FATTR_MTIME, atime: 1000n, atimensec: 5, mtime: 2000n, mtimensec: 7 });
      expect([t.attr.atime, t.attr.atimensec, t.attr.mtime, t.attr.mtimensec]).toEqual([1000n, 5, 2000n, 7]);
      const st = fs.statSync(p, { bigint: true });
      expect(st.mtimeNs).toBe(2000n * 1_000_000_000n + 7n);
      const now = await setattr(a.nodeid, { valid: FATTR_MTIME | FATTR_MTIME_NOW });
      expect(now.attr.mtime).toBeGreaterThan(BigInt(Math.floor(Date.now() / 1000) - 60));
      expect(now.attr.atime).toBe(1000n); // untouched
      const atNow = await setattr(a.nodeid, { valid: FATTR_ATIME | FATTR_ATIME_NOW });
      expect(atNow.attr.atime).toBeGreaterThan(1000n);
      if (process.geteuid?.() === 0) {
        const o = await setattr(a.nodeid, { valid: FATTR_UID | FATTR_GID, uid: 1234, gid: 5678 });
        expect([o.attr.uid, o.attr.gid]).toEqual([1234, 5678]);
        expect(fs.statSync(p).uid).toBe(1234);
      }
      const sub = await lookup('sub');
      expect(await fsErrno(setattr(sub.nodeid, { valid: FATTR_SIZE, size: 0n }))).toBe(hostErrno(() => fs.truncateSync(path.join(dir, 'sub'), 0)));
    });

    test('statfs is the host filesystem; access follows the host', async () => {
      const st = await pfs.statfs(ctx(), rq(FuseOpcode.FUSE_STATFS, FUSE_ROOT_ID));
      const host = fs.statfsSync(dir, { bigint: true });
      expect(BigInt(st.bsize)).toBe(host.bsize);
      expect(st.blocks).toBe(host.blocks);
      expect(st.namelen).toBeGreaterThan(0);
      await pfs.access(ctx(), rq(FuseOpcode.FUSE_ACCESS, FUSE_ROOT_ID, { arg: { mask: 4 } }));
      const a = await lookup('a.txt');
      fs.chmodSync(path.join(dir, 'a.txt'), 0o644);
      expect(await fsErrno(pfs.access(ctx(), rq(FuseOpcode.FUSE_ACCESS, a.nodeid, { arg: { mask: 1 } })))).toBe(hostErrno(() => fs.accessSync(path.join(dir, 'a.txt'), 1)));
    });
  });

  describe('xattrs', () => {
    const xreq = (op: FuseOpcode, nodeid: bigint, fields: Record<string, unknown>) => rq(op, nodeid, fields);

    test('ENOSYS unless enabled', async () => {
      const a = await lookup('a.txt');
      expect(await fsErrno(pfs.getxattr(ctx(), xreq(FuseOpcode.FUSE_GETXATTR, a.nodeid, { name: b('user.k'), arg: { size: 0 } })))).toBe(ENOSYS);
      expect(await fsErrno(pfs.listxattr(ctx(), xreq(FuseOpcode.FUSE_LISTXATTR, a.nodeid, { arg: { size: 0 } })))).toBe(ENOSYS);
    });

    test('set, get, list, remove with xattr: true', async () => {
      await pfs.shutdown();
      pfs = make({ xattr: true });
      const a = await lookup('a.txt');
      const set = (name: string, value: string, flags = 0) =>
        pfs.setxattr(ctx(), xreq(FuseOpcode.FUSE_SETXATTR, a.nodeid, { name: b(name), value: b(value), arg: { size: value.length, flags, setxattr_flags: 0 } }));
      const setRes = await fsErrno(set('user.k', 'v'));
      if (setRes === 95) return; // the temp filesystem has no user xattrs (tmpfs before 6.6)
      expect(setRes).toBe(0);
      expect((await pfs.getxattr(ctx(), xreq(FuseOpcode.FUSE_GETXATTR, a.nodeid, { name: b('user.k'), arg: { size: 100 } }))).toString()).toBe('v');
      expect((await pfs.listxattr(ctx(), xreq(FuseOpcode.FUSE_LISTXATTR, a.nodeid, { arg: { size: 100 } }))).toString()).toContain('user.k\0');
      expect(await fsErrno(set('user.k', 'w', 1))).toBe(EEXIST); // XATTR_CREATE
      await pfs.removexattr(ctx(), xreq(FuseOpcode.FUSE_REMOVEXATTR, a.nodeid, { name: b('user.k') }));
      expect(await fsErrno(pfs.getxattr(ctx(), xreq(FuseOpcode.FUSE_GETXATTR, a.nodeid, { name: b('user.k'), arg: { size: 100 } })))).toBe(61); // ENODATA
    });
  });

  describe('readonly', () => {
    test('every modifying operation answers EROFS', async () => {
      await pfs.shutdown();
      pfs = make({ readonly: true, xattr: true });
      const a = await lookup('a.txt');
      const r = FUSE_ROOT_ID;
      const attempts: Array<Promise<unknown>> = [
        pfs.open(ctx(), openReq(a.nodeid, O_WRONLY)),
        pfs.open(ctx(), openReq(a.nodeid, O_RDONLY | O_TRUNC)),
        pfs.create(ctx(), rq(FuseOpcode.FUSE_CREATE, r, { name: b('n'), arg: { flags: O_RDWR | O_CREAT, mode: 0o644, umask: 0, open_flags: 0 } })),
        pfs.mkdir(ctx(), rq(FuseOpcode.FUSE_MKDIR, r, { name: b('d'), arg: { mode: 0o755, umask: 0 } })),
        pfs.unlink(ctx(), rq(FuseOpcode.FUSE_UNLINK, r, { name: b('a.txt') })),
        pfs.rmdir(ctx(), rq(FuseOpcode.FUSE_RMDIR, r, { name: b('sub') })),
        pfs.rename(ctx(), rq(FuseOpcode.FUSE_RENAME, r, { oldname: b('a.txt'), newname: b('b'), arg: { newdir: r } })),
        pfs.symlink(ctx(), rq(FuseOpcode.FUSE_SYMLINK, r, { name: b('s'), linkname: b('t') })),
        pfs.link(ctx(), rq(FuseOpcode.FUSE_LINK, r, { newname: b('l'), arg: { oldnodeid: a.nodeid } })),
        pfs.setattr(ctx(), rq(FuseOpcode.FUSE_SETATTR, a.nodeid, { arg: { valid: FATTR_MODE, mode: 0o600 } })),
        pfs.setxattr(ctx(), rq(FuseOpcode.FUSE_SETXATTR, a.nodeid, { name: b('user.k'), value: b('v'), arg: { size: 1, flags: 0 } })),
        pfs.access(ctx(), rq(FuseOpcode.FUSE_ACCESS, a.nodeid, { arg: { mask: 2 } })),
      ];
      for (const p of attempts) expect(await fsErrno(p)).toBe(EROFS);
      expect(fs.readdirSync(dir).sort()).toEqual(['a.txt', 'sub']);
      const fh = await openFile(a.nodeid, O_RDONLY);
      expect(await fsErrno(pfs.write(ctx(), rq(FuseOpcode.FUSE_WRITE, a.nodeid, { arg: { fh, offset: 0n, size: 1 }, data: b('x') })))).toBe(EROFS);
    });
  });

  describe('escape attempts never touch a file outside the shared directory', () => {
    beforeEach(() => {
      fs.symlinkSync(path.join(outside, 'secret'), path.join(dir, 'abs-link'));
      fs.symlinkSync('../secret', path.join(dir, 'rel-link'));
      fs.symlinkSync(outside, path.join(dir, 'dir-link'));
    });

    function secretUntouched(): void {
      expect(fs.readFileSync(path.join(outside, 'secret'), 'utf8')).toBe('secret');
      expect(fs.readdirSync(outside).sort()).toEqual(['secret', 'share']);
    }

    test('symlinks pointing outside are never followed', async () => {
      for (const name of ['abs-link', 'rel-link']) {
        const l = await lookup(name);
        expect(l.attr.mode & S_IFMT).toBe(0o120000);
        expect(await fsErrno(pfs.open(ctx(), openReq(l.nodeid, O_RDWR)))).toBe(40); // ELOOP
        expect(await fsErrno(pfs.open(ctx(), openReq(l.nodeid, O_RDWR | O_TRUNC)))).toBe(40);
        await pfs.setattr(ctx(), rq(FuseOpcode.FUSE_SETATTR, l.nodeid, { arg: { valid: FATTR_ATIME | FATTR_MTIME, atime: 5n, mtime: 5n, atimensec: 0, mtimensec: 0 } })).catch(() => undefined);
        expect(await fsErrno(pfs.setattr(ctx(), rq(FuseOpcode.FUSE_SETATTR, l.nodeid, { arg: { valid: FATTR_SIZE, size: 0n } })))).not.toBe(0);
      }
      expect(fs.statSync(path.join(outside, 'secret')).mtimeMs).toBeGreaterThan(10_000);
      const dl = await lookup('dir-link');
      // A symlink is no directory: nothing is created or found through it.
      expect(await fsErrno(lookup('secret', dl.nodeid))).toBe(ENOTDIR);
      expect(await fsErrno(pfs.mkdir(ctx(), rq(FuseOpcode.FUSE_MKDIR, dl.nodeid, { name: b('evil'), arg: { mode: 0o777, umask: 0 } })))).toBe(ENOTDIR);
      expect(await fsErrno(pfs.create(ctx(), rq(FuseOpcode.FUSE_CREATE, dl.nodeid, { name: b('evil'), arg: { flags: O_RDWR | O_CREAT, mode: 0o644, umask: 0, open_flags: 0 } })))).toBe(ENOTDIR);
      expect(await fsErrno(pfs.opendir(ctx(), rq(FuseOpcode.FUSE_OPENDIR, dl.nodeid, { arg: { flags: O_RDONLY | O_DIRECTORY, open_flags: 0 } })))).not.toBe(0);
      // Creating over a symlink does not write through it.
      const c = await fsErrno(pfs.create(ctx(), rq(FuseOpcode.FUSE_CREATE, FUSE_ROOT_ID, { name: b('abs-link'), arg: { flags: O_RDWR | O_CREAT | O_TRUNC, mode: 0o644, umask: 0, open_flags: 0 } })));
      expect(c).toBe(40);
      secretUntouched();
    });

    test("'..' chains and names with '/' stay inside", async () => {
      let node = FUSE_ROOT_ID;
      for (let i = 0; i < 5; i++) node = (await lookup('..', node)).nodeid;
      expect(node).toBe(FUSE_ROOT_ID);
      expect(await fsErrno(lookup('../secret'))).toBe(EINVAL);
      expect(await fsErrno(lookup('secret'))).toBe(ENOENT);
      expect(await fsErrno(pfs.unlink(ctx(), rq(FuseOpcode.FUSE_UNLINK, FUSE_ROOT_ID, { name: b('../secret') })))).toBe(EINVAL);
      expect(await fsErrno(pfs.rename(ctx(), rq(FuseOpcode.FUSE_RENAME, FUSE_ROOT_ID, { oldname: b('a.txt'), newname: b('../stolen'), arg: { newdir: FUSE_ROOT_ID } })))).toBe(EINVAL);
      expect(await fsErrno(pfs.rename(ctx(), rq(FuseOpcode.FUSE_RENAME, FUSE_ROOT_ID, { oldname: b('a.txt'), newname: b('..'), arg: { newdir: FUSE_ROOT_ID } })))).toBe(ENOENT);
      expect(await fsErrno(pfs.symlink(ctx(), rq(FuseOpcode.FUSE_SYMLINK, FUSE_ROOT_ID, { name: b('../evil'), linkname: b('x') })))).toBe(EINVAL);
      const root = await listAll(FUSE_ROOT_ID, true);
      expect(root.map((e) => e.name.toString())).not.toContain('secret');
      secretUntouched();
    });

    test('a rename racing lookups and creates: nothing lands outside', async () => {
      // The host swaps 'sub' between a real directory and a symlink to the outside while the guest
      // side looks it up and creates files in it.
      const real = path.join(dir, 'sub');
      const parked = path.join(dir, 'parked');
      const evil = path.join(dir, 'evil-link');
      fs.symlinkSync(outside, evil);
      let stop = false;
      const swapper = (async () => {
        let i = 0;
        while (!stop) {
          try {
            if (i++ % 2 === 0) {
              fs.renameSync(real, parked);
              fs.renameSync(evil, real);
            } else {
              fs.renameSync(real, evil);
              fs.renameSync(parked, real);
            }
          } catch {
            // a half-done swap: try the other way next
          }
          await new Promise((r) => setImmediate(r));
        }
      })();
      for (let i = 0; i < 200; i++) {
        const e = await lookup('sub').catch(() => undefined);
        if (!e) continue;
        await pfs
          .create(ctx(), rq(FuseOpcode.FUSE_CREATE, e.nodeid, { name: b(`c${i}`), arg: { flags: O_RDWR | O_CREAT, mode: 0o644, umask: 0, open_flags: 0 } }))
          .then((r) => pfs.release(ctx(), releaseReq(r.entry.nodeid, r.open.fh)))
          .catch(() => undefined);
        await pfs.lookup(ctx(), lookupReq('secret', e.nodeid)).then(
          () => {
            throw new Error('secret found through sub');
          },
          () => undefined,
        );
      }
      stop = true;
      await swapper;
      secretUntouched();
    });
  });
});
