// Request queues in threads of their own, in process: the simulated front-end over a real socket,
// two request queues each served by its thread, the passthrough's inode and handle fds shared with
// them, real files. What the queues share must hold when two threads touch one inode or handle.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Logger, ProtocolFeature, bit, serve } from '@vfsd/vhost';
import { SimulatedFrontend } from '@vfsd/vhost/testing';
import { FuseOpcode, VirtioFsDevice, fuse_forget_in, fuse_open_in, fuse_open_out, fuse_read_in, fuse_release_in, fuse_write_in } from '@vfsd/core';
import { FuseClient, type FuseReply } from '@vfsd/core/testing';
import { PassthroughFs } from '@vfsd/passthrough';
import { Sampler } from '../src/inspector';

const F_WRLCK = 1;
const WHOLE = { start: 0n, end: 0x7fffffffffffffffn, type: F_WRLCK, pid: 1 };
const EBADF = -9;

/** What this process has open now, by fd (where each leads). */
function openFds(): Map<string, string> {
  const out = new Map<string, string>();
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      out.set(fd, fs.readlinkSync(`/proc/self/fd/${fd}`));
    } catch {
      // the directory's own fd, closed by now
    }
  }
  return out;
}

function rig() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vfsd-qthreads-'));
  const share = path.join(dir, 'share');
  fs.mkdirSync(share);
  fs.writeFileSync(path.join(share, 'file'), 'hello from the host\n');
  fs.chmodSync(path.join(share, 'file'), 0o666);
  const sock = path.join(dir, 'vhost.sock');
  const errors: string[] = [];
  const logger: Logger = { error: (m) => errors.push(m), warn: () => undefined, info: () => undefined, debug: () => undefined };
  const devices: VirtioFsDevice[] = [];
  const server = serve({
    socketPath: sock,
    reconnect: true,
    logger,
    createDevice: () => {
      const d = new VirtioFsDevice({ fs: new PassthroughFs({ sharedDir: share, queueThreads: true }), requestQueues: 2, logger, queueThreads: true });
      devices.push(d);
      return d;
    },
  });
  return {
    share,
    devices,
    errors,
    async connect(migration = false) {
      const fe = await SimulatedFrontend.connect(sock);
      await fe.negotiate({ numQueues: 3, queueSize: 256, migration });
      const c = new FuseClient(fe, 1);
      expect((await c.init()).error).toBe(0);
      return { fe, c };
    },
    async stop() {
      await server.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function lookup(c: FuseClient, name: string, queue = 1): Promise<bigint> {
  const r = await c.request(FuseOpcode.FUSE_LOOKUP, 1n, [Buffer.from(name + '\0')], 16 + 128, queue);
  expect(r.error).toBe(0);
  return r.body.readBigUInt64LE(0);
}

async function open(c: FuseClient, nodeid: bigint, flags: number, queue = 1): Promise<bigint> {
  const r = await c.request(FuseOpcode.FUSE_OPEN, nodeid, [c.struct(fuse_open_in, { flags, open_flags: 0 })], 16 + fuse_open_out.size, queue);
  expect(r.error).toBe(0);
  return r.body.readBigUInt64LE(0);
}

function write(c: FuseClient, nodeid: bigint, fh: bigint, offset: bigint, data: Buffer, queue: number): Promise<FuseReply> {
  const arg = c.struct(fuse_write_in, { fh, offset, size: data.length, write_flags: 0, lock_owner: 0n, flags: 0 });
  return c.request(FuseOpcode.FUSE_WRITE, nodeid, [arg, data], 16 + 8, queue);
}

function read(c: FuseClient, nodeid: bigint, fh: bigint, size: number, queue: number): Promise<FuseReply> {
  const arg = c.struct(fuse_read_in, { fh, offset: 0n, size, read_flags: 0, lock_owner: 0n, flags: 0 });
  return c.request(FuseOpcode.FUSE_READ, nodeid, [arg], 16 + size, queue);
}

function release(c: FuseClient, nodeid: bigint, fh: bigint, queue: number): Promise<FuseReply> {
  return c.request(FuseOpcode.FUSE_RELEASE, nodeid, [c.struct(fuse_release_in, { fh, flags: 0, release_flags: 0, lock_owner: 0n })], 16, queue);
}

function forget(c: FuseClient, nodeid: bigint, nlookup: bigint): Promise<unknown> {
  return c.fe.submit(0, [c.encode(FuseOpcode.FUSE_FORGET, nodeid, [c.struct(fuse_forget_in, { nlookup })])], []);
}

describe('a thread per request queue', () => {
  test('each queue is served by a thread of its own; what the threads cannot answer the main thread does', async () => {
    const r = rig();
    try {
      const { fe, c } = await r.connect();
      const nodeid = await lookup(c, 'file', 2);
      for (const q of [1, 2]) for (let i = 0; i < 200; i++) expect((await c.getattr(nodeid, q)).error).toBe(0);
      const fh = await open(c, nodeid, 2 /* O_RDWR */, 1);
      expect((await write(c, nodeid, fh, 0n, Buffer.from('HELLO'), 2)).error).toBe(0);
      const got = await read(c, nodeid, fh, 64, 1);
      expect(got.error).toBe(0);
      expect(got.body.toString()).toBe('HELLO from the host\n');
      expect(fs.readFileSync(path.join(r.share, 'file'), 'utf8')).toBe('HELLO from the host\n');
      expect((await release(c, nodeid, fh, 2)).error).toBe(0);
      // A handle released is gone for every thread: the main thread answers EBADF.
      expect((await read(c, nodeid, fh, 64, 1)).error).toBe(EBADF);

      const stats = r.devices[0].queueStats().sort((a, b) => a.index - b.index);
      expect(stats.map((s) => s.index)).toEqual([0, 1, 2]);
      expect(stats[0].thread).toBeUndefined();
      const [t1, t2] = [stats[1].thread!, stats[2].thread!];
      expect(t1.tid).not.toBe(process.pid);
      expect(t2.tid).not.toBe(process.pid);
      expect(t1.tid).not.toBe(t2.tid);
      expect(t1.servedHere).toBeGreaterThanOrEqual(201); // 200 GETATTRs and the READ
      expect(t2.servedHere).toBeGreaterThanOrEqual(201); // 200 GETATTRs and the WRITE
      expect(t1.forwarded).toBeGreaterThanOrEqual(2); // INIT, OPEN (and the READ of a released handle)
      expect(t2.forwarded).toBeGreaterThanOrEqual(2); // LOOKUP, RELEASE
      // The inspector shows who serves each ring, and where.
      const views = new Sampler({ getDevices: () => r.devices }).sample().queues.sort((a, b) => a.index - b.index);
      expect(views.map((q) => [q.index, q.thread.main, q.thread.tid])).toEqual([
        [0, true, process.pid],
        [1, false, t1.tid],
        [2, false, t2.tid],
      ]);
      for (const q of views) expect(q.thread.cpu).toBeGreaterThanOrEqual(0);
      expect(views[1].thread.servedHere).toBeGreaterThanOrEqual(201);
      await fe.close();
      expect(r.errors).toEqual([]);
    } finally {
      await r.stop();
    }
  });

  test('FORGET on hiprio racing LOOKUPs and GETATTRs on both queues, RELEASE on one racing WRITEs on the other: every count balances, no fd leaks or outlives its inode', async () => {
    const r = rig();
    try {
      const { fe, c } = await r.connect();
      const before = openFds();
      for (let round = 0; round < 30; round++) {
        const nodeid = await lookup(c, 'file', 1);
        const fh = await open(c, nodeid, 2, 2);
        const ops: Array<Promise<FuseReply | unknown>> = [];
        for (let i = 0; i < 40; i++) {
          ops.push(c.getattr(nodeid, 1 + (i % 2)));
          ops.push(write(c, nodeid, fh, BigInt(i), Buffer.from('w'), 1 + ((i + 1) % 2)));
        }
        // LOOKUPs on both queues (each a lookup the kernel will forget) against the FORGET of the first.
        const lookups: Array<Promise<FuseReply>> = [];
        for (let i = 0; i < 10; i++) lookups.push(c.request(FuseOpcode.FUSE_LOOKUP, 1n, [Buffer.from('file\0')], 16 + 128, 1 + (i % 2)));
        ops.splice(20, 0, release(c, nodeid, fh, 1), forget(c, nodeid, 1n));
        const replies = await Promise.all(ops);
        for (const x of replies) {
          if (x && typeof x === 'object' && 'error' in x) expect([0, EBADF]).toContain((x as FuseReply).error);
        }
        let found = 0n;
        for (const l of await Promise.all(lookups)) {
          expect(l.error).toBe(0);
          if (l.body.readBigUInt64LE(0) === nodeid) found++;
          else await forget(c, l.body.readBigUInt64LE(0), 1n); // the inode was forgotten first: a new nodeid
        }
        if (found > 0n) await forget(c, nodeid, found);
      }
      // Every inode forgotten and every handle released: their fds are closed, by whichever thread dropped the last pin.
      await new Promise((res) => setTimeout(res, 50));
      const share = r.share;
      const leaked = [...openFds()].filter(([fd, to]) => before.get(fd) !== to && to.startsWith(share));
      expect(leaked).toEqual([]);
      await fe.close();
      expect(r.errors).toEqual([]);
    } finally {
      await r.stop();
    }
  });

  test('a SETLKW waiting on the main thread stalls neither queue thread, and the ring stop cancels it', async () => {
    const r = rig();
    try {
      const { fe, c } = await r.connect();
      const nodeid = await lookup(c, 'file');
      expect((await c.setlk(nodeid, 1n, WHOLE, false)).error).toBe(0);
      const blocked = c.setlk(nodeid, 2n, WHOLE, true);
      for (const q of [1, 2]) for (let i = 0; i < 500; i++) expect((await c.getattr(nodeid, q)).error).toBe(0);
      // GET_VRING_BASE on queue 1: the waiting SETLKW is cancelled (EINTR), the ring's index comes back.
      const base = await fe.getVringBase(1);
      expect((await blocked).error).toBe(-4);
      expect(base).toBeGreaterThan(500);
      await fe.close();
    } finally {
      await r.stop();
    }
  });

  test('a daemon with queue threads does not offer migration (its threads write guest memory no dirty log sees)', async () => {
    const r = rig();
    try {
      const { fe, c } = await r.connect(true);
      expect(fe.protocolFeatures & bit(ProtocolFeature.LOG_SHMFD)).toBe(0n);
      expect(fe.protocolFeatures & bit(ProtocolFeature.DEVICE_STATE)).toBe(0n);
      expect(fe.protocolFeatures & bit(ProtocolFeature.MQ)).not.toBe(0n);
      expect((await c.getattr(1n, 2)).error).toBe(0);
      await fe.close();
    } finally {
      await r.stop();
    }
  });
});
