// The daemon's parts together, in process: the simulated front-end over a real socket, the actor
// core, the passthrough with real files and real OFD locks in its worker pool.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Logger, serve } from '@vfsd/vhost';
import { SimulatedFrontend } from '@vfsd/vhost/testing';
import { EINTR, FuseOpcode, VirtioFsDevice, fuse_open_in, fuse_read_in, fuse_write_in } from '@vfsd/core';
import { FuseClient, waitFor } from '@vfsd/core/testing';
import { PassthroughFs } from '@vfsd/passthrough';

const F_WRLCK = 1;
const F_UNLCK = 2;
const WHOLE = { start: 0n, end: 0x7fffffffffffffffn, type: F_WRLCK, pid: 1 };

function rig(threadPoolSize: number) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vfsd-daemon-'));
  const share = path.join(dir, 'share');
  fs.mkdirSync(share);
  fs.writeFileSync(path.join(share, 'locked'), 'x');
  const sock = path.join(dir, 'vhost.sock');
  const errors: string[] = [];
  const logger: Logger = { error: (m) => errors.push(m), warn: () => undefined, info: () => undefined, debug: () => undefined };
  const filesystems: PassthroughFs[] = [];
  const devices: VirtioFsDevice[] = [];
  const server = serve({
    socketPath: sock,
    reconnect: true,
    logger,
    createDevice: () => {
      const p = new PassthroughFs({ sharedDir: share, threadPoolSize });
      filesystems.push(p);
      const d = new VirtioFsDevice({ fs: p, requestQueues: 1, logger });
      devices.push(d);
      return d;
    },
  });
  return {
    server,
    share,
    filesystems,
    devices,
    errors,
    async connect() {
      const fe = await SimulatedFrontend.connect(sock);
      await fe.negotiate({ numQueues: 2, queueSize: 256 });
      const c = new FuseClient(fe, 1);
      expect((await c.init()).error).toBe(0);
      const l = await c.lookup(1n, 'locked');
      expect(l.error).toBe(0);
      return { fe, c, nodeid: l.body.readBigUInt64LE(0) };
    },
    async stop() {
      await server.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe.each([0, 4])('thread pool size %i', (poolSize) => {
  test('a real F_SETLKW waits on another owner while 10,000 GETATTRs on the same queue complete', async () => {
    const r = rig(poolSize);
    const { fe, c, nodeid } = await r.connect();
    expect((await c.setlk(nodeid, 1n, WHOLE, false)).error).toBe(0);
    // A second owner: its F_SETLK fails at once, its F_SETLKW waits in the pool's waiter lane.
    expect((await c.setlk(nodeid, 2n, WHOLE, false)).error).toBe(-11);
    let settled = false;
    const blocked = c.setlk(nodeid, 2n, WHOLE, true).then((x) => ((settled = true), x));
    await waitFor(() => r.devices[0].inFlightRequests().length === 1, 'the SETLKW to wait');
    const lk = await c.getlk(nodeid, 2n, WHOLE);
    expect(lk.error).toBe(0);
    expect(lk.body.readUInt32LE(16)).toBe(F_WRLCK);
    let next = 0;
    let ok = 0;
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (next < 10_000) {
          next++;
          if ((await c.getattr(nodeid)).error === 0) ok++;
        }
      }),
    );
    expect(ok).toBe(10_000);
    expect(settled).toBe(false);
    expect((await c.setlk(nodeid, 1n, { ...WHOLE, type: F_UNLCK }, false)).error).toBe(0);
    expect((await blocked).error).toBe(0);
    await waitFor(() => r.devices[0].liveRequests === 0, 'every request to end');
    expect(r.errors).toEqual([]);
    fe.close();
    await r.stop();
  });

  test('READ data reaches the guest intact, whether the chain has one writable segment or a page each', async () => {
    const r = rig(poolSize);
    const data = Buffer.alloc((1 << 20) + 1000);
    for (let i = 0; i < data.length; i += 4) data.writeUInt32LE(i, i);
    fs.writeFileSync(path.join(r.share, 'data.bin'), data);
    const { fe, c } = await r.connect();
    try {
      const l = await c.lookup(1n, 'data.bin');
      const nodeid = l.body.readBigUInt64LE(0);
      const o = await c.request(FuseOpcode.FUSE_OPEN, nodeid, [c.struct(fuse_open_in, { flags: 0, open_flags: 0 })], 16 + 16);
      expect(o.error).toBe(0);
      const fh = o.body.readBigUInt64LE(0);
      const read = async (offset: number, size: number, writable: number[]) => {
        const req = c.encode(FuseOpcode.FUSE_READ, nodeid, [c.struct(fuse_read_in, { fh, offset: BigInt(offset), size, read_flags: 0, lock_owner: 0n, flags: 0 })]);
        const res = await fe.submit(1, [req], writable);
        expect(res.data.readInt32LE(4)).toBe(0);
        expect(res.data.readUInt32LE(0)).toBe(res.len);
        return res.data.subarray(16, res.len);
      };
      const pages = (n: number) => [16, ...Array.from({ length: Math.ceil(n / 4096) }, () => 4096)];
      // Big (a worker's with a pool) and small (inline below the pool's depth), in both chain shapes.
      for (const [offset, size] of [[0, 1 << 20], [4096 * 3 + 5, 100_000], [12, 4096]]) {
        const want = data.subarray(offset, offset + size);
        expect((await read(offset, size, [16 + size])).equals(want)).toBe(true);
        expect((await read(offset, size, pages(size))).equals(want)).toBe(true);
      }
      // A short read at the end of the file, and past it.
      expect((await read(data.length - 10, 4096, pages(4096))).equals(data.subarray(data.length - 10))).toBe(true);
      expect((await read(data.length + 10, 4096, pages(4096))).length).toBe(0);
      // A chain too small for the reply: EIO, nothing written past it.
      const small = await fe.submit(1, [c.encode(FuseOpcode.FUSE_READ, nodeid, [c.struct(fuse_read_in, { fh, offset: 0n, size: 8192, read_flags: 0, lock_owner: 0n, flags: 0 })])], [16, 4096]);
      expect(small.data.readInt32LE(4)).toBe(-5);
    } finally {
      fe.close();
      await r.stop();
    }
  });

  test('WRITE data reaches the file intact from segmented chains, big (a worker\'s with a pool) and small', async () => {
    const r = rig(poolSize);
    fs.writeFileSync(path.join(r.share, 'out.bin'), '');
    fs.chmodSync(path.join(r.share, 'out.bin'), 0o666); // the client's requests come from uid 1000
    const { fe, c } = await r.connect();
    try {
      const nodeid = (await c.lookup(1n, 'out.bin')).body.readBigUInt64LE(0);
      const o = await c.request(FuseOpcode.FUSE_OPEN, nodeid, [c.struct(fuse_open_in, { flags: 2, open_flags: 0 })], 16 + 16);
      expect(o.error).toBe(0);
      const fh = o.body.readBigUInt64LE(0);
      const expected = Buffer.alloc((1 << 20) + 300_000);
      const write = async (offset: number, data: Buffer) => {
        const head = c.encode(FuseOpcode.FUSE_WRITE, nodeid, [c.struct(fuse_write_in, { fh, offset: BigInt(offset), size: data.length, write_flags: 0, lock_owner: 0n, flags: 0 })]);
        head.writeUInt32LE(head.length + data.length, 0);
        // As the Linux driver: the header, fuse_write_in and each page in a descriptor of its own.
        const pages = Array.from({ length: Math.ceil(data.length / 4096) }, (_, i) => data.subarray(i * 4096, (i + 1) * 4096));
        const res = await fe.submit(1, [head.subarray(0, 40), head.subarray(40), ...pages], [16 + 8]);
        expect(res.data.readInt32LE(4)).toBe(0);
        expect(res.data.readUInt32LE(16)).toBe(data.length);
        data.copy(expected, offset);
      };
      const pattern = (n: number, seed: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff));
      await write(0, pattern(1 << 20, 1));
      await write(1 << 20, pattern(300_000, 2));
      await write(4093, pattern(10, 3));
      await Promise.all([write(200_000, pattern(150_000, 4)), write(600_000, pattern(150_000, 5)), write(5, pattern(4096, 6))]);
      expect(fs.readFileSync(path.join(r.share, 'out.bin')).equals(expected)).toBe(true);
    } finally {
      fe.close();
      await r.stop();
    }
  });

  test('a front-end that disconnects while F_SETLKW waits: the wait is cancelled, the worker freed, the next connection served', async () => {
    const r = rig(poolSize);
    const first = await r.connect();
    await first.c.setlk(first.nodeid, 1n, WHOLE, false);
    void first.c.setlk(first.nodeid, 2n, WHOLE, true).catch(() => undefined);
    const pool = r.filesystems[0].pool;
    await waitFor(() => pool.stats().waiters - pool.stats().idleWaiters === 1, 'a waiter thread to hold the SETLKW');
    first.fe.close();
    await waitFor(() => r.devices[0].actor.getSnapshot().value === 'stopped', 'the device to stop');
    expect(r.devices[0].liveRequests).toBe(0);
    // The next guest takes the same lock: the first session's locks and waits are gone.
    const second = await r.connect();
    expect((await second.c.setlk(second.nodeid, 7n, WHOLE, false)).error).toBe(0);
    expect((await second.c.getattr(second.nodeid)).error).toBe(0);
    second.fe.close();
    await r.stop();
  });
});

test('an interrupted F_SETLKW answers EINTR and frees its worker', async () => {
  const r = rig(1);
  const { fe, c, nodeid } = await r.connect();
  await c.setlk(nodeid, 1n, WHOLE, false);
  const blocked = c.setlk(nodeid, 2n, WHOLE, true, 4242n);
  const pool = r.filesystems[0].pool;
  await waitFor(() => pool.stats().waiters - pool.stats().idleWaiters === 1, 'a waiter thread to hold the SETLKW');
  await c.interrupt(4242n);
  const res = await blocked;
  expect(res.error).toBe(-EINTR);
  await waitFor(() => pool.stats().waiters - pool.stats().idleWaiters === 0, 'the waiter thread to be free');
  fe.close();
  await r.stop();
});

test('stopping with drain (SIGTERM): requests in flight finish, a waiting SETLKW is answered EINTR, then the daemon stops', async () => {
  const r = rig(0);
  const { fe, c, nodeid } = await r.connect();
  await c.setlk(nodeid, 1n, WHOLE, false);
  const blocked = c.setlk(nodeid, 2n, WHOLE, true);
  await waitFor(() => r.devices[0].inFlightRequests().length === 1, 'the SETLKW to wait');
  const t0 = Date.now();
  await r.server.stop({ drain: true });
  expect(Date.now() - t0).toBeLessThan(2000);
  expect((await blocked).error).toBe(-EINTR);
  expect(r.devices[0].liveRequests).toBe(0);
  fe.close();
  await r.stop();
});
