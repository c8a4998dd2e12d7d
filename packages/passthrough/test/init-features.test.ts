// The INIT features that change what the passthrough does: a writeback cache, HANDLE_KILLPRIV_V2 (the
// daemon clears set-id bits), POSIX ACLs (default ACLs win over the umask) and announced submounts.
// Each is checked against the host: file modes, data and mounts as the host sees them.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  FATTR_KILL_SUIDGID,
  FATTR_SIZE,
  FUSE_ATTR_SUBMOUNT,
  FUSE_DIRECT_IO_ALLOW_MMAP,
  FUSE_DO_READDIRPLUS,
  FUSE_FLOCK_LOCKS,
  FUSE_HANDLE_KILLPRIV_V2,
  FUSE_POSIX_LOCKS,
  FUSE_READDIRPLUS_AUTO,
  FUSE_OPEN_KILL_SUIDGID,
  FUSE_POSIX_ACL,
  FUSE_ROOT_ID,
  FUSE_SECURITY_CTX,
  FUSE_SUBMOUNTS,
  FUSE_WRITEBACK_CACHE,
  FUSE_WRITE_KILL_SUIDGID,
  FuseOpcode,
  joinInitFlags,
  type FuseEntryOut,
  fuseAttrOf,
  type FuseEntryOutReply,
} from '@vfsd/core';
import { PassthroughFs, type PassthroughOptions } from '../src';
import { O_APPEND, O_CREAT, O_DIRECTORY, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY, S_IFDIR, S_IFREG } from '../src/sys/constants';
import { setxattr } from '../src/sys/libc';
import { ctx, initReq, lookupReq, releaseReq, rq, tempDir, promised, type PromisedPassthrough } from './helpers';

const EBADF = 9;
const O_NOATIME = 0o1000000;
const O_DIRECT = 0o40000;
const IS_ROOT = process.geteuid?.() === 0;
const ALL_BUT = (flag: bigint): bigint => ((1n << 64n) - 1n) & ~flag;

const b = (s: string): Buffer => Buffer.from(s);

describe.each([
  ['inline', 0],
  ['workers', 2],
])('INIT features (%s)', (_label, threadPoolSize) => {
  let dir: string;
  let pfs: PromisedPassthrough | undefined;

  async function start(options: Partial<PassthroughOptions>, kernelFlags?: bigint): Promise<bigint> {
    pfs = promised(new PassthroughFs({ sharedDir: dir, threadPoolSize, pool: { inlineBelow: 0 }, ...options }));
    const r = await pfs.init(ctx(), initReq(kernelFlags));
    return joinInitFlags({ flags: r.flags ?? 0, flags2: r.flags2 ?? 0 });
  }
  const fsys = (): PromisedPassthrough => pfs!;
  const lookup = (name: string, parent = FUSE_ROOT_ID): Promise<FuseEntryOut> => fsys().lookup(ctx(), lookupReq(name, parent));
  const open = async (nodeid: bigint, flags: number, openFlags = 0): Promise<bigint> =>
    (await fsys().open(ctx(), rq(FuseOpcode.FUSE_OPEN, nodeid, { arg: { flags, open_flags: openFlags } }))).fh;
  const write = (nodeid: bigint, fh: bigint, offset: bigint, data: Buffer, writeFlags = 0): Promise<number> =>
    fsys().write(ctx(), rq(FuseOpcode.FUSE_WRITE, nodeid, { arg: { fh, offset, size: data.length, write_flags: writeFlags, lock_owner: 0n, flags: 0 }, data }));
  const read = (nodeid: bigint, fh: bigint, offset: bigint, size: number): Promise<Uint8Array> =>
    fsys().read(ctx(), rq(FuseOpcode.FUSE_READ, nodeid, { arg: { fh, offset, size, read_flags: 0, lock_owner: 0n, flags: 0 } }));
  const create = (parent: bigint, name: string, mode: number, umask: number, flags = O_RDWR | O_CREAT, openFlags = 0) =>
    fsys().create(ctx(), rq(FuseOpcode.FUSE_CREATE, parent, { name: b(name), arg: { flags, mode, umask, open_flags: openFlags } }));
  const mkdir = (parent: bigint, name: string, mode: number, umask: number): Promise<FuseEntryOut> =>
    fsys().mkdir(ctx(), rq(FuseOpcode.FUSE_MKDIR, parent, { name: b(name), arg: { mode, umask } }));
  const hostMode = (name: string): number => fs.statSync(path.join(dir, name)).mode & 0o7777;

  beforeEach(() => {
    dir = tempDir();
    fs.writeFileSync(path.join(dir, 'a.txt'), 'hello');
  });

  afterEach(async () => {
    await pfs?.shutdown();
    pfs = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** A FUSE_SECURITY_CTX extension as fs/fuse sends it: fuse_secctx_header, then fuse_secctx, name, value, padded to 8. */
  const secctx = (name: string, value: string): Buffer => {
    const body = Buffer.concat([Buffer.alloc(8), Buffer.from(name + '\0'), Buffer.from(value)]);
    body.writeUInt32LE(Buffer.byteLength(value), 0);
    const rec = Buffer.alloc(8 + Math.ceil(body.length / 8) * 8);
    rec.writeUInt32LE(rec.length, 0);
    rec.writeUInt32LE(1, 4); // nr_secctx
    body.copy(rec, 8);
    return rec;
  };
  /** The host xattr `name` of `file` (lgetxattr, via python: Node has none). */
  const hostXattr = (file: string, name: string): string =>
    spawnSync('python3', ['-c', 'import os,sys; print(os.getxattr(sys.argv[1], sys.argv[2], follow_symlinks=False).decode())', file, name], { encoding: 'utf8' }).stdout.trim();

  (IS_ROOT ? test : test.skip)('--security-label: new files, directories, nodes and symlinks get the label the guest sends; other contexts are refused before anything is made', async () => {
    expect((await start({}, undefined)) & FUSE_SECURITY_CTX).toBe(0n);
    await pfs!.shutdown();
    expect((await start({ securityLabel: true })) & FUSE_SECURITY_CTX).toBe(FUSE_SECURITY_CTX);
    const label = 'system_u:object_r:vfsd_test_t:s0';
    const ext = secctx('security.selinux', label);
    await fsys().create(ctx(), rq(FuseOpcode.FUSE_CREATE, FUSE_ROOT_ID, { name: b('f'), arg: { flags: O_RDWR | O_CREAT, mode: 0o644, umask: 0, open_flags: 0 }, ext }));
    await fsys().mkdir(ctx(), rq(FuseOpcode.FUSE_MKDIR, FUSE_ROOT_ID, { name: b('d'), arg: { mode: 0o755, umask: 0 }, ext }));
    await fsys().symlink(ctx(), rq(FuseOpcode.FUSE_SYMLINK, FUSE_ROOT_ID, { name: b('l'), linkname: b('f'), ext }));
    await fsys().mknod(ctx(), rq(FuseOpcode.FUSE_MKNOD, FUSE_ROOT_ID, { name: b('p'), arg: { mode: 0o010644, rdev: 0, umask: 0 }, ext }));
    for (const name of ['f', 'd', 'l', 'p']) expect([name, hostXattr(path.join(dir, name), 'security.selinux')]).toEqual([name, label]);
    // security.capability would give the new host file capabilities: refused, and nothing is made.
    await expect(fsys().create(ctx(), rq(FuseOpcode.FUSE_CREATE, FUSE_ROOT_ID, { name: b('cap'), arg: { flags: O_RDWR | O_CREAT, mode: 0o755, umask: 0, open_flags: 0 }, ext: secctx('security.capability', 'x') }))).rejects.toMatchObject({ errno: 95 });
    expect(fs.existsSync(path.join(dir, 'cap'))).toBe(false);
    // No context (the guest has no LSM): a plain create.
    await fsys().mkdir(ctx(), rq(FuseOpcode.FUSE_MKDIR, FUSE_ROOT_ID, { name: b('plain'), arg: { mode: 0o755, umask: 0 }, ext: Buffer.from([8, 0, 0, 0, 0, 0, 0, 0]) }));
    expect(hostXattr(path.join(dir, 'plain'), 'security.selinux')).toBe('');
  });

  test('locks and READDIRPLUS are offered unless turned off (-o no_posix_lock, no_flock, --no-readdirplus)', async () => {
    const on = await start({ cache: 'auto' });
    expect(on & (FUSE_POSIX_LOCKS | FUSE_FLOCK_LOCKS | FUSE_DO_READDIRPLUS)).toBe(FUSE_POSIX_LOCKS | FUSE_FLOCK_LOCKS | FUSE_DO_READDIRPLUS);
    await pfs!.shutdown();
    const off = await start({ cache: 'auto', posixLocks: false, flockLocks: false, readdirplus: false });
    expect(off & (FUSE_POSIX_LOCKS | FUSE_FLOCK_LOCKS | FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO)).toBe(0n);
    expect(off & FUSE_DIRECT_IO_ALLOW_MMAP).toBe(0n);
    await pfs!.shutdown();
    expect((await start({ cache: 'never', allowMmap: true })) & FUSE_DIRECT_IO_ALLOW_MMAP).toBe(FUSE_DIRECT_IO_ALLOW_MMAP);
  });

  test('O_NOATIME and O_DIRECT are dropped from OPEN unless allowed (--preserve-noatime, --allow-direct-io)', async () => {
    const flagsOf = async (options: Partial<PassthroughOptions>): Promise<number> => {
      await start(options);
      const a = await lookup('a.txt');
      await open(a.nodeid, O_RDONLY | O_NOATIME | O_DIRECT);
      // The host open's flags, as /proc shows them (the inode's O_PATH fd left aside).
      const file = path.join(dir, 'a.txt');
      const O_PATH = 0o10000000;
      let flags = -1;
      for (const fd of fs.readdirSync('/proc/self/fd')) {
        let link = '';
        try {
          link = fs.readlinkSync(`/proc/self/fd/${fd}`);
        } catch {
          continue;
        }
        if (link !== fs.realpathSync(file)) continue;
        const f = parseInt(/^flags:\s+([0-7]+)/m.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1], 8);
        if ((f & O_PATH) === 0) flags = f;
      }
      await pfs!.shutdown();
      expect(flags).toBeGreaterThanOrEqual(0);
      return flags & (O_NOATIME | O_DIRECT);
    };
    expect(await flagsOf({})).toBe(0);
    expect(await flagsOf({ preserveNoatime: true })).toBe(O_NOATIME);
  });

  describe('writeback cache', () => {
    test('offered only when asked; then write-only opens can read and O_APPEND is the guest\'s', async () => {
      expect((await start({})) & FUSE_WRITEBACK_CACHE).toBe(0n);
      await pfs!.shutdown();
      expect((await start({ writeback: true })) & FUSE_WRITEBACK_CACHE).toBe(FUSE_WRITEBACK_CACHE);
      const a = await lookup('a.txt');
      // The guest fills a partial page by reading through a write-only open.
      const fh = await open(a.nodeid, O_WRONLY | O_APPEND);
      expect(Buffer.from(await read(a.nodeid, fh, 0n, 5)).toString()).toBe('hello');
      // It writes at the offsets it chose (the end it knows, or not): the host must not append.
      expect(await write(a.nodeid, fh, 0n, b('J'))).toBe(1);
      expect(fs.readFileSync(path.join(dir, 'a.txt'), 'utf8')).toBe('Jello');
      await fsys().release(ctx(), releaseReq(a.nodeid, fh));
      const made = await create(FUSE_ROOT_ID, 'w.txt', S_IFREG | 0o644, 0, O_WRONLY | O_CREAT);
      expect((await read(made.entry.nodeid, made.open.fh, 0n, 1)).length).toBe(0);
      await fsys().release(ctx(), releaseReq(made.entry.nodeid, made.open.fh));
    });

    test('a kernel that does not ask gets the plain open flags', async () => {
      expect((await start({ writeback: true }, ALL_BUT(FUSE_WRITEBACK_CACHE))) & FUSE_WRITEBACK_CACHE).toBe(0n);
      const a = await lookup('a.txt');
      const fh = await open(a.nodeid, O_WRONLY | O_APPEND);
      await expect(read(a.nodeid, fh, 0n, 5)).rejects.toMatchObject({ errno: EBADF });
      await write(a.nodeid, fh, 0n, b('!'));
      expect(fs.readFileSync(path.join(dir, 'a.txt'), 'utf8')).toBe('hello!');
      await fsys().release(ctx(), releaseReq(a.nodeid, fh));
    });

    test('never offered on a read-only share', async () => {
      expect((await start({ writeback: true, readonly: true })) & FUSE_WRITEBACK_CACHE).toBe(0n);
    });
  });

  describe('HANDLE_KILLPRIV_V2', () => {
    beforeEach(() => {
      for (const [n, m] of [['suid', 0o4755], ['sgid', 0o2755], ['sgid-nox', 0o2745], ['plain', 0o755]] as const) {
        fs.writeFileSync(path.join(dir, n), 'data');
        fs.chmodSync(path.join(dir, n), m);
      }
    });

    test('write, truncate and O_TRUNC opens clear set-id bits when the guest asks (as the kernel would)', async () => {
      expect((await start({})) & FUSE_HANDLE_KILLPRIV_V2).toBe(FUSE_HANDLE_KILLPRIV_V2);
      const suid = await lookup('suid');
      const fh = await open(suid.nodeid, O_RDWR);
      // Without the flag (a caller with CAP_FSETID) the bits stay.
      await write(suid.nodeid, fh, 0n, b('x'));
      expect(hostMode('suid')).toBe(0o4755);
      await write(suid.nodeid, fh, 0n, b('y'), FUSE_WRITE_KILL_SUIDGID);
      expect(hostMode('suid')).toBe(0o755);
      await fsys().release(ctx(), releaseReq(suid.nodeid, fh));
      // S_ISGID goes only with group execute (without it, it marks mandatory locking).
      for (const [name, after] of [['sgid', 0o755], ['sgid-nox', 0o2745], ['plain', 0o755]] as const) {
        const e = await lookup(name);
        const h = await open(e.nodeid, O_WRONLY);
        await write(e.nodeid, h, 0n, b('z'), FUSE_WRITE_KILL_SUIDGID);
        expect(hostMode(name)).toBe(after);
        await fsys().release(ctx(), releaseReq(e.nodeid, h));
      }
      // Truncate by SETATTR.
      fs.chmodSync(path.join(dir, 'suid'), 0o4755);
      const st = await fsys().setattr(
        ctx(),
        rq(FuseOpcode.FUSE_SETATTR, suid.nodeid, { arg: { valid: FATTR_SIZE | FATTR_KILL_SUIDGID, fh: 0n, size: 1n, lock_owner: 0n, atime: 0n, mtime: 0n, ctime: 0n, atimensec: 0, mtimensec: 0, ctimensec: 0, mode: 0, uid: 0, gid: 0 } }),
      );
      expect(st.attr.mode & 0o7777).toBe(0o755);
      expect(hostMode('suid')).toBe(0o755);
      expect(fs.statSync(path.join(dir, 'suid')).size).toBe(1);
      // An O_TRUNC open, and a CREATE that truncates an existing file.
      fs.chmodSync(path.join(dir, 'suid'), 0o4755);
      const t = await open(suid.nodeid, O_WRONLY | O_TRUNC, FUSE_OPEN_KILL_SUIDGID);
      expect(hostMode('suid')).toBe(0o755);
      await fsys().release(ctx(), releaseReq(suid.nodeid, t));
      fs.chmodSync(path.join(dir, 'suid'), 0o4755);
      const c = await create(FUSE_ROOT_ID, 'suid', S_IFREG | 0o644, 0, O_WRONLY | O_CREAT | O_TRUNC, FUSE_OPEN_KILL_SUIDGID);
      expect(hostMode('suid')).toBe(0o755);
      await fsys().release(ctx(), releaseReq(c.entry.nodeid, c.open.fh));
      // A file the same CREATE makes keeps the set-id bits it was asked for (nothing was truncated).
      const n = await create(FUSE_ROOT_ID, 'new-suid', S_IFREG | 0o4755, 0, O_WRONLY | O_CREAT | O_TRUNC, FUSE_OPEN_KILL_SUIDGID);
      expect(hostMode('new-suid')).toBe(0o4755);
      await fsys().release(ctx(), releaseReq(n.entry.nodeid, n.open.fh));
    });

    test('not offered when turned off: the flags change nothing', async () => {
      expect((await start({ killprivV2: false })) & FUSE_HANDLE_KILLPRIV_V2).toBe(0n);
      const suid = await lookup('suid');
      const fh = await open(suid.nodeid, O_RDWR);
      await write(suid.nodeid, fh, 0n, b('y'), FUSE_WRITE_KILL_SUIDGID);
      expect(hostMode('suid')).toBe(0o4755);
      await fsys().release(ctx(), releaseReq(suid.nodeid, fh));
    });
  });

  describe('POSIX ACLs', () => {
    // system.posix_acl_default: version 2, then (tag u16, perm u16, id u32) entries: user::rwx,
    // group::r-x, other::--- (as `setfacl -d -m u::rwx,g::rx,o::-`).
    const ACL = Buffer.from('0200000001000700ffffffff04000500ffffffff20000000ffffffff', 'hex');

    const setDefaultAcl = (d: string): boolean => setxattr(d, b('system.posix_acl_default'), ACL, 0) === 0;

    test('needs xattr', () => {
      expect(() => new PassthroughFs({ sharedDir: dir, posixAcl: true })).toThrow(/xattr/);
    });

    test("a directory's default ACL wins over the umask; elsewhere the umask applies", async () => {
      fs.mkdirSync(path.join(dir, 'acl'));
      fs.mkdirSync(path.join(dir, 'plain'));
      expect(setDefaultAcl(path.join(dir, 'acl'))).toBe(true);
      expect((await start({ xattr: true, posixAcl: true })) & FUSE_POSIX_ACL).toBe(FUSE_POSIX_ACL);
      const acl = await lookup('acl');
      const plain = await lookup('plain');
      const f1 = await create(acl.nodeid, 'f', S_IFREG | 0o666, 0o077);
      const f2 = await create(plain.nodeid, 'f', S_IFREG | 0o666, 0o077);
      // The host's own rule: the requested mode masked by the default ACL (rw-r-----), no umask.
      expect(hostMode('acl/f')).toBe(0o640);
      expect(hostMode('plain/f')).toBe(0o600);
      expect(f1.entry.attr.mode).toBe(S_IFREG | 0o640);
      const d1 = await mkdir(acl.nodeid, 'd', S_IFDIR | 0o777, 0o077);
      await mkdir(plain.nodeid, 'd', S_IFDIR | 0o777, 0o077);
      expect(hostMode('acl/d')).toBe(0o750);
      expect(hostMode('plain/d')).toBe(0o700);
      expect(d1.attr.mode & 0o777).toBe(0o750);
      // The new directory inherits the default ACL, as on the host.
      const got = await fsys().getxattr(ctx(), rq(FuseOpcode.FUSE_GETXATTR, d1.nodeid, { name: b('system.posix_acl_default'), arg: { size: 4096, padding: 0 } }));
      expect(Buffer.from(got).equals(ACL)).toBe(true);
      for (const f of [f1, f2]) await fsys().release(ctx(), releaseReq(f.entry.nodeid, f.open.fh));
    });

    test('without POSIX ACLs negotiated the umask always applies', async () => {
      fs.mkdirSync(path.join(dir, 'acl'));
      expect(setDefaultAcl(path.join(dir, 'acl'))).toBe(true);
      expect((await start({ xattr: true, posixAcl: true }, ALL_BUT(FUSE_POSIX_ACL))) & FUSE_POSIX_ACL).toBe(0n);
      const acl = await lookup('acl');
      const f = await create(acl.nodeid, 'f', S_IFREG | 0o666, 0o077);
      expect(hostMode('acl/f')).toBe(0o600);
      await fsys().release(ctx(), releaseReq(f.entry.nodeid, f.open.fh));
    });
  });

  // Mounting needs root (CI runs as root); elsewhere these tests say so and check nothing.
  (IS_ROOT ? describe : describe.skip)('announced submounts', () => {
    const mounted: string[] = [];
    const mount = (...args: string[]): void => {
      const r = spawnSync('mount', args, { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`mount ${args.join(' ')}: ${r.stderr}`);
      mounted.unshift(args[args.length - 1]);
    };
    afterEach(() => {
      for (const m of mounted.splice(0)) spawnSync('umount', ['-l', m]);
    });

    beforeEach(() => {
      for (const d of ['tmp', 'bind', 'plain', 'src']) fs.mkdirSync(path.join(dir, d));
      mount('-t', 'tmpfs', 'vfsd-test', path.join(dir, 'tmp'));
      mount('--bind', path.join(dir, 'src'), path.join(dir, 'bind'));
    });

    const isSubmount = (e: FuseEntryOutReply): boolean => (fuseAttrOf(e.attr).flags & FUSE_ATTR_SUBMOUNT) !== 0;

    test('directories on another mount (another filesystem, or a bind mount) are flagged', async () => {
      expect((await start({ announceSubmounts: true })) & FUSE_SUBMOUNTS).toBe(FUSE_SUBMOUNTS);
      expect(isSubmount(await lookup('tmp'))).toBe(true);
      expect(isSubmount(await lookup('bind'))).toBe(true);
      expect(isSubmount(await lookup('plain'))).toBe(false);
      expect(isSubmount(await lookup('src'))).toBe(false);
      expect(isSubmount(await lookup('a.txt'))).toBe(false);
      // Inside the submount, its own directories are not submounts again.
      fs.mkdirSync(path.join(dir, 'tmp', 'inner'));
      expect(isSubmount(await lookup('inner', (await lookup('tmp')).nodeid))).toBe(false);
      // READDIRPLUS entries carry the flag too.
      const fh = (await fsys().opendir(ctx(), rq(FuseOpcode.FUSE_OPENDIR, FUSE_ROOT_ID, { arg: { flags: O_RDONLY | O_DIRECTORY, open_flags: 0 } }))).fh;
      const list = await fsys().readdir(ctx(), rq(FuseOpcode.FUSE_READDIRPLUS, FUSE_ROOT_ID, { arg: { fh, offset: 0n, size: 65536, read_flags: 0, lock_owner: 0n, flags: 0 } }), true);
      const flagged = list.filter((e) => e.entry && isSubmount(e.entry)).map((e) => e.name.toString()).sort();
      expect(flagged).toEqual(['bind', 'tmp']);
      await fsys().releasedir(ctx(), rq(FuseOpcode.FUSE_RELEASEDIR, FUSE_ROOT_ID, { arg: { fh, flags: 0, release_flags: 0, lock_owner: 0n } }));
    });

    test('not announced unless asked, or when the kernel does not know submounts', async () => {
      await start({});
      expect(isSubmount(await lookup('tmp'))).toBe(false);
      await pfs!.shutdown();
      expect((await start({ announceSubmounts: true }, ALL_BUT(FUSE_SUBMOUNTS))) & FUSE_SUBMOUNTS).toBe(0n);
      expect(isSubmount(await lookup('tmp'))).toBe(false);
    });
  });
});
