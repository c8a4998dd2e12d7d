// The shared fd table of the request-queue threads: each published id finds its own fd, a closed
// cell is taken by no one, the last pin (of any thread) closes, a cell is reused only once free.
import { Worker } from 'node:worker_threads';
import { FdCells } from '../src/fd-cells';
import { SharedFd } from '../src/shared-fd';

describe('FdCells', () => {
  test('every published id pins its own fd; an id whose cell is taken is not published', () => {
    const cells = new FdCells(64);
    const published = new Map<bigint, number>();
    for (let id = 1n; id <= 64n; id++) {
      const k = cells.claim(id, id * 10n, 1000 + Number(id));
      expect(k).toBeGreaterThanOrEqual(0);
      published.set(id, 1000 + Number(id));
    }
    expect(cells.claim(65n, 0n, 5000)).toBe(-1); // 65 & 63 is id 1's cell, still open
    const other = new FdCells(cells.buffer); // as a queue thread sees it
    for (const [id, fd] of published) {
      const k = other.pinId(id, id * 10n);
      expect(k).toBeGreaterThanOrEqual(0);
      expect(other.fd(k)).toBe(fd);
      expect(other.unpin(k)).toBe(false);
    }
    expect(other.pinId(65n)).toBe(-1);
    expect(other.pinId(3n, 31n)).toBe(-1); // a handle's nodeid must match too
  });

  test('closing: no new pins, the last pin closes (once), then the cell may serve a newer id', () => {
    const closed: number[] = [];
    const cells = new FdCells(16);
    const a = new SharedFd(7, (fd) => closed.push(fd), cells, 5n);
    const k = cells.pinId(5n);
    expect(k).toBeGreaterThanOrEqual(0);
    expect(a.pin()).toBe(true);
    a.close();
    expect(closed).toEqual([]);
    expect(cells.pinId(5n)).toBe(-1);
    expect(a.pin()).toBe(false);
    a.unpin();
    expect(closed).toEqual([]);
    expect(cells.unpin(k)).toBe(true); // the thread's pin was the last: it closes fd 7 itself
    const b = new SharedFd(8, (fd) => closed.push(fd), cells, 21n); // 21 & 15 === 5
    expect(cells.pinId(5n)).toBe(-1);
    const k2 = cells.pinId(21n);
    expect(cells.fd(k2)).toBe(8);
    cells.unpin(k2);
    b.close();
    expect(closed).toEqual([8]);
    expect(a.pin()).toBe(false); // the old owner never touches its reused cell
  });

  test('a thread pinning while the main thread closes and republishes: every fd is closed exactly once, never while pinned', async () => {
    const cells = new FdCells(16);
    const MAX = 200_000;
    const log = new Int32Array(new SharedArrayBuffer(4 * MAX)); // closes per fd, by either thread
    const newest = new Int32Array(new SharedArrayBuffer(8)); // [0]: the newest id published, [1]: 1 when done
    const src = `
      const { workerData, parentPort } = require('node:worker_threads');
      const { FdCells } = require(${JSON.stringify(require.resolve('../src/fd-cells'))});
      const log = new Int32Array(workerData.log);
      const cells = new FdCells(workerData.buf, (fd) => Atomics.add(log, fd, 1));
      const newest = new Int32Array(workerData.newest);
      let pins = 0;
      parentPort.postMessage('ready');
      while (Atomics.load(newest, 1) === 0) {
        const top = Atomics.load(newest, 0);
        for (let id = BigInt(Math.max(1, top - 20)); id <= BigInt(top); id++) {
          const k = cells.pinId(id);
          if (k < 0) continue;
          const fd = cells.fd(k);
          if (Atomics.load(log, fd) !== 0) throw new Error('fd ' + fd + ' used after its close');
          pins++;
          if (cells.unpin(k)) Atomics.add(log, fd, 1);
        }
      }
      parentPort.postMessage(pins);
    `;
    const w = new Worker(src, { eval: true, workerData: { buf: cells.buffer, log: log.buffer, newest: newest.buffer } });
    let pinned: (n: number) => void;
    const pins = new Promise<number>((res, rej) => ((pinned = res), w.on('error', rej)));
    await new Promise<void>((ready) => w.on('message', (m) => (m === 'ready' ? ready() : pinned(m as number))));
    const fds: SharedFd[] = [];
    let next = 1;
    const end = Date.now() + 300;
    while (Date.now() < end && next < MAX) {
      fds.push(new SharedFd(next, (fd) => Atomics.add(log, fd, 1), cells, BigInt(next)));
      Atomics.store(newest, 0, next);
      next++;
      if (fds.length > 8) fds.shift()!.close();
      for (let spin = 0; spin < 200; spin++); // let the other thread in
    }
    for (const f of fds) f.close();
    Atomics.store(newest, 1, 1);
    expect(await pins).toBeGreaterThan(0);
    const wrong: number[][] = [];
    for (let fd = 1; fd < next; fd++) if (Atomics.load(log, fd) !== 1) wrong.push([fd, Atomics.load(log, fd)]);
    expect(wrong).toEqual([]);
    expect(next).toBeGreaterThan(100);
    await w.terminate();
  });
});
