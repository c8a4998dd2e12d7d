import * as fs from 'node:fs';
import * as path from 'node:path';
import { EAGAIN, EINTR, FUSE_LK_FLOCK, FUSE_RELEASE_FLOCK_UNLOCK, FuseOpcode } from '@vfsd/core';
import { PassthroughFs } from '../src';
import {
  F_RDLCK,
  F_UNLCK,
  F_WRLCK,
  OFFSET_MAX,
  ctx,
  flushReq,
  getattrReq,
  lkReq,
  lock,
  lookupReq,
  openReq,
  releaseReq,
  sleep,
  tempDir,
  threadCount,
  promised, type PromisedPassthrough } from './helpers';

const { FUSE_GETLK, FUSE_SETLK, FUSE_SETLKW } = FuseOpcode;
const A = 0xa1n;
const B = 0xb2n;
const C = 0xc3n;

/** Tracks whether a promise settled, without awaiting it. */
function track<T>(p: Promise<T>): { settled: () => boolean; promise: Promise<T> } {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  return { settled: () => done, promise: p };
}

describe.each([1, 0])('locks (threadPoolSize %i)', (threadPoolSize) => {
  let dir: string;
  let pfs: PromisedPassthrough;
  let node: bigint;

  beforeEach(async () => {
    dir = tempDir();
    fs.writeFileSync(path.join(dir, 'f'), 'data');
    pfs = promised(new PassthroughFs({ sharedDir: dir, threadPoolSize }));
    // Cheap calls run inline at low depth, so nothing else would wait for the regular worker to start.
    await pfs.pool.ready();
    node = (await pfs.lookup(ctx(), lookupReq('f'))).nodeid;
  });

  afterEach(async () => {
    await pfs.shutdown();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a waiting SETLKW does not take the pool; GETLK sees the conflict; unlock wakes the waiter', async () => {
    await pfs.setlk(ctx(), lkReq(FUSE_SETLK, node, A, lock(F_WRLCK, 0n, 99n)), false);
    await expect(pfs.setlk(ctx(), lkReq(FUSE_SETLK, node, B, lock(F_WRLCK, 50n, 149n)), false)).rejects.toMatchObject({ errno: EAGAIN });

    const waiting = track(pfs.setlk(ctx(), lkReq(FUSE_SETLKW, node, B, lock(F_WRLCK, 50n, 149n)), true));
    await sleep(30);
    expect(waiting.settled()).toBe(false);
    // The single regular worker (or the main thread) keeps serving while B waits.
    for (let i = 0; i < 200; i++) await pfs.getattr(ctx(), getattrReq(node));
    await Promise.all(Array.from({ length: 50 }, () => pfs.getattr(ctx(), getattrReq(node))));
    expect(waiting.settled()).toBe(false);

    const seen = await pfs.getlk(ctx(), lkReq(FUSE_GETLK, node, B, lock(F_RDLCK)));
    expect(seen).toEqual({ type: F_WRLCK, start: 0n, end: 99n, pid: 0 });
    // An owner never conflicts with itself.
    expect((await pfs.getlk(ctx(), lkReq(FUSE_GETLK, node, A, lock(F_WRLCK)))).type).toBe(F_UNLCK);

    await pfs.setlk(ctx(), lkReq(FUSE_SETLK, node, A, lock(F_UNLCK, 0n, OFFSET_MAX)), false);
    await waiting.promise;
    expect(await pfs.getlk(ctx(), lkReq(FUSE_GETLK, node, A, lock(F_WRLCK)))).toEqual({ type: F_WRLCK, start: 50n, end: 149n, pid: 0 });
  });

  test('an aborted SETLKW returns EINTR promptly and its waiter is reused', async () => {
    await pfs.setlk(ctx(), lkReq(FUSE_SETLK, node, A, lock(F_WRLCK)), false);
    const ac = new AbortController();
    const c = ctx(ac.signal);
    const waiting = pfs.setlk(c, lkReq(FUSE_SETLKW, node, B, lock(F_WRLCK)), true);
    waiting.catch(() => undefined);
    const blockedNow = () => pfs.pool.workers.map((a) => a.getSnapshot()).filter((s) => s.value === 'blockedInSyscall');
    // A waiter thread may still be starting (slow when the suites run in parallel).
    for (let i = 0; i < 200 && blockedNow().length === 0; i++) await sleep(5);
    const blocked = blockedNow();
    expect(blocked).toHaveLength(1);
    expect(blocked[0].context).toMatchObject({ lane: 'waiter', unique: c.unique, op: 'ofdLock' });
    const waitersBefore = pfs.pool.stats().waiters;

    const t0 = Date.now();
    ac.abort();
    await expect(waiting).rejects.toMatchObject({ errno: EINTR });
    expect(Date.now() - t0).toBeLessThan(100);
    await sleep(5);
    expect(pfs.pool.workers.every((a) => a.getSnapshot().value === 'idle')).toBe(true);

    // The same waiter serves the next blocking call, which is granted once A unlocks.
    const next = track(pfs.setlk(ctx(), lkReq(FUSE_SETLKW, node, C, lock(F_RDLCK)), true));
    await sleep(20);
    expect(next.settled()).toBe(false);
    expect(pfs.pool.stats().waiters).toBe(waitersBefore);
    await pfs.setlk(ctx(), lkReq(FUSE_SETLK, node, A, lock(F_UNLCK)), false);
    await next.promise;
  });

  test('FLUSH drops the owner\'s POSIX locks', async () => {
    const open = await pfs.open(ctx(), openReq(node, fs.constants.O_RDWR));
    await pfs.setlk(ctx(), lkReq(FUSE_SETLK, node, A, lock(F_WRLCK)), false);
    const waiting = track(pfs.setlk(ctx(), lkReq(FUSE_SETLKW, node, B, lock(F_WRLCK)), true));
    await sleep(20);
    expect(waiting.settled()).toBe(false);
    await pfs.flush(ctx(), flushReq(node, open.fh, A));
    await waiting.promise;
    await pfs.release(ctx(), releaseReq(node, open.fh));
  });

  test('flock locks: exclusive, non-blocking conflict, released with the file', async () => {
    const open = await pfs.open(ctx(), openReq(node, fs.constants.O_RDONLY));
    await pfs.setlk(ctx(), lkReq(FUSE_SETLK, node, A, lock(F_WRLCK), FUSE_LK_FLOCK), false);
    await expect(pfs.setlk(ctx(), lkReq(FUSE_SETLK, node, B, lock(F_RDLCK), FUSE_LK_FLOCK), false)).rejects.toMatchObject({ errno: EAGAIN });
    const waiting = track(pfs.setlk(ctx(), lkReq(FUSE_SETLKW, node, B, lock(F_RDLCK), FUSE_LK_FLOCK), true));
    await sleep(20);
    expect(waiting.settled()).toBe(false);
    await pfs.release(ctx(), releaseReq(node, open.fh, A, FUSE_RELEASE_FLOCK_UNLOCK));
    await waiting.promise;
  });

  test('shutdown with several blocked SETLKWs returns promptly and stops every thread', async () => {
    await pfs.setlk(ctx(), lkReq(FUSE_SETLK, node, A, lock(F_WRLCK)), false);
    const owners = [10n, 11n, 12n, 13n, 14n];
    const waits = owners.map((o) => pfs.setlk(ctx(), lkReq(FUSE_SETLKW, node, o, lock(F_WRLCK)), true));
    for (const w of waits) w.catch(() => undefined);
    await sleep(100);
    expect(pfs.pool.stats().waiters).toBe(owners.length);
    const before = threadCount();
    const t0 = Date.now();
    const report = await pfs.shutdownWithReport();
    expect(Date.now() - t0).toBeLessThan(500);
    expect(report.stuckWorkers).toBe(0);
    for (const w of waits) await expect(w).rejects.toMatchObject({ errno: EINTR });
    expect(threadCount()).toBe(before - owners.length - threadPoolSize);
    expect(pfs.pool.workers).toHaveLength(0);
  });
});
