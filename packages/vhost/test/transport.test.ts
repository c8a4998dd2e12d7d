import { SimulatedFrontend } from '../src/frontend/simulated-frontend';
import { Request, VIRTIO_F_VERSION_1, VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC, bit } from '../src/protocol/messages';
import { startEcho, stopEcho, until, EchoServer } from './harness';

function payload(i: number, size = 40): Buffer {
  const b = Buffer.alloc(size);
  b.writeUInt32LE(i, 0);
  b.fill(i & 0xff, 4);
  return b;
}

describe('vhost-user transport with an echo device', () => {
  let e: EchoServer;
  beforeEach(() => {
    e = startEcho();
  });
  afterEach(async () => {
    await stopEcho(e);
  });

  test('handshake offers version 1, indirect and event idx, and answers GET_QUEUE_NUM', async () => {
    const fe = await SimulatedFrontend.connect(e.socketPath);
    await fe.negotiate({ numQueues: 2, queueSize: 64 });
    for (const f of [VIRTIO_F_VERSION_1, VIRTIO_RING_F_INDIRECT_DESC, VIRTIO_RING_F_EVENT_IDX]) expect(fe.backendFeatures & bit(f)).toBeTruthy();
    expect(await fe.getU64(Request.GET_QUEUE_NUM)).toBe(2n);
    expect(await fe.getU64(Request.GET_MAX_MEM_SLOTS)).toBe(32n);
    const r = await fe.submit(1, [Buffer.from('hello, device')], [64]);
    expect(r.len).toBe(13);
    expect(r.data.toString()).toBe('hello, device');
    fe.close();
  });

  test.each([4, 8, 256, 1024, 32768])('queue size %i', async (size) => {
    const fe = await SimulatedFrontend.connect(e.socketPath, 32 << 20);
    await fe.negotiate({ numQueues: 1, queueSize: size, indirect: false });
    const n = Math.min(size * 2, 2000);
    const results = await Promise.all(Array.from({ length: n }, (_, i) => fe.submit(0, [payload(i)], [16, 48])));
    results.forEach((r, i) => {
      expect(r.len).toBe(40);
      expect(r.data.readUInt32LE(0)).toBe(i);
    });
    fe.close();
  });

  test.each([
    { eventIdx: true, indirect: true },
    { eventIdx: false, indirect: true },
    { eventIdx: true, indirect: false },
    { eventIdx: false, indirect: false },
  ])('index wrap-around past 65535 (%o)', async (opts) => {
    const fe = await SimulatedFrontend.connect(e.socketPath);
    await fe.negotiate({ numQueues: 1, queueSize: 16, base: 65536 - 40, ...opts });
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => fe.submit(0, [payload(i)], [40])));
    results.forEach((r, i) => expect(r.data.readUInt32LE(0)).toBe(i));
    expect(fe.queues[0].availIdx).toBe((65536 - 40 + 100) & 0xffff);
    expect(e.backends[0].queues[0].usedIdx).toBe(60);
    fe.close();
  });

  test('indirect chains with many segments, split in and out', async () => {
    const fe = await SimulatedFrontend.connect(e.socketPath);
    await fe.negotiate({ numQueues: 1, queueSize: 8, indirect: true });
    const parts = Array.from({ length: 20 }, (_, i) => Buffer.alloc(7, 65 + i));
    const r = await fe.submit(0, parts, Array(20).fill(7), { indirect: true });
    expect(r.len).toBe(140);
    expect(r.data).toEqual(Buffer.concat(parts));
    // 20 segments would not fit a queue of 8 without an indirect table.
    expect(fe.queues[0].freeDescriptors).toBe(8);
    fe.close();
  });

  test('EVENT_IDX suppresses notifications and kicks under load', async () => {
    const fe = await SimulatedFrontend.connect(e.socketPath);
    await fe.negotiate({ numQueues: 1, queueSize: 256, eventIdx: true });
    await Promise.all(Array.from({ length: 2000 }, (_, i) => fe.submit(0, [payload(i)], [40])));
    const vq = e.backends[0].queues[0];
    // Batches of up to 256 at a time: far fewer kicks and calls than requests.
    expect(fe.kicksSent).toBeLessThan(500);
    expect(vq.notifications).toBeLessThan(500);
    expect(vq.notifications).toBeGreaterThan(0);
    fe.close();
  });

  test('10,000 requests with 64 in flight on two queues, completed out of order', async () => {
    await stopEcho(e);
    e = startEcho({ deferred: true });
    const fe = await SimulatedFrontend.connect(e.socketPath);
    await fe.negotiate({ numQueues: 2, queueSize: 128 });
    let next = 0;
    let done = 0;
    const outOfOrder = { seen: 0 };
    let lastCompleted = -1;
    const worker = async (q: number): Promise<void> => {
      while (next < 10_000) {
        const i = next++;
        const r = await fe.submit(q, [payload(i, 64)], [64]);
        expect(r.data.readUInt32LE(0)).toBe(i);
        if (i < lastCompleted) outOfOrder.seen++;
        lastCompleted = i;
        done++;
      }
    };
    await Promise.all(Array.from({ length: 64 }, (_, k) => worker(k % 2)));
    expect(done).toBe(10_000);
    expect(outOfOrder.seen).toBeGreaterThan(0);
    expect(e.devices[0].completed).toBe(10_000);
    expect(e.backends[0].queues.every((q) => q.inFlight === 0)).toBe(true);
    fe.close();
  });

  test('GET_VRING_BASE stops the ring and reports the next index', async () => {
    const fe = await SimulatedFrontend.connect(e.socketPath);
    await fe.negotiate({ numQueues: 1, queueSize: 16 });
    await Promise.all(Array.from({ length: 21 }, (_, i) => fe.submit(0, [payload(i)], [40])));
    expect(await fe.getVringBase(0)).toBe(21);
    fe.close();
  });

  test('reconnect after the front-end disconnects mid-flight', async () => {
    await stopEcho(e);
    e = startEcho({ deferred: true, reconnect: true });
    const fe = await SimulatedFrontend.connect(e.socketPath);
    await fe.negotiate({ numQueues: 1, queueSize: 64 });
    const inflight = Array.from({ length: 50 }, (_, i) => fe.submit(0, [payload(i)], [40]).catch((err: Error) => err));
    fe.close(); // before the deferred completions run
    const outcomes = await Promise.all(inflight);
    expect(outcomes.some((o) => o instanceof Error)).toBe(true);
    await e.backends[0].finished;
    const fe2 = await SimulatedFrontend.connect(e.socketPath);
    await fe2.negotiate({ numQueues: 1, queueSize: 64 });
    const r = await fe2.submit(0, [Buffer.from('after reconnect')], [64]);
    expect(r.data.toString()).toBe('after reconnect');
    expect(e.backends).toHaveLength(2);
    fe2.close();
    await until(() => e.server.current === null);
  });
});

describe('listener lifecycle', () => {
  test('without reconnect, the server stops when its front-end leaves, removing the socket', async () => {
    const e = startEcho({ reconnect: false });
    const fe = await SimulatedFrontend.connect(e.socketPath);
    await fe.negotiate({ numQueues: 1 });
    fe.close();
    await e.server.done;
    const fs = await import('fs');
    expect(fs.existsSync(e.socketPath)).toBe(false);
    await stopEcho(e);
  });

  test('a second daemon on a live socket path is refused; a stale socket file is replaced', async () => {
    const e = startEcho();
    expect(() => startEchoAt(e.socketPath)).toThrow(/already served/);
    await e.server.stop();
    const net = await import('net');
    // Leave a stale socket file behind: bound, then the process "died" without unlinking.
    const stale = net.createServer().listen(e.socketPath);
    await new Promise((r) => stale.once('listening', r));
    const fs = await import('fs');
    // Closing a net server unlinks its path; copy the inode by re-binding through a hard link.
    fs.linkSync(e.socketPath, e.socketPath + '.keep');
    await new Promise((r) => stale.close(r));
    fs.renameSync(e.socketPath + '.keep', e.socketPath);
    const again = startEchoAt(e.socketPath);
    const fe = await SimulatedFrontend.connect(e.socketPath);
    await fe.negotiate({ numQueues: 1 });
    expect((await fe.submit(0, [Buffer.from('x')], [1])).len).toBe(1);
    fe.close();
    await again.stop();
    fs.rmSync(e.dir, { recursive: true, force: true });
  });
});

import { serve } from '../src/backend/serve';
import { EchoDevice } from '../src/devices/echo-device';
import { silentLogger } from '../src/backend/device';
function startEchoAt(socketPath: string) {
  return serve({ socketPath, reconnect: true, logger: silentLogger, createDevice: () => new EchoDevice({ logger: silentLogger }) });
}
