import * as fs from 'node:fs';
import * as path from 'node:path';
import { EBADF, EINVAL, ENOENT, FUSE_FLOCK_LOCKS, FUSE_POSIX_LOCKS, FUSE_ROOT_ID, FsError, FuseOpcode, joinInitFlags } from '@vfsd/core';
import { PassthroughFs } from '../src';
import { ctx, flushReq, initReq, forgetReq, rq, getattrReq, lookupReq, openReq, releaseReq, sleep, tempDir, promised, type PromisedPassthrough } from './helpers';

const S_IFMT = 0o170000;

/** What an fd of this process points to now, undefined if closed (the number may have been reused). */
function fdTarget(fd: number): string | undefined {
  try {
    return fs.readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return undefined;
  }
}
const S_IFLNK = 0o120000;

describe.each([0, 1])('PassthroughFs basics (threadPoolSize %i)', (threadPoolSize) => {
  let dir: string;
  let pfs: PromisedPassthrough;

  beforeEach(() => {
    dir = tempDir();
    fs.writeFileSync(path.join(dir, 'a.txt'), 'hello');
    fs.mkdirSync(path.join(dir, 'sub'));
    fs.writeFileSync(path.join(dir, 'sub', 'b.txt'), 'bb');
    fs.symlinkSync('/etc/passwd', path.join(dir, 'link'));
    pfs = promised(new PassthroughFs({ sharedDir: dir, threadPoolSize }));
  });

  afterEach(async () => {
    await pfs.shutdown();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('init offers POSIX and flock locks', async () => {
    const reply = await pfs.init(ctx(), initReq());
    const flags = joinInitFlags({ flags: reply.flags ?? 0, flags2: reply.flags2 ?? 0 });
    expect(flags & FUSE_POSIX_LOCKS).toBe(FUSE_POSIX_LOCKS);
    expect(flags & FUSE_FLOCK_LOCKS).toBe(FUSE_FLOCK_LOCKS);
  });

  test('lookup and getattr agree with stat on the host', async () => {
    const st = fs.statSync(path.join(dir, 'a.txt'), { bigint: true });
    const entry = await pfs.lookup(ctx(), lookupReq('a.txt'));
    expect(entry.nodeid).toBeGreaterThan(1n);
    expect(entry.attr.ino).toBe(st.ino);
    expect(entry.attr.size).toBe(5n);
    expect(entry.attr.mode).toBe(Number(st.mode));
    expect(entry.attr.nlink).toBe(1);
    expect(entry.attr.mtime).toBe(st.mtimeNs / 1_000_000_000n);
    expect(entry.attr.mtimensec).toBe(Number(st.mtimeNs % 1_000_000_000n));
    expect(entry.entry_valid).toBe(1n);

    const attr = await pfs.getattr(ctx(), getattrReq(entry.nodeid));
    expect(attr.attr).toEqual(entry.attr);
    const root = await pfs.getattr(ctx(), getattrReq(1n));
    expect(root.attr.ino).toBe(fs.statSync(dir, { bigint: true }).ino);
  });

  test('a second lookup of the same inode shares the nodeid; forget closes its fd at zero', async () => {
    const e1 = await pfs.lookup(ctx(), lookupReq('a.txt'));
    const e2 = await pfs.lookup(ctx(), lookupReq('a.txt'));
    expect(e2.nodeid).toBe(e1.nodeid);
    const fd = pfs.inodes.get(e1.nodeid)!.handle.fd;
    pfs.forget(forgetReq(e1.nodeid, 1n));
    expect(pfs.inodes.get(e1.nodeid)).toBeDefined();
    pfs.forget(forgetReq(e1.nodeid, 1n));
    expect(pfs.inodes.get(e1.nodeid)).toBeUndefined();
    await expect(pfs.getattr(ctx(), getattrReq(e1.nodeid))).rejects.toMatchObject({ errno: EBADF });
    expect(fdTarget(fd)).not.toBe(fs.realpathSync(path.join(dir, 'a.txt')));
  });

  test('READDIRPLUS gives a known inode its nodeid (one more lookup, no new fd) and a new one its own', async () => {
    const a = await pfs.lookup(ctx(), lookupReq('a.txt'));
    const fd = pfs.inodes.get(a.nodeid)!.handle.fd;
    const fh = (await pfs.opendir(ctx(), rq(FuseOpcode.FUSE_OPENDIR, FUSE_ROOT_ID, { arg: { flags: fs.constants.O_RDONLY | fs.constants.O_DIRECTORY, open_flags: 0 } }))).fh;
    const list = await pfs.readdir(ctx(), rq(FuseOpcode.FUSE_READDIRPLUS, FUSE_ROOT_ID, { arg: { fh, offset: 0n, size: 65536, read_flags: 0, lock_owner: 0n, flags: 0 } }), true);
    await pfs.releasedir(ctx(), rq(FuseOpcode.FUSE_RELEASEDIR, FUSE_ROOT_ID, { arg: { fh, flags: 0, release_flags: 0, lock_owner: 0n } }));
    const byName = new Map(list.map((e) => [e.name.toString(), e.entry!]));
    expect(byName.get('a.txt')!.nodeid).toBe(a.nodeid);
    expect(byName.get('a.txt')!.attr).toEqual(a.attr);
    expect(pfs.inodes.get(a.nodeid)!.handle.fd).toBe(fd);
    const sub = byName.get('sub')!;
    expect(sub.nodeid).not.toBe(a.nodeid);
    expect(sub.attr.ino).toBe(fs.statSync(path.join(dir, 'sub'), { bigint: true }).ino);
    // The LOOKUP and the READDIRPLUS entry each count: two FORGETs drop it, one FORGET the new one.
    pfs.forget(forgetReq(a.nodeid, 1n));
    expect(pfs.inodes.get(a.nodeid)).toBeDefined();
    pfs.forget(forgetReq(a.nodeid, 1n));
    expect(pfs.inodes.get(a.nodeid)).toBeUndefined();
    pfs.forget(forgetReq(sub.nodeid, 1n));
    expect(pfs.inodes.get(sub.nodeid)).toBeUndefined();
  });

  test('lookup below a subdirectory', async () => {
    const sub = await pfs.lookup(ctx(), lookupReq('sub'));
    const b = await pfs.lookup(ctx(), lookupReq('b.txt', sub.nodeid));
    expect(b.attr.size).toBe(2n);
    expect(b.attr.ino).toBe(fs.statSync(path.join(dir, 'sub', 'b.txt'), { bigint: true }).ino);
  });

  test('names that are not one component are refused; missing names are ENOENT', async () => {
    await expect(pfs.lookup(ctx(), lookupReq('sub/b.txt'))).rejects.toMatchObject({ errno: EINVAL });
    await expect(pfs.lookup(ctx(), lookupReq(''))).rejects.toMatchObject({ errno: EINVAL });
    // EXPORT_SUPPORT: '.' and '..' are looked up; '..' of the root is the root (never the host's parent).
    expect((await pfs.lookup(ctx(), lookupReq('..'))).nodeid).toBe(1n);
    expect((await pfs.lookup(ctx(), lookupReq('.'))).nodeid).toBe(1n);
    await expect(pfs.lookup(ctx(), lookupReq('nope'))).rejects.toBeInstanceOf(FsError);
    await expect(pfs.lookup(ctx(), lookupReq('nope'))).rejects.toMatchObject({ errno: ENOENT });
    await expect(pfs.lookup(ctx(), lookupReq('x', 999n))).rejects.toMatchObject({ errno: EBADF });
  });

  test('a host symlink is the link itself, never its target', async () => {
    const link = await pfs.lookup(ctx(), lookupReq('link'));
    expect(link.attr.mode & S_IFMT).toBe(S_IFLNK);
    expect(link.attr.size).toBe(BigInt('/etc/passwd'.length));
    // And a lookup through it fails: it is not a directory we can walk into.
    await expect(pfs.lookup(ctx(), lookupReq('passwd', link.nodeid))).rejects.toBeInstanceOf(FsError);
  });

  test('open, flush, release', async () => {
    const e = await pfs.lookup(ctx(), lookupReq('a.txt'));
    const open = await pfs.open(ctx(), openReq(e.nodeid, fs.constants.O_RDONLY));
    expect(open.fh).toBeGreaterThan(0n);
    const fd = (pfs.handles as unknown as { byFh: Map<bigint, { file: { fd: number } }> }).byFh.get(open.fh)!.file.fd;
    const buf = Buffer.alloc(16);
    expect(buf.toString('utf8', 0, fs.readSync(fd, buf, 0, 16, 0))).toBe('hello');
    await pfs.flush(ctx(), flushReq(e.nodeid, open.fh, 42n));
    await pfs.release(ctx(), releaseReq(e.nodeid, open.fh));
    expect(pfs.handles.size).toBe(0);
    await sleep(20); // the close runs in the pool
    expect(fdTarget(fd)).not.toBe(fs.realpathSync(path.join(dir, 'a.txt')));
    await expect(pfs.release(ctx(), releaseReq(e.nodeid, open.fh))).rejects.toMatchObject({ errno: EBADF });
  });
});
