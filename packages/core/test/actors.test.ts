// The actor core over the simulated front-end and an in-memory filesystem: a blocked request never
// stalls the others, rings stop only when their requests settle, nothing leaks.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Logger, Server, serve } from '@vfsd/vhost';
import { SimulatedFrontend } from '@vfsd/vhost/testing';
import { EINTR, EINVAL, ENOENT, ENOSYS, FuseOpcode, Inspection, VirtioFsDevice, fuse_entry_out, fuse_init_out, fuse_lk_out } from '../src';
import { MemoryFs, F_WRLCK, F_UNLCK } from './memory-fs';
import { FuseClient } from '../src/testing/fuse-client';
import { waitFor } from '../src/testing/wait-for';

const WHOLE = { start: 0n, end: 0x7fffffffffffffffn, type: F_WRLCK, pid: 1 };

interface Rig {
  server: Server;
  sock: string;
  dir: string;
  memfs: MemoryFs;
  devices: VirtioFsDevice[];
  errors: string[];
}

function startRig(inspection?: Inspection): Rig {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vfsd-core-'));
  const sock = path.join(dir, 'vhost.sock');
  const errors: string[] = [];
  const logger: Logger = { error: (m) => errors.push(m), warn: () => undefined, info: () => undefined, debug: () => undefined };
  const memfs = new MemoryFs();
  const devices: VirtioFsDevice[] = [];
  const server = serve({
    socketPath: sock,
    reconnect: true,
    logger,
    createDevice: () => {
      const d = new VirtioFsDevice({ fs: memfs, requestQueues: 2, logger, inspection });
      devices.push(d);
      return d;
    },
  });
  return { server, sock, dir, memfs, devices, errors };
}

async function connect(rig: Rig): Promise<{ fe: SimulatedFrontend; c: FuseClient }> {
  const fe = await SimulatedFrontend.connect(rig.sock);
  await fe.negotiate({ numQueues: 3, queueSize: 128 });
  const c = new FuseClient(fe, 1);
  const init = await c.init();
  expect(init.error).toBe(0);
  return { fe, c };
}

async function stopRig(rig: Rig): Promise<void> {
  await rig.server.stop();
  fs.rmSync(rig.dir, { recursive: true, force: true });
}

/** Polls `cond` until it holds (fails the test with `what` after 5 s): no fixed sleeps. */
describe('actor core', () => {
  let rig: Rig;
  beforeEach(() => {
    rig = startRig();
  });
  afterEach(async () => {
    await stopRig(rig);
  });

  test('INIT, LOOKUP and GETATTR round trips; errors come back as errno replies', async () => {
    const { fe, c } = await connect(rig);
    const init = await c.init();
    expect(fuse_init_out.decode(init.body).major).toBe(7);
    const l = await c.lookup(1n, 'a');
    expect(l.error).toBe(0);
    expect(fuse_entry_out.decode(l.body).nodeid).toBe(2n);
    expect((await c.lookup(1n, 'nope')).error).toBe(-ENOENT);
    const g = await c.getattr(2n);
    expect(g.error).toBe(0);
    // A truncated request: EINVAL with its unique; an unknown opcode: ENOSYS.
    const bad = c.encode(FuseOpcode.FUSE_GETATTR, 2n, [Buffer.alloc(4)], 77n);
    const r = await c.raw(bad, 16);
    expect(r.error).toBe(-EINVAL);
    expect(r.unique).toBe(77n);
    expect((await c.request(4000, 1n, [], 16)).error).toBe(-ENOSYS);
    // Shorter than fuse_in_header: answered with its own unique while that is readable (16 bytes),
    // else given back with nothing written (a reply with unique 0 matches nothing in the driver).
    const header = c.encode(FuseOpcode.FUSE_GETATTR, 2n, [], 4242n);
    const short = await c.raw(header.subarray(0, 16), 16);
    expect(short).toMatchObject({ error: -EINVAL, unique: 4242n });
    expect((await fe.submit(1, [header.subarray(0, 12)], [16])).len).toBe(0);
    expect((await fe.submit(1, [], [16])).len).toBe(0);
    expect((await c.getattr(2n)).error).toBe(0);
    expect(rig.devices[0].liveRequests).toBe(0);
    fe.close();
  });

  test('one SETLKW blocked while 10,000 GETATTRs on the same queue complete; releasing the lock completes it', async () => {
    const { fe, c } = await connect(rig);
    expect((await c.setlk(2n, 1n, WHOLE, false)).error).toBe(0);
    let settled = false;
    const blocked = c.setlk(2n, 2n, WHOLE, true).then((r) => {
      settled = true;
      return r;
    });
    await waitFor(() => rig.memfs.waitingLocks === 1, 'the SETLKW to wait');
    // GETLK from the waiter reports the holder.
    const lk = await c.getlk(2n, 2n, WHOLE);
    expect(fuse_lk_out.decode(lk.body).lk.type).toBe(F_WRLCK);
    let done = 0;
    let next = 0;
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (next < 10_000) {
          next++;
          const r = await c.getattr(1n);
          expect(r.error).toBe(0);
          done++;
        }
      }),
    );
    expect(done).toBe(10_000);
    expect(settled).toBe(false);
    expect((await c.setlk(2n, 1n, { ...WHOLE, type: F_UNLCK }, false)).error).toBe(0);
    expect((await blocked).error).toBe(0);
    await waitFor(() => rig.devices[0].liveRequests === 0, 'every request actor to end');
    fe.close();
  });

  test('FUSE_INTERRUPT cancels a waiting SETLKW with EINTR', async () => {
    const { fe, c } = await connect(rig);
    await c.setlk(2n, 1n, WHOLE, false);
    const blocked = c.setlk(2n, 2n, WHOLE, true, 999n);
    await waitFor(() => rig.memfs.waitingLocks === 1, 'the SETLKW to wait');
    await c.interrupt(999n);
    const r = await blocked;
    expect(r.error).toBe(-EINTR);
    expect(r.unique).toBe(999n);
    expect(rig.memfs.waitingLocks).toBe(0);
    fe.close();
  });

  test('two request queues run in parallel; GET_VRING_BASE waits for requests in flight', async () => {
    const { fe, c } = await connect(rig);
    const results = await Promise.all(Array.from({ length: 2000 }, (_, i) => c.getattr(1n, 1 + (i % 2))));
    expect(results.every((r) => r.error === 0)).toBe(true);
    const vqs = rig.server.current!.queues;
    expect(vqs[1].usedIdx).toBe(1000 + 1); // + INIT
    expect(vqs[2].usedIdx).toBe(1000);
    // A request waiting on a lock when the ring stops is answered EINTR; slow requests in flight
    // finish; only then does the ring report its base.
    await c.setlk(2n, 1n, WHOLE, false);
    const blocked = c.setlk(2n, 2n, WHOLE, true);
    rig.memfs.getattrDelayMs = 100;
    let finished = 0;
    const inflight = Array.from({ length: 50 }, () => c.getattr(1n).then((r) => (finished++, r)));
    await waitFor(() => vqs[1].inFlight === 51, 'the SETLKW and 50 slow GETATTRs to be in flight');
    const base = await fe.getVringBase(1);
    expect(finished).toBe(50);
    expect((await blocked).error).toBe(-EINTR);
    expect((await Promise.all(inflight)).every((r) => r.error === 0)).toBe(true);
    expect(base).toBe(1 + 1000 + 2 + 50); // INIT, 1000 getattrs, setlk, setlkw, 50 getattrs
    expect(rig.devices[0].liveRequests).toBe(0);
    fe.close();
  });

  test('a disconnect while SETLKW waits cancels it, and the next connection is served', async () => {
    const first = await connect(rig);
    await first.c.setlk(2n, 1n, WHOLE, false);
    void first.c.setlk(2n, 2n, WHOLE, true).catch(() => undefined);
    await waitFor(() => rig.memfs.waitingLocks === 1, 'the SETLKW to wait');
    first.fe.close();
    await waitFor(() => rig.memfs.shutdowns === 1, 'the filesystem to release the session');
    expect(rig.memfs.waitingLocks).toBe(0);
    expect(rig.memfs.shutdowns).toBe(1);
    expect(rig.devices[0].liveRequests).toBe(0);
    expect(rig.devices[0].actor.getSnapshot().value).toBe('stopped');
    const second = await connect(rig);
    expect((await second.c.getattr(1n)).error).toBe(0);
    second.fe.close();
  });
});

test('inspection sees the device, queue and request actors when subscribed', async () => {
  const inspection = new Inspection();
  const seen = new Set<string>();
  const unsubscribe = inspection.subscribe((ev) => {
    if (ev.type === '@xstate.snapshot') {
      const snap = ev.snapshot as { value?: unknown; context?: { phase?: string } };
      if (snap.context?.phase) seen.add(`request:${snap.context.phase}`);
      else if (typeof snap.value === 'string') seen.add(`state:${snap.value}`);
    }
  });
  const rig = startRig(inspection);
  const { fe, c } = await connect(rig);
  await c.getattr(1n);
  fe.close();
  await waitFor(() => seen.has('state:stopped'), 'the device to stop');
  unsubscribe();
  await stopRig(rig);
  for (const s of ['state:running', 'state:waitingForKick', 'request:awaitingFs', 'request:writingReply', 'request:finished', 'state:stopped']) expect([...seen]).toContain(s);
});
