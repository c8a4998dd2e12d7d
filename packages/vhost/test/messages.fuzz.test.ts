// vhost-user messages a front-end chose, over the real socket to a real back-end (the echo device):
// random requests (known and unknown codes), flags, payload sizes (the ones the requests expect, so
// that handlers run, and others), payload bytes and fds (eventfds, memfds, /dev/null), sent after a
// full negotiation (with the migration features or without) or on a fresh connection. Whatever comes, the back-end answers, refuses or drops
// the connection: no exception of its own ("unexpected failure"), the next front-end is served, and
// the fds it received are closed.
import * as fs from 'fs';
import fc from 'fast-check';
import { SimulatedFrontend } from '../src/frontend/simulated-frontend';
import { FLAG_NEED_REPLY, FLAG_VERSION, HEADER_SIZE } from '../src/protocol/messages';
import { createEventFd } from '../src/sys/eventfd';
import { MFD_CLOEXEC, memfdCreate } from '../src/sys/libc';
import { fuzz } from '../src/testing';
import { EchoServer, startEcho, stopEcho } from './harness';

const fdCount = (): number => fs.readdirSync('/proc/self/fd').length;

// Sizes the requests' payloads have (u64, vring state, vring address, log, one region, tables of n
// regions, config), and others.
const size = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(0, 8, 8, 16, 24, 40, 40, 8 + 32, 8 + 2 * 32, 8 + 8 * 32, 12 + 4, 12 + 256) },
  { weight: 1, arbitrary: fc.nat({ max: 600 }) },
);
// Payload words: small numbers (indices, sizes, offsets) and any 64-bit value.
const word = fc.oneof(fc.nat({ max: 70000 }).map(BigInt), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.constantFrom(0n, 0x1_0000_0000n, 0x100n, 0x101n));
type FdKind = 'eventfd' | 'memfd' | 'memfd-big' | 'null';
const fdKind = fc.constantFrom<FdKind>('eventfd', 'memfd', 'memfd-big', 'null');
const message = fc.record({
  request: fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 1, max: 44 }) }, { weight: 1, arbitrary: fc.nat({ max: 0xffffffff }) }),
  flags: fc.oneof({ weight: 30, arbitrary: fc.constantFrom(FLAG_VERSION, FLAG_VERSION | FLAG_NEED_REPLY) }, { weight: 1, arbitrary: fc.nat({ max: 0xffffffff }) }),
  size,
  words: fc.array(word, { minLength: 80, maxLength: 80 }),
  fds: fc.oneof({ weight: 4, arbitrary: fc.constant([] as FdKind[]) }, { weight: 2, arbitrary: fc.array(fdKind, { minLength: 1, maxLength: 3 }) }),
});
const caseArb = fc.record({ negotiated: fc.constantFrom('no', 'yes', 'for migration'), messages: fc.array(message, { minLength: 1, maxLength: 12 }) });
type Case = typeof caseArb extends fc.Arbitrary<infer T> ? T : never;

function openFd(kind: FdKind): number {
  switch (kind) {
    case 'eventfd':
      return createEventFd();
    case 'memfd':
    case 'memfd-big': {
      const fd = memfdCreate('vfsd-fuzz', MFD_CLOEXEC);
      fs.ftruncateSync(fd, kind === 'memfd' ? 64 * 1024 : 4 * 1024 * 1024);
      return fd;
    }
    default:
      return fs.openSync('/dev/null', 'r');
  }
}

function encode(m: Case['messages'][number]): Buffer {
  const payload = Buffer.alloc(Math.ceil(m.size / 8) * 8);
  for (let i = 0; i * 8 < payload.length; i++) payload.writeBigUInt64LE(m.words[i % m.words.length], i * 8);
  const msg = Buffer.alloc(HEADER_SIZE + m.size);
  msg.writeUInt32LE(m.request, 0);
  msg.writeUInt32LE(m.flags, 4);
  msg.writeUInt32LE(m.size, 8);
  payload.copy(msg, HEADER_SIZE, 0, m.size);
  return msg;
}

const settle = (p: Promise<unknown>, ms: number) => Promise.race([p, new Promise((r) => setTimeout(r, ms))]);

describe('vhost-user message fuzz', () => {
  let e: EchoServer;
  let fdsBefore = 0;
  beforeAll(() => {
    e = startEcho({ reconnect: true });
    fdsBefore = fdCount();
  });
  afterAll(async () => {
    if (process.env.FUZZ_LOG) console.log([...new Set(e.log.lines.map((l) => l.replace(/\d+/g, 'N')))].sort().join('\n'));
    await stopEcho(e);
  });

  async function check(c: Case): Promise<void> {
    const fe = await SimulatedFrontend.connect(e.socketPath);
    try {
      if (c.negotiated !== 'no') await fe.negotiate({ numQueues: 2, queueSize: 16, migration: c.negotiated === 'for migration' });
      for (const m of c.messages) {
        const fds = m.fds.map(openFd);
        try {
          fe.sendRaw(encode(m), fds);
        } catch {
          break; // the back-end dropped the connection already
        } finally {
          for (const fd of fds) fs.closeSync(fd);
        }
      }
      await settle(fe.closed, 20);
    } finally {
      fe.close();
    }
    // The next front-end is served, as far as an echo through a ring.
    const next = await SimulatedFrontend.connect(e.socketPath);
    try {
      await next.negotiate({ numQueues: 1, queueSize: 16 });
      const r = await next.submit(0, [Buffer.from('alive')], [16]);
      expect(r.data.toString()).toBe('alive');
    } finally {
      next.close();
    }
    const unexpected = e.log.lines.filter((l) => /unexpected failure/.test(l));
    expect(unexpected).toEqual([]);
  }

  fuzz('the back-end answers, refuses or drops the connection; the next front-end is served', fc.asyncProperty(caseArb, check), 100, 120_000);

  test('the fds the back-end received are closed once their connections are gone', async () => {
    const deadline = Date.now() + 5000;
    while (fdCount() > fdsBefore + 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(fdCount()).toBeLessThanOrEqual(fdsBefore + 2);
  });
});
