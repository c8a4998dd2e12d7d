// A guest's malformed requests are counted by kind and logged at debug; above debug a flood writes a
// line or two, not one per request, and the daemon goes on answering.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Logger, Server, serve, VIRTQ_DESC_F_NEXT } from '@vfsd/vhost';
import { SimulatedFrontend } from '@vfsd/vhost/testing';
import { EINVAL, ENOSYS, FuseOpcode, GuestFaults, VirtioFsDevice } from '../src';
import { FuseClient } from '../src/testing/fuse-client';
import { MemoryFs } from './memory-fs';

interface LogLines extends Logger {
  /** Lines above debug, as `level: message`. */
  loud: string[];
  debugCount: number;
}

function logLines(): LogLines {
  const l: LogLines = {
    loud: [],
    debugCount: 0,
    error: (m) => l.loud.push(`error: ${m}`),
    warn: (m) => l.loud.push(`warn: ${m}`),
    info: (m) => l.loud.push(`info: ${m}`),
    debug: () => void l.debugCount++,
  };
  return l;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('GuestFaults', () => {
  test('the first fault is told at once, the rest of the interval in one summary line; close() tells what is left', async () => {
    const log = logLines();
    const faults = new GuestFaults(log, 100);
    faults.record('unknown opcode', 'queue 1 head 0: unknown opcode');
    for (let i = 0; i < 40; i++) faults.record('bad arguments', `queue 1 head ${i}: LOOKUP: name is not NUL-terminated`);
    faults.record('bad chain', 'queue 1: descriptor chain at head 3: loop');
    expect(log.loud).toEqual([expect.stringMatching(/^warn: guest fault \(unknown opcode\): queue 1 head 0: unknown opcode; more are counted, and summarised at most every 0.1 s$/)]);
    expect(log.debugCount).toBe(42);
    await sleep(180);
    expect(log.loud).toHaveLength(2);
    expect(log.loud[1]).toMatch(/^warn: guest faults: and 41 more in the last 1 s \(bad arguments 40, bad chain 1\); the last: queue 1: descriptor chain at head 3: loop$/);
    // A quiet interval closes the window: the next fault is told at once again.
    await sleep(150);
    faults.record('short header', 'a');
    faults.record('short header', 'b');
    expect(log.loud).toHaveLength(3);
    expect(log.loud[2]).toMatch(/guest fault \(short header\): a;/);
    faults.close();
    expect(log.loud[3]).toMatch(/and 1 more .*\(short header 1\); the last: b$/);
    expect(faults.total).toBe(44);
    expect(faults.counts).toEqual({ 'short header': 2, 'bad header': 0, 'unknown opcode': 1, 'bad arguments': 40, 'bad chain': 1, 'broken ring': 0 });
  });
});

describe('a flood of malformed requests', () => {
  let server: Server;
  let dir: string;
  let log: LogLines;
  const devices: VirtioFsDevice[] = [];
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vfsd-faults-'));
    log = logLines();
    server = serve({
      socketPath: path.join(dir, 'vhost.sock'),
      logger: log,
      createDevice: () => {
        const d = new VirtioFsDevice({ fs: new MemoryFs(), requestQueues: 1, logger: log });
        devices.push(d);
        return d;
      },
    });
  });
  afterEach(async () => {
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('3,000 malformed requests: counted by kind, at most a few lines above debug, the next valid request answered', async () => {
    const fe = await SimulatedFrontend.connect(path.join(dir, 'vhost.sock'));
    await fe.negotiate({ numQueues: 2, queueSize: 128 });
    const c = new FuseClient(fe, 1);
    expect((await c.init()).error).toBe(0);
    const before = log.loud.length;
    // Five kinds, 600 each: the unique of each must come back with its errno.
    const makers: Array<(u: bigint) => { bytes: Buffer; errno: number }> = [
      (u) => ({ bytes: c.encode(FuseOpcode.FUSE_LOOKUP, 1n, [Buffer.from('no-nul')], u), errno: EINVAL }),
      (u) => ({ bytes: c.encode(9999, 1n, [], u), errno: ENOSYS }),
      (u) => ({ bytes: c.encode(FuseOpcode.FUSE_GETATTR, 1n, [Buffer.alloc(3)], u), errno: EINVAL }),
      (u) => ({ bytes: c.encode(FuseOpcode.FUSE_STATFS, 1n, [], u).subarray(0, 24), errno: EINVAL }),
      (u) => {
        const b = c.encode(FuseOpcode.FUSE_STATFS, 1n, [], u);
        b.writeUInt32LE(41, 0); // len says one byte more than came
        return { bytes: b, errno: EINVAL };
      },
    ];
    const replies = await Promise.all(
      Array.from({ length: 3000 }, (_, i) => {
        const unique = BigInt(1_000_000 + i);
        const { bytes, errno } = makers[i % makers.length](unique);
        return c.raw(bytes, 16).then((r) => r.unique === unique && r.error === -errno);
      }),
    );
    expect(replies.filter((ok) => !ok)).toHaveLength(0);
    // A few bad chains too: returned with nothing written, counted.
    const q = fe.queues[1];
    const at = fe.ram.alloc(64);
    for (let i = 0; i < 20; i++) {
      q.writeRaw(0, { addr: fe.ram.gpa(at), len: 16, flags: VIRTQ_DESC_F_NEXT, next: 0 });
      expect((await fe.publishRaw(1, 0, [0])).len).toBe(0);
    }
    expect((await c.getattr(1n)).error).toBe(0);
    const loud = log.loud.slice(before);
    expect(loud.length).toBeLessThanOrEqual(5);
    expect(loud[0]).toMatch(/^warn: guest fault \(bad arguments\): queue 1 head \d+: FUSE_LOOKUP: name is not NUL-terminated; more are counted/);
    expect(loud.filter((l) => l.startsWith('error'))).toEqual([]);
    expect(devices[0].guestFaults).toEqual({
      total: 3020,
      byKind: { 'short header': 600, 'bad header': 600, 'unknown opcode': 600, 'bad arguments': 1200, 'bad chain': 20, 'broken ring': 0 },
    });
    expect(log.debugCount).toBeGreaterThanOrEqual(3020);
    // When the front-end leaves, what was not summarised yet is, in one line.
    fe.close();
    const deadline = Date.now() + 5000;
    while (!log.loud.some((l) => /guest faults: and 3019 more/.test(l)) && Date.now() < deadline) await sleep(5);
    expect(log.loud.filter((l) => /guest faults: and 3019 more in the last \d+ s \(short header 600, bad header 600, unknown opcode 600, bad arguments 1199, bad chain 20\)/.test(l))).toHaveLength(1);
  });
});
