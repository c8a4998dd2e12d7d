// Live migration's dirty-page log (LOG_SHMFD, SET_LOG_BASE, VHOST_F_LOG_ALL, VHOST_VRING_F_LOG):
// through a real socket, a memfd bitmap the "front-end" reads, and the echo device writing replies.
import * as fs from 'fs';
import { SimulatedFrontend } from '../src/frontend/simulated-frontend';
import { memfdCreate } from '../src/sys/libc';
import { ProtocolFeature, Request, VHOST_F_LOG_ALL, bit, encodeLog, encodeU64, encodeVringAddr } from '../src/protocol/messages';
import { VHOST_LOG_PAGE } from '../src/memory/dirty-log';
import { startEcho, stopEcho, EchoServer } from './harness';

/** The bitmap as QEMU sees it: a memfd it maps and reads. */
class LogArea {
  readonly fd: number;
  constructor(readonly size: number) {
    this.fd = memfdCreate('dirty-log', 0);
    fs.ftruncateSync(this.fd, size);
  }
  bits(): Buffer {
    const b = Buffer.alloc(this.size);
    fs.readSync(this.fd, b, 0, this.size, 0);
    return b;
  }
  marked(gpa: number, b = this.bits()): boolean {
    const page = Math.floor(gpa / VHOST_LOG_PAGE);
    return (b[page >> 3] & (1 << (page & 7))) !== 0;
  }
  count(b = this.bits()): number {
    let n = 0;
    for (const x of b) for (let v = x; v; v &= v - 1) n++;
    return n;
  }
  clear(): void {
    fs.writeSync(this.fd, Buffer.alloc(this.size), 0, this.size, 0);
  }
  close(): void {
    fs.closeSync(this.fd);
  }
}

/** Covers both regions of the simulated RAM (the second one starts at 4 GiB). */
const LOG_BYTES = (0x1_0000_0000 + (64 << 20)) / VHOST_LOG_PAGE / 8;

describe('dirty-page log for live migration', () => {
  let e: EchoServer;
  let log: LogArea;
  beforeEach(() => {
    e = startEcho();
    log = new LogArea(LOG_BYTES);
  });
  afterEach(async () => {
    log.close();
    await stopEcho(e);
  });

  async function logged(fe: SimulatedFrontend, opts: { logRing: boolean }): Promise<void> {
    const reply = await fe.request(Request.SET_LOG_BASE, encodeLog({ mmap_size: BigInt(LOG_BYTES), mmap_offset: 0n }), { fds: [log.fd], reply: true });
    expect(reply!.length).toBe(8);
    await fe.checked(Request.SET_FEATURES, encodeU64(fe.ackedFeatures | bit(VHOST_F_LOG_ALL)));
    if (opts.logRing) {
      const q = fe.queues[0];
      const a = q.addresses;
      await fe.checked(
        Request.SET_VRING_ADDR,
        encodeVringAddr({ index: 0, flags: 1, desc_user_addr: BigInt(a.desc), used_user_addr: BigInt(a.used), avail_user_addr: BigInt(a.avail), log_guest_addr: BigInt(q.usedGpa) }),
      );
    }
  }

  test('the back-end offers LOG_SHMFD and VHOST_F_LOG_ALL', async () => {
    const fe = await SimulatedFrontend.connect(e.socketPath);
    await fe.negotiate({ numQueues: 1, migration: true });
    expect(fe.protocolFeatures & bit(ProtocolFeature.LOG_SHMFD)).toBeTruthy();
    expect(fe.backendFeatures & bit(VHOST_F_LOG_ALL)).toBeTruthy();
    fe.close();
  });

  test('while logging, the pages of every reply and of the used ring are marked, and only those', async () => {
    const fe = await SimulatedFrontend.connect(e.socketPath);
    await fe.negotiate({ numQueues: 1, migration: true });
    await logged(fe, { logRing: true });
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => fe.submit(0, [Buffer.alloc(3000 + i * 200, i)], [1000, 9000])));
    const bits = log.bits();
    const expected = new Set<number>();
    for (const r of results) {
      let left = r.len;
      for (const w of r.writable) {
        const n = Math.min(left, w.len);
        for (let a = w.addr; a < w.addr + n; a += VHOST_LOG_PAGE) expected.add(Math.floor(a / VHOST_LOG_PAGE));
        if (n > 0) expected.add(Math.floor((w.addr + n - 1) / VHOST_LOG_PAGE));
        left -= n;
      }
    }
    for (const page of expected) expect(log.marked(page * VHOST_LOG_PAGE, bits)).toBe(true);
    const used = fe.queues[0].usedGpa;
    expect(log.marked(used, bits)).toBe(true);
    // Nothing else: the echo device writes only replies, and the used ring is 2 pages at most here.
    expect(log.count(bits)).toBeGreaterThanOrEqual(expected.size);
    expect(log.count(bits)).toBeLessThanOrEqual(expected.size + 2);
    fe.close();
  });

  test('without VHOST_F_LOG_ALL nothing is marked; after it is turned off again, nothing more', async () => {
    const fe = await SimulatedFrontend.connect(e.socketPath);
    await fe.negotiate({ numQueues: 1, migration: true });
    const reply = await fe.request(Request.SET_LOG_BASE, encodeLog({ mmap_size: BigInt(LOG_BYTES), mmap_offset: 0n }), { fds: [log.fd], reply: true });
    expect(reply).not.toBeNull();
    await Promise.all(Array.from({ length: 20 }, (_, i) => fe.submit(0, [Buffer.alloc(100, i)], [100])));
    expect(log.count()).toBe(0);
    await logged(fe, { logRing: false });
    const r = await fe.submit(0, [Buffer.alloc(100, 7)], [100]);
    expect(log.marked(r.writable[0].addr)).toBe(true);
    // The ring was not asked to be logged: only the data page.
    expect(log.count()).toBe(1);
    log.clear();
    await fe.checked(Request.SET_FEATURES, encodeU64(fe.ackedFeatures));
    await Promise.all(Array.from({ length: 20 }, (_, i) => fe.submit(0, [Buffer.alloc(100, i)], [100])));
    expect(log.count()).toBe(0);
    fe.close();
  });

  test('a log SET_LOG_BASE cannot map drops the connection (migrating without a log would lose writes)', async () => {
    const fe = await SimulatedFrontend.connect(e.socketPath);
    await fe.negotiate({ numQueues: 1, migration: true });
    fe.request(Request.SET_LOG_BASE, encodeLog({ mmap_size: 0n, mmap_offset: 0n }), { fds: [log.fd] }).catch(() => undefined);
    await fe.closed;
    expect(e.log.lines.some((l) => /SET_LOG_BASE: cannot map the dirty log/.test(l))).toBe(true);
  });

  test('a log larger than its fd is refused before it is mapped (a mark past the end would be SIGBUS)', async () => {
    const fe = await SimulatedFrontend.connect(e.socketPath);
    await fe.negotiate({ numQueues: 1, migration: true });
    fe.request(Request.SET_LOG_BASE, encodeLog({ mmap_size: BigInt(LOG_BYTES), mmap_offset: BigInt(LOG_BYTES) }), { fds: [log.fd] }).catch(() => undefined);
    await fe.closed;
    expect(e.log.lines.some((l) => /SET_LOG_BASE: cannot map the dirty log .*: dirty log fd is \d+ bytes, the log needs \d+/.test(l))).toBe(true);
  });

  test('SET_LOG_BASE without LOG_SHMFD is refused', async () => {
    const fe = await SimulatedFrontend.connect(e.socketPath);
    await fe.negotiate({ numQueues: 1 });
    const ack = await fe.requestAck(Request.SET_LOG_BASE, encodeLog({ mmap_size: BigInt(LOG_BYTES), mmap_offset: 0n }), [log.fd]);
    expect(ack).not.toBe(0n);
    expect((await fe.submit(0, [Buffer.from('ok')], [16])).len).toBe(2);
    fe.close();
  });
});
