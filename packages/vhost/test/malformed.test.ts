// Bad input: each case gets a clear error, no crash, no hang, and later valid traffic still works.
import { SimulatedFrontend } from '../src/frontend/simulated-frontend';
import { FLAG_NEED_REPLY, FLAG_VERSION, Request, encodeMemoryTable, encodeU64 } from '../src/protocol/messages';
import { VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from '../src/virtqueue/ring-layout';
import { createEventFd } from '../src/sys/eventfd';
import * as fs from 'fs';
import { EchoServer, startEcho, stopEcho, until } from './harness';

function header(request: number, flags: number, size: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt32LE(request, 0);
  b.writeUInt32LE(flags, 4);
  b.writeUInt32LE(size, 8);
  return b;
}

async function echoWorks(fe: SimulatedFrontend, q = 0): Promise<void> {
  const r = await fe.submit(q, [Buffer.from('still alive')], [32]);
  expect(r.data.toString()).toBe('still alive');
}

async function freshSessionWorks(e: EchoServer): Promise<void> {
  const fe = await SimulatedFrontend.connect(e.socketPath);
  await fe.negotiate({ numQueues: 2, queueSize: 16 });
  await echoWorks(fe);
  fe.close();
}

describe('malformed vhost-user messages', () => {
  let e: EchoServer;
  beforeEach(() => {
    e = startEcho({ reconnect: true });
  });
  afterEach(async () => {
    await stopEcho(e);
  });

  test('a payload size beyond the limit drops the connection; the next front-end is served', async () => {
    const fe = await SimulatedFrontend.connect(e.socketPath);
    fe.sendRaw(header(Request.SET_FEATURES, FLAG_VERSION, 1 << 20));
    await fe.closed;
    expect(e.log.lines.join('\n')).toMatch(/malformed message: payload size 1048576 exceeds 4096/);
    fe.close();
    await freshSessionWorks(e);
  });

  test('a known request with the wrong payload size drops the connection', async () => {
    const fe = await SimulatedFrontend.connect(e.socketPath);
    await fe.negotiate({ numQueues: 1 });
    fe.sendRaw(Buffer.concat([header(Request.SET_FEATURES, FLAG_VERSION, 4), Buffer.alloc(4)]));
    await fe.closed;
    expect(e.log.lines.join('\n')).toMatch(/SET_FEATURES: payload of 4 bytes, expected 8; dropping the connection/);
    fe.close();
    await freshSessionWorks(e);
  });

  test('a bad version in the flags drops the connection', async () => {
    const fe = await SimulatedFrontend.connect(e.socketPath);
    fe.sendRaw(header(Request.GET_FEATURES, 0x2, 0));
    await fe.closed;
    expect(e.log.lines.join('\n')).toMatch(/bad version/);
    fe.close();
    await freshSessionWorks(e);
  });

  test('a message cut short by a disconnect is reported, and the next front-end is served', async () => {
    const fe = await SimulatedFrontend.connect(e.socketPath);
    fe.sendRaw(Buffer.concat([header(Request.SET_FEATURES, FLAG_VERSION, 8), Buffer.alloc(3)]));
    await until(() => e.backends.length > 0);
    fe.close();
    await e.backends[0].finished;
    expect(e.log.lines.join('\n')).toMatch(/end of stream inside a message/);
    await freshSessionWorks(e);
  });

  test('an unknown request is refused with a failure ack; the session goes on', async () => {
    const fe = await SimulatedFrontend.connect(e.socketPath);
    await fe.negotiate({ numQueues: 1 });
    expect(await fe.requestAck(99, Buffer.alloc(16))).not.toBe(0n);
    expect(await fe.requestAck(Request.SET_LOG_BASE, Buffer.alloc(16))).not.toBe(0n);
    expect(e.log.lines.join('\n')).toMatch(/unsupported request UNKNOWN\(99\)/);
    await echoWorks(fe);
    fe.close();
  });

  test('missing fds: SET_MEM_TABLE and SET_VRING_KICK without their fds fail cleanly', async () => {
    const fe = await SimulatedFrontend.connect(e.socketPath);
    await fe.negotiate({ numQueues: 1 });
    const table = encodeMemoryTable(fe.ram.regions.map((r) => r.desc));
    expect(await fe.requestAck(Request.SET_MEM_TABLE, table, [])).not.toBe(0n);
    expect(await fe.requestAck(Request.SET_VRING_KICK, encodeU64(0n), [])).not.toBe(0n);
    expect(e.log.lines.join('\n')).toMatch(/memory table has 2 regions but 0 fds/);
    expect(e.log.lines.join('\n')).toMatch(/queue 0: 0 fds without the no-fd flag/);
    await echoWorks(fe); // the old table and kick fd are still in place
    fe.close();
  });

  test('a memory region larger than its memfd is refused', async () => {
    const fe = await SimulatedFrontend.connect(e.socketPath);
    await fe.negotiate({ numQueues: 1 });
    const small = fs.openSync('/dev/null', 'r');
    const d = fe.ram.regions[0].desc;
    const efd = createEventFd(); // not a memory file at all
    expect(await fe.requestAck(Request.SET_MEM_TABLE, encodeMemoryTable([{ ...d, memory_size: 1n << 40n }]), [fe.ram.fd])).not.toBe(0n);
    expect(await fe.requestAck(Request.SET_MEM_TABLE, encodeMemoryTable([d]), [efd])).not.toBe(0n);
    fs.closeSync(small);
    fs.closeSync(efd);
    expect(e.log.lines.join('\n')).toMatch(/cannot map guest memory/);
    await echoWorks(fe);
    fe.close();
  });

  test('an out-of-range queue index is refused', async () => {
    const fe = await SimulatedFrontend.connect(e.socketPath);
    await fe.negotiate({ numQueues: 1 });
    expect(await fe.requestAck(Request.SET_VRING_NUM, Buffer.from([7, 0, 0, 0, 16, 0, 0, 0]))).not.toBe(0n);
    expect(await fe.requestAck(Request.SET_VRING_NUM, Buffer.from([0, 0, 0, 0, 3, 0, 0, 0]))).not.toBe(0n);
    expect(e.log.lines.join('\n')).toMatch(/queue index 7 out of range/);
    await echoWorks(fe);
    fe.close();
  });
});

describe('malformed descriptor chains', () => {
  let e: EchoServer;
  let fe: SimulatedFrontend;
  beforeEach(async () => {
    e = startEcho({ reconnect: true });
    fe = await SimulatedFrontend.connect(e.socketPath);
    await fe.negotiate({ numQueues: 2, queueSize: 16 });
  });
  afterEach(async () => {
    fe.close();
    await stopEcho(e);
  });

  const cases: { name: string; descs: { addr?: number; len: number; flags: number; next: number }[]; error: RegExp }[] = [
    { name: 'buffer outside guest memory', descs: [{ addr: 0x40_0000_0000, len: 64, flags: 0, next: 0 }], error: /queue 0: descriptor chain at head 0: descriptor 0 buffer 0x4000000000 \(\+64\) outside guest memory/ },
    { name: 'buffer crossing the end of a region', descs: [{ addr: (32 << 20) - 8, len: 64, flags: 0, next: 0 }], error: /outside guest memory/ },
    { name: 'a loop', descs: [{ len: 8, flags: VIRTQ_DESC_F_NEXT, next: 1 }, { len: 8, flags: VIRTQ_DESC_F_NEXT, next: 0 }], error: /head 0: loop/ },
    { name: 'a zero-length chain', descs: [{ len: 0, flags: 0, next: 0 }], error: /head 0: zero-length chain/ },
    { name: 'readable after writable', descs: [{ len: 8, flags: VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, next: 1 }, { len: 8, flags: 0, next: 0 }], error: /readable descriptor 1 after a writable one/ },
    { name: 'next out of range', descs: [{ len: 8, flags: VIRTQ_DESC_F_NEXT, next: 200 }], error: /descriptor index 200 out of range/ },
    { name: 'indirect table of a bad length', descs: [{ len: 20, flags: VIRTQ_DESC_F_INDIRECT, next: 0 }], error: /indirect table length 20/ },
    { name: 'indirect with NEXT', descs: [{ len: 16, flags: VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, next: 1 }], error: /indirect descriptor with NEXT/ },
  ];

  test.each(cases)('$name: logged with queue and head, returned with length 0, queue goes on', async ({ descs, error }) => {
    const q = fe.queues[0];
    const buf = fe.ram.alloc(4096);
    descs.forEach((d, i) => q.writeRaw(i, { addr: d.addr ?? fe.ram.gpa(buf) + i * 64, len: d.len, flags: d.flags, next: d.next }));
    const r = await fe.publishRaw(0, 0, descs.map((_, i) => i));
    expect(r.len).toBe(0);
    expect(e.log.lines.join('\n')).toMatch(error);
    await echoWorks(fe, 0);
    await echoWorks(fe, 1);
  });

  test('nested indirect tables are rejected', async () => {
    const q = fe.queues[0];
    const tbl = fe.ram.alloc(32, 16);
    const inner = new DataView(fe.ram.bytes.buffer, fe.ram.bytes.byteOffset + tbl, 32);
    q.writeDescriptor(inner, 0, { addr: fe.ram.gpa(tbl), len: 16, flags: VIRTQ_DESC_F_INDIRECT, next: 0 });
    q.writeRaw(0, { addr: fe.ram.gpa(tbl), len: 16, flags: VIRTQ_DESC_F_INDIRECT, next: 0 });
    const r = await fe.publishRaw(0, 0, [0]);
    expect(r.len).toBe(0);
    expect(e.log.lines.join('\n')).toMatch(/nested indirect descriptor/);
    await echoWorks(fe);
  });

  test('a head index out of range is logged and skipped', async () => {
    const q = fe.queues[0];
    q.publish(999);
    if (q.flush()) fe.kick(0);
    await echoWorks(fe, 1);
    await new Promise((r) => setTimeout(r, 20));
    expect(e.log.lines.join('\n')).toMatch(/queue 0: descriptor chain at head 999: head index out of range/);
  });

  test('an available index far ahead of ours marks the queue broken; other queues go on', async () => {
    const avail = new Uint16Array(fe.ram.bytes.buffer, fe.ram.bytes.byteOffset + fe.queues[0].availOff, 2);
    Atomics.store(avail, 1, 5000);
    fe.kick(0);
    await echoWorks(fe, 1);
    await new Promise((r) => setTimeout(r, 20));
    expect(e.log.lines.join('\n')).toMatch(/queue 0: available index 5000 is 5000 ahead of ours \(0\), more than the queue size 16/);
    expect(e.backends[0].queues[0].broken).not.toBeNull();
  });
});

test('FLAG_NEED_REPLY is honoured without REPLY_ACK only through real replies', () => {
  expect(FLAG_NEED_REPLY).toBe(8);
});
