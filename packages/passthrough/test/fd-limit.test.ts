// At the open-file limit: each known inode holds an O_PATH fd, so with RLIMIT_NOFILE low a LOOKUP of a
// new inode fails with EMFILE (as virtiofsd's), nothing leaks, the daemon keeps serving, FORGET frees
// fds, and an inode already in the table is still found (by its stat, with no new fd).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EMFILE, ENFILE, FUSE_ROOT_ID, FuseOpcode, FsError, type FuseEntryOut } from '@vfsd/core';
import { PassthroughFs, type PassthroughOptions } from '../src';
import { prlimitNofile } from '../src/sys/libc';
import { ctx, forgetReq, getattrReq, header, lookupReq, tempDir, promised, type PromisedPassthrough } from './helpers';

const FILES = 300;
const HEADROOM = 100;

function openFds(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

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

describe.each(modes)('open-file limit (%s)', (_mode, threadPoolSize, pool) => {
  let dir: string;
  let pfs: PromisedPassthrough;
  let saved: { soft: bigint; hard: bigint };

  beforeEach(async () => {
    dir = tempDir();
    for (let i = 0; i < FILES; i++) fs.writeFileSync(path.join(dir, `f${i}`), '');
    pfs = promised(new PassthroughFs({ sharedDir: dir, threadPoolSize, pool }));
    await pfs.pool.ready();
    const r = prlimitNofile(0);
    if (typeof r === 'number') throw new Error(`prlimit: ${r}`);
    saved = r;
  });

  afterEach(async () => {
    prlimitNofile(0, saved);
    await pfs.shutdown();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('lookups fail with EMFILE at the limit, FORGET frees fds, later lookups succeed', async () => {
    const dirFh = (await pfs.opendir(ctx(), { opcode: FuseOpcode.FUSE_OPENDIR, noReply: false, header: header(FuseOpcode.FUSE_OPENDIR, FUSE_ROOT_ID), ext: undefined, arg: { flags: 0o200000, open_flags: 0 } } as never)).fh;
    const before = openFds();
    // A low soft limit for this process (the hard one unchanged): room for HEADROOM more fds. Lowering
    // it below fds already open is allowed; only new ones fail.
    const soft = BigInt(before + HEADROOM);
    expect(prlimitNofile(0, { soft, hard: saved.hard })).toEqual(saved);
    let entries: Array<FuseEntryOut | undefined>;
    let errnos: number[];
    try {
      const results = await Promise.all(
        Array.from({ length: FILES }, (_, i) =>
          pfs.lookup(ctx(), lookupReq(`f${i}`)).then(
            (e) => ({ e, errno: 0 }),
            (err: unknown) => ({ e: undefined, errno: err instanceof FsError ? err.errno : -1 }),
          ),
        ),
      );
      entries = results.map((r) => r.e);
      errnos = results.map((r) => r.errno);

      const ok = entries.filter((e) => e !== undefined).length;
      // Every fd slot left was used by an inode (give or take the pool's own), and every other lookup
      // failed with EMFILE, not a crash or another errno.
      expect(ok).toBeGreaterThan(HEADROOM - 10);
      expect(ok).toBeLessThanOrEqual(HEADROOM + 5); // the limit bounds fd numbers, and there are holes below it
      expect(errnos.filter((e) => e !== 0).every((e) => e === EMFILE || e === ENFILE)).toBe(true);
      expect(ok + errnos.filter((e) => e === EMFILE || e === ENFILE).length).toBe(FILES);
      expect(pfs.inodes.size).toBe(ok + 1);

      // Still serving at the limit: getattr of known inodes, a second lookup of a known inode (no new
      // fd: found by its stat), a lookup of a missing name (ENOENT, or EMFILE: it cannot tell).
      const first = entries.find((e) => e !== undefined)!;
      const firstIdx = entries.indexOf(first);
      expect((await pfs.getattr(ctx(), getattrReq(first.nodeid))).attr.ino).toBe(first.attr.ino);
      const again = await pfs.lookup(ctx(), lookupReq(`f${firstIdx}`));
      expect(again.nodeid).toBe(first.nodeid);
      const failedIdx = errnos.findIndex((e) => e !== 0);
      expect([EMFILE, ENFILE]).toContain(await errnoOf(pfs.lookup(ctx(), lookupReq(`f${failedIdx}`))));
      // READDIR on a directory opened before needs no new fd: it still lists (READDIRPLUS would stop at
      // the first entry it cannot open, EMFILE if that is the first).
      const listed = await pfs.readdir(ctx(), { opcode: FuseOpcode.FUSE_READDIR, noReply: false, header: header(FuseOpcode.FUSE_READDIR, FUSE_ROOT_ID), ext: undefined, arg: { fh: dirFh, offset: 0n, size: 65536, read_flags: 0, lock_owner: 0n, flags: 0 } } as never, false);
      expect(listed.length).toBe(FILES + 2);

      // FORGET frees fds (the second lookup of `first` counted too: forget both).
      const known = entries.filter((e): e is FuseEntryOut => e !== undefined);
      for (const e of known.slice(0, 20)) pfs.forget(forgetReq(e.nodeid, e === first ? 2n : 1n));
      // Closes go through the pool: give them a moment.
      await new Promise((r) => setTimeout(r, 50));
      const retried = await Promise.all(
        errnos
          .map((e, i) => (e !== 0 ? i : -1))
          .filter((i) => i >= 0)
          .slice(0, 15)
          .map((i) => pfs.lookup(ctx(), lookupReq(`f${i}`))),
      );
      expect(retried).toHaveLength(15);
      for (const e of retried) expect(e.nodeid).toBeGreaterThan(1n);
    } finally {
      prlimitNofile(0, saved);
    }
    // With the limit back, everything is found; nothing leaked: the fds are the inodes' plus what was open.
    const all = await Promise.all(Array.from({ length: FILES }, (_, i) => pfs.lookup(ctx(), lookupReq(`f${i}`))));
    expect(new Set(all.map((e) => e.nodeid)).size).toBe(FILES);
    expect(pfs.inodes.size).toBe(FILES + 1);
    expect(openFds()).toBe(before + FILES);
  });
});
