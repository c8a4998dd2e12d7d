import * as fs from 'node:fs';
import * as path from 'node:path';
import { EBADF, EINTR, FsError } from '@vfsd/core';
import { WorkerPool } from '../src';
import { sleep, tempDir } from './helpers';

const F_OFD_SETLK = 37;
const F_OFD_SETLKW = 38;
const WRITE_ALL = { type: 1, start: 0n, len: 0n, pid: 0 };

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
    pool = new WorkerPool({ threadPoolSize: 2, warmWaiters: 0 });
    const seen: string[] = [];
    for (const actor of pool.workers) actor.subscribe((s) => seen.push(String(s.value)));
    await pool.ready();
    const fd = fs.openSync(path.join(dir, 'f'), 'r');
    try {
      const st = await pool.submit({ kind: 'fstat', fd }, { unique: 5n });
      expect(st.size).toBe(1n);
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
