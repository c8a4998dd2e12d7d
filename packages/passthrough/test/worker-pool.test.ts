import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { EBADF, EINTR, EIO, FsError, fuseAttrOf } from '@vfsd/core';
import type { StatRecord } from '../src/sys/stat';
import { WorkerPool } from '../src';
import { O_PATH } from '../src/sys/constants';
import { postable } from '../src/pool/ring-worker';
import { sleep, tempDir } from './helpers';

const F_OFD_SETLK = 37;
const F_OFD_SETLKW = 38;
const WRITE_ALL = { type: 1, start: 0n, len: 0n, pid: 0 };

/** A stat record's size, from its fuse_attr bytes. */
const sizeOf = (st: StatRecord): bigint => fuseAttrOf(st.attr).size;

describe('WorkerPool', () => {
  let dir: string;
  let pool: WorkerPool;

  beforeEach(() => {
    dir = tempDir();
    fs.writeFileSync(path.join(dir, 'f'), 'x');
  });

  afterEach(async () => {
    await pool.shutdown();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('regular workers are actors: starting -> idle -> busy -> idle', async () => {
    pool = new WorkerPool({ threadPoolSize: 2, warmWaiters: 0, inlineBelow: 0 });
    const seen: string[] = [];
    for (const actor of pool.workers) actor.subscribe((s) => seen.push(String(s.value)));
    await pool.ready();
    const fd = fs.openSync(path.join(dir, 'f'), 'r');
    try {
      const st = await pool.submit({ kind: 'fstat', fd }, { unique: 5n });
      expect(sizeOf(st)).toBe(1n);
      await expect(pool.submit({ kind: 'fstat', fd: 1_000_000 })).rejects.toEqual(new FsError(EBADF, 'fstat'));
    } finally {
      fs.closeSync(fd);
    }
    expect(seen).toContain('busy');
    expect(pool.workers.map((a) => a.getSnapshot().value)).toEqual(['idle', 'idle']);
    expect(pool.workers[0].getSnapshot().context.tid).toBeGreaterThan(0);
  });

  test('a queued call is dropped when its signal aborts', async () => {
    pool = new WorkerPool({ threadPoolSize: 1, maxWaiters: 1, warmWaiters: 0 });
    const holder = fs.openSync(path.join(dir, 'f'), 'r+');
    const a = fs.openSync(path.join(dir, 'f'), 'r+');
    const b = fs.openSync(path.join(dir, 'f'), 'r+');
    try {
      await pool.submit({ kind: 'ofdLock', fd: holder, cmd: F_OFD_SETLK, lock: WRITE_ALL });
      const first = pool.submit({ kind: 'ofdLock', fd: a, cmd: F_OFD_SETLKW, lock: WRITE_ALL }, { mayBlock: true });
      first.catch(() => undefined);
      const ac = new AbortController();
      const second = pool.submit({ kind: 'ofdLock', fd: b, cmd: F_OFD_SETLKW, lock: WRITE_ALL }, { mayBlock: true, signal: ac.signal });
      await sleep(30);
      expect(pool.stats()).toMatchObject({ waiters: 1, waiterQueued: 1 });
      ac.abort();
      await expect(second).rejects.toMatchObject({ errno: EINTR });
      expect(pool.stats().waiterQueued).toBe(0);
      fs.closeSync(holder); // drops the lock: the first waiter gets it
      await first;
    } finally {
      fs.closeSync(a);
      fs.closeSync(b);
    }
  });

  test('inline mode runs cheap calls on the main thread and still sends blocking ones to a waiter', async () => {
    pool = new WorkerPool({ threadPoolSize: 0, warmWaiters: 0 });
    expect(pool.workers).toHaveLength(0);
    const fd = fs.openSync(path.join(dir, 'f'), 'r+');
    try {
      await pool.submit({ kind: 'fstat', fd });
      expect(pool.workers).toHaveLength(0);
      await pool.submit({ kind: 'ofdLock', fd, cmd: F_OFD_SETLKW, lock: WRITE_ALL }, { mayBlock: true });
      expect(pool.stats().waiters).toBe(1);
    } finally {
      fs.closeSync(fd);
    }
  });
});

describe('WorkerPool regular lane (rings, hybrid)', () => {
  let dir: string;
  let pool: WorkerPool;
  const files: number[] = [];

  beforeEach(() => {
    dir = tempDir();
    for (let i = 0; i < 8; i++) {
      fs.writeFileSync(path.join(dir, `f${i}`), 'x'.repeat(i));
      files.push(fs.openSync(path.join(dir, `f${i}`), 'r'));
    }
  });

  afterEach(async () => {
    await pool.shutdown();
    for (const fd of files.splice(0)) fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const completed = (): number => pool.workers.filter((a) => a.getSnapshot().context.lane === 'regular').reduce((n, a) => n + a.getSnapshot().context.completed, 0);

  test('the hybrid runs a call inline below inlineBelow requests in flight, in a worker at or above', async () => {
    pool = new WorkerPool({ threadPoolSize: 1, warmWaiters: 0, inlineBelow: 3 });
    await pool.ready();
    expect(completed()).toBe(0);
    for (const depth of [1, 2]) await pool.submit({ kind: 'fstat', fd: files[1] }, { depth });
    expect(completed()).toBe(0);
    for (const depth of [3, 64]) expect(sizeOf(await pool.submit({ kind: 'fstat', fd: files[1] }, { depth }))).toBe(1n);
    expect(completed()).toBe(2);
    // Without a depth, the pool's own pending jobs count: the first two of a burst run inline.
    const burst = await Promise.all(files.slice(0, 8).map((fd) => pool.submit({ kind: 'fstat', fd })));
    expect(burst.map((s) => Number(sizeOf(s)))).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(completed()).toBe(2 + 8 - 2);
  });

  test('jobs batched into a few workers settle with their own results, in any order', async () => {
    pool = new WorkerPool({ threadPoolSize: 2, warmWaiters: 0, inlineBelow: 0, workerDepth: 4 });
    const sizes = files.map((fd) => Number(fs.fstatSync(fd).size));
    const jobs = Array.from({ length: 300 }, (_, i) => {
      const k = i % 10;
      if (k === 9) return pool.submit({ kind: 'fstat', fd: 1_000_000 + i }).then(() => 'resolved', (e: FsError) => e.errno);
      if (k === 8) {
        return pool
          .submit({ kind: 'lookupAt', dirFd, name: Buffer.from(`f${i % 8}`) })
          .then((r) => {
            fs.closeSync(r.fd);
            return Number(sizeOf(r.stat));
          });
      }
      return pool.submit({ kind: 'fstat', fd: files[k] }).then((s) => Number(sizeOf(s)));
    });
    const got = await Promise.all(jobs);
    got.forEach((v, i) => {
      const k = i % 10;
      expect(v).toBe(k === 9 ? EBADF : k === 8 ? i % 8 : sizes[k]);
    });
    expect(pool.stats().queued).toBe(0);
  });
  let dirFd = -1;
  beforeEach(() => {
    dirFd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    files.push(dirFd);
  });

  /** A FIFO's O_PATH fd: reopening it for reading without O_NONBLOCK waits for a writer, in a regular worker. */
  function fifo(): { pathFd: number; name: string } {
    const name = path.join(dir, 'fifo');
    execFileSync('mkfifo', [name]);
    const pathFd = fs.openSync(name, O_PATH);
    files.push(pathFd);
    return { pathFd, name };
  }

  test('a worker stuck in a call gives back the jobs queued behind it; a queued job can be cancelled', async () => {
    pool = new WorkerPool({ threadPoolSize: 2, warmWaiters: 0, inlineBelow: 0, watchdogMs: 20 });
    await pool.ready();
    const { pathFd, name } = fifo();
    const stuck = pool.submit({ kind: 'reopen', fd: pathFd, flags: fs.constants.O_RDONLY });
    // Packed behind the stuck call (same worker, within the slow-worker delay).
    const ac = new AbortController();
    const cancelled = pool.submit({ kind: 'fstat', fd: files[3] }, { signal: ac.signal });
    const behind = files.slice(0, 5).map((fd) => pool.submit({ kind: 'fstat', fd }));
    ac.abort();
    await expect(cancelled).rejects.toMatchObject({ errno: EINTR });
    const t0 = Date.now();
    expect((await Promise.all(behind)).map((s) => Number(sizeOf(s)))).toEqual([0, 1, 2, 3, 4]);
    expect(Date.now() - t0).toBeLessThan(1000);
    // New jobs avoid the stuck worker.
    expect(Number(sizeOf(await pool.submit({ kind: 'fstat', fd: files[2] })))).toBe(2);
    const writer = fs.openSync(name, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
    fs.closeSync(writer);
    fs.closeSync(await stuck);
  });

  test('a worker that dies fails its running job with EIO; its queued jobs run on its replacement', async () => {
    pool = new WorkerPool({ threadPoolSize: 1, warmWaiters: 0, inlineBelow: 0, watchdogMs: 10_000 });
    await pool.ready();
    const { pathFd, name } = fifo();
    const stuck = pool.submit({ kind: 'reopen', fd: pathFd, flags: fs.constants.O_RDONLY });
    stuck.catch(() => undefined);
    const behind = files.slice(0, 4).map((fd) => pool.submit({ kind: 'fstat', fd }));
    await sleep(30);
    // A crash, as far as the pool can tell: the thread is killed under it.
    const worker = (pool as unknown as { regular: Array<{ thread: { terminate(): Promise<number> } }> }).regular[0];
    const gone = worker.thread.terminate();
    // The thread leaves once its open returns (a terminate cannot interrupt a syscall).
    const writer = fs.openSync(name, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
    await gone;
    fs.closeSync(writer);
    await expect(stuck).rejects.toMatchObject({ errno: EIO });
    expect((await Promise.all(behind)).map((s) => Number(sizeOf(s)))).toEqual([0, 1, 2, 3]);
    expect(pool.stats().regular).toBe(1);
    expect(Number(sizeOf(await pool.submit({ kind: 'fstat', fd: files[5] })))).toBe(5);
  });

  test('worker actors exist only when asked for, or from the start with an inspector', async () => {
    const events: string[] = [];
    pool = new WorkerPool({
      threadPoolSize: 1,
      warmWaiters: 0,
      inlineBelow: 0,
      inspect: (e) => {
        if (e.type === '@xstate.event') events.push((e.event as { type: string }).type);
      },
    });
    await pool.ready();
    await Promise.all(files.slice(0, 3).map((fd) => pool.submit({ kind: 'fstat', fd }, { unique: 9n })));
    expect(events).toEqual(expect.arrayContaining(['READY', 'DISPATCH', 'DONE']));
    const snap = pool.workers[0].getSnapshot();
    expect(snap.value).toBe('idle');
    expect(snap.context).toMatchObject({ completed: 3, inFlight: 0, unique: undefined });
  });
});

describe('ops posted to a worker', () => {
  // A message carries a typed array's whole ArrayBuffer: a view of guest memory would post all of it.
  test('a name or data that views a bigger buffer is copied to its own bytes; the rest goes as it is', () => {
    const guestRam = new Uint8Array(1 << 20);
    guestRam.set(Buffer.from('hello'), 4096);
    const view = guestRam.subarray(4096, 4101);
    const posted = postable({ kind: 'write', fd: 3, offset: 0n, data: view }) as { data: Uint8Array; fd: number };
    expect(posted.data.buffer.byteLength).toBe(5);
    expect(Buffer.from(posted.data).toString()).toBe('hello');
    expect(posted.fd).toBe(3);
    const own = new Uint8Array(8);
    const op = { kind: 'write' as const, fd: 3, offset: 0n, data: own };
    expect(postable(op)).toBe(op);
    const named = { kind: 'unlinkAt' as const, dirFd: 4, name: Buffer.from('x'), flags: 0 };
    // Buffer.from of a short string is a slice of Node's shared pool: copied too.
    expect((postable(named) as { name: Uint8Array }).name.buffer.byteLength).toBe(1);
  });
});
