// Per-request credentials: running as root, each request runs with the caller's fsuid/fsgid, so the
// host checks permissions and new inodes belong to the caller (as virtiofsd). Inline (pool size 0) and
// through the workers (inlineBelow 0: every call goes through a ring or its message port).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EACCES, ENOENT, FUSE_ROOT_ID, FuseOpcode, FsError, type RequestContext } from '@vfsd/core';
import { PassthroughFs, type PassthroughOptions } from '../src';
import { credState, kernelFsIds } from '../src/sys/creds';
import { header, lookupReq, openReq, releaseReq, tempDir, promised, type PromisedPassthrough } from './helpers';

const O_RDONLY = 0;
const O_RDWR = 2;
const O_CREAT = 0o100;
const O_DIRECTORY = 0o200000;
const S_IFIFO = 0o010000;
const asRoot = process.geteuid?.() === 0;

let nextUnique = 1_000_000n;
function as(uid: number, gid = uid): RequestContext {
  return { unique: nextUnique++, uid, gid, pid: 1, signal: new AbortController().signal };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function rq(opcode: FuseOpcode, nodeid: bigint, fields: Record<string, unknown> = {}): any {
  return { opcode, noReply: false, header: header(opcode, nodeid), ext: undefined, ...fields };
}
const b = (s: string) => Buffer.from(s);

async function errnoOf(p: Promise<unknown>): Promise<number> {
  try {
    await p;
  } catch (err) {
    if (err instanceof FsError) return err.errno;
    throw err;
  }
  return 0;
}

const modes: Array<[string, PassthroughOptions['threadPoolSize'], PassthroughOptions['pool']]> = [
  ['inline', 0, undefined],
  ['pool', 2, { inlineBelow: 0 }],
];

(asRoot ? describe.each(modes) : describe.skip.each(modes))('credentials (%s)', (_mode, threadPoolSize, pool) => {
  let dir: string;
  let pfs: PromisedPassthrough;

  beforeEach(() => {
    dir = tempDir();
    fs.chmodSync(dir, 0o777);
    fs.writeFileSync(path.join(dir, 'secret'), 'root only', { mode: 0o600 });
    fs.chmodSync(path.join(dir, 'secret'), 0o600);
    fs.writeFileSync(path.join(dir, 'group'), 'root group', { mode: 0o640 });
    fs.chmodSync(path.join(dir, 'group'), 0o640);
    fs.mkdirSync(path.join(dir, 'rootdir'), { mode: 0o755 });
    fs.chmodSync(path.join(dir, 'rootdir'), 0o755);
    pfs = promised(new PassthroughFs({ sharedDir: dir, threadPoolSize, pool }));
  });

  afterEach(async () => {
    await pfs.shutdown();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const create = (c: RequestContext, name: string, parent = FUSE_ROOT_ID) =>
    pfs.create(c, rq(FuseOpcode.FUSE_CREATE, parent, { name: b(name), arg: { flags: O_RDWR | O_CREAT, mode: 0o666, umask: 0o022, open_flags: 0 } }));

  test('a file, directory, node and symlink made by uid 1000 belong to 1000:1000', async () => {
    const c = await create(as(1000), 'f');
    expect([c.entry.attr.uid, c.entry.attr.gid]).toEqual([1000, 1000]);
    const st = fs.statSync(path.join(dir, 'f'));
    expect([st.uid, st.gid, st.mode & 0o7777]).toEqual([1000, 1000, 0o644]);
    await pfs.release(as(1000), releaseReq(c.entry.nodeid, c.open.fh));

    const d = await pfs.mkdir(as(1000), rq(FuseOpcode.FUSE_MKDIR, FUSE_ROOT_ID, { name: b('d'), arg: { mode: 0o777, umask: 0o022 } }));
    expect([d.attr.uid, d.attr.gid]).toEqual([1000, 1000]);
    const n = await pfs.mknod(as(1000, 1001), rq(FuseOpcode.FUSE_MKNOD, FUSE_ROOT_ID, { name: b('p'), arg: { mode: S_IFIFO | 0o666, rdev: 0, umask: 0o022 } }));
    expect([n.attr.uid, n.attr.gid]).toEqual([1000, 1001]);
    const l = await pfs.symlink(as(1000), rq(FuseOpcode.FUSE_SYMLINK, FUSE_ROOT_ID, { name: b('s'), linkname: b('f') }));
    expect([l.attr.uid, l.attr.gid]).toEqual([1000, 1000]);
    expect(fs.lstatSync(path.join(dir, 's')).uid).toBe(1000);
    // Made by root: root's.
    const r = await create(as(0), 'r');
    expect([r.entry.attr.uid, r.entry.attr.gid]).toEqual([0, 0]);
    await pfs.release(as(0), releaseReq(r.entry.nodeid, r.open.fh));
  });

  test('a setgid directory still gives its group (the kernel decides, not a chown after the fact)', async () => {
    fs.chownSync(path.join(dir, 'rootdir'), 0, 4242);
    fs.chmodSync(path.join(dir, 'rootdir'), 0o2777);
    const sub = await pfs.lookup(as(1000), lookupReq('rootdir'));
    const c = await create(as(1000), 'x', sub.nodeid);
    expect([c.entry.attr.uid, c.entry.attr.gid]).toEqual([1000, 4242]);
    await pfs.release(as(1000), releaseReq(c.entry.nodeid, c.open.fh));
  });

  test('uid 1000 cannot read a 0600 root file (EACCES); root can', async () => {
    const e = await pfs.lookup(as(1000), lookupReq('secret'));
    expect(await errnoOf(pfs.open(as(1000), openReq(e.nodeid, O_RDONLY)))).toBe(EACCES);
    expect(await errnoOf(pfs.access(as(1000), rq(FuseOpcode.FUSE_ACCESS, e.nodeid, { arg: { mask: 4 } })))).toBe(EACCES);
    const o = await pfs.open(as(0), openReq(e.nodeid, O_RDONLY));
    const data = await pfs.read(as(0), rq(FuseOpcode.FUSE_READ, e.nodeid, { arg: { fh: o.fh, offset: 0n, size: 100, read_flags: 0, lock_owner: 0n, flags: 0 } }));
    expect(Buffer.from(data).toString()).toBe('root only');
    await pfs.release(as(0), releaseReq(e.nodeid, o.fh));
    await pfs.access(as(0), rq(FuseOpcode.FUSE_ACCESS, e.nodeid, { arg: { mask: 4 } }));
    // Alternating callers: each gets its own answer.
    const results = await Promise.all([1000, 0, 1000, 0].map((uid) => errnoOf(pfs.open(as(uid), openReq(e.nodeid, O_RDONLY)).then((x) => pfs.release(as(uid), releaseReq(e.nodeid, x.fh))))));
    expect(results).toEqual([EACCES, 0, EACCES, 0]);
  });

  test('no supplementary groups: root group bits do not apply to uid 1000 (0640 root:root)', async () => {
    const e = await pfs.lookup(as(1000), lookupReq('group'));
    expect(await errnoOf(pfs.open(as(1000), openReq(e.nodeid, O_RDONLY)))).toBe(EACCES);
    // gid 0 as the caller's own group does get the group bits.
    const o = await pfs.open(as(1000, 0), openReq(e.nodeid, O_RDONLY));
    await pfs.release(as(1000, 0), releaseReq(e.nodeid, o.fh));
    // (process.getgroups() always adds the egid: read the kernel's list.)
    expect(/^Groups:\s*$/m.test(fs.readFileSync('/proc/self/status', 'utf8'))).toBe(true);
  });

  test('uid 1000 cannot create in a 0755 root directory (EACCES); root can', async () => {
    const sub = await pfs.lookup(as(1000), lookupReq('rootdir'));
    expect(await errnoOf(create(as(1000), 'nope', sub.nodeid))).toBe(EACCES);
    expect(await errnoOf(pfs.mkdir(as(1000), rq(FuseOpcode.FUSE_MKDIR, sub.nodeid, { name: b('nope'), arg: { mode: 0o777, umask: 0 } })))).toBe(EACCES);
    expect(await errnoOf(pfs.unlink(as(1000), rq(FuseOpcode.FUSE_UNLINK, FUSE_ROOT_ID, { name: b('secret') })))).toBe(0); // 0777 parent, no sticky bit
    expect(fs.existsSync(path.join(dir, 'rootdir', 'nope'))).toBe(false);
    const c = await create(as(0), 'yes', sub.nodeid);
    await pfs.release(as(0), releaseReq(c.entry.nodeid, c.open.fh));
    expect(fs.statSync(path.join(dir, 'rootdir', 'yes')).uid).toBe(0);
  });

  test('uid 1000 cannot list a 0700 root directory; the main thread is root again afterwards', async () => {
    fs.chmodSync(path.join(dir, 'rootdir'), 0o700);
    const sub = await pfs.lookup(as(0), lookupReq('rootdir'));
    expect(await errnoOf(pfs.opendir(as(1000), rq(FuseOpcode.FUSE_OPENDIR, sub.nodeid, { arg: { flags: O_RDONLY | O_DIRECTORY, open_flags: 0 } })))).toBe(EACCES);
    // LOOKUP runs as the daemon, as virtiofsd's (the guest, mounted with default_permissions, checks
    // search permission itself before it sends one).
    expect(await errnoOf(pfs.lookup(as(1000), lookupReq('x', sub.nodeid)))).toBe(ENOENT);
    // Inline calls switch the main thread; it is back to the daemon's ids once the synchronous run ends.
    await new Promise((r) => setImmediate(r));
    expect(kernelFsIds()).toEqual({ uid: 0, gid: 0 });
    expect(credState()).toMatchObject({ uid: 0, gid: 0 });
    // The daemon's own calls (close, lock descriptions) still work as root.
    const e = await pfs.lookup(as(0), lookupReq('secret'));
    const o = await pfs.open(as(0), openReq(e.nodeid, O_RDWR));
    await pfs.release(as(0), releaseReq(e.nodeid, o.fh));
  });
});
