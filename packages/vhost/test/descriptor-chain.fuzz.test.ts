// The descriptor-chain walker against descriptor tables a guest chose: real memfd guest memory (two
// regions with a hole between them, as GuestRam lays them out), a ring table and two indirect tables
// filled with descriptors whose addresses, lengths, flags and next indices are picked to hit every
// rule (in a region, in the hole, across a region's end, beyond memory, loops, nesting). The walker
// must either throw ChainError or return views that alias exactly the bytes a model of the spec
// (virtio 1.2, 2.7.5 and 2.7.5.3) says, in order; nothing else may escape.
import fc from 'fast-check';
import { ChainError, walkChain } from '../src/virtqueue/descriptor-chain';
import { GuestMemory, MemoryRegion } from '../src/memory/guest-memory';
import { DESC_SIZE, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from '../src/virtqueue/ring-layout';
import { GuestRam, fuzz } from '../src/testing';

const RAM = 64 * 1024;
const HALF = RAM / 2;
/** RAM offsets of the ring's table and the two indirect tables (region 0, region 0, region 1). */
const RING_AT = 0;
const TABLES_AT = [4096, HALF + 4096];
const MAX_TABLE = 8;

interface Desc {
  addr: number;
  len: number;
  flags: number;
  next: number;
}

const ram = new GuestRam(RAM);
const memory = new GuestMemory(ram.regions.map((r) => new MemoryRegion(r.desc, ram.fd)));
const regions = ram.regions.map((r) => ({ gpa: Number(r.desc.guest_phys_addr), size: r.size, fileOffset: r.fileOffset }));

afterAll(() => {
  for (const r of memory.regions) r.unmap();
  ram.close();
});

/** The RAM offset of [gpa, gpa+len) when it lies inside one region, else null. */
function ramOffset(gpa: number, len: number): number | null {
  for (const r of regions) if (gpa >= r.gpa && gpa + len <= r.gpa + r.size) return r.fileOffset + (gpa - r.gpa);
  return null;
}

// Addresses: inside either region, straddling region 0's end, in the hole, beyond memory, and past
// the 2^53 limit (hi word above 0x1fffff).
const addr = fc.oneof(
  { weight: 8, arbitrary: fc.nat({ max: HALF - 1 }).map((o) => regions[0].gpa + o) },
  { weight: 8, arbitrary: fc.nat({ max: HALF - 1 }).map((o) => regions[1].gpa + o) },
  { weight: 1, arbitrary: fc.nat({ max: 64 }).map((o) => regions[0].gpa + HALF - o) },
  { weight: 1, arbitrary: fc.nat({ max: 0xffff }).map((o) => HALF + 0x1000 + o) },
  { weight: 1, arbitrary: fc.nat({ max: 0xffff }).map((o) => regions[1].gpa + HALF + o) },
  { weight: 1, arbitrary: fc.constantFrom(2 ** 53, 2 ** 60, 2 ** 64 - 4096) },
);
// Indirect descriptors pointing at one of the tables, with a length that may be wrong.
const indirectDesc = fc.record({
  addr: fc.constantFrom(...TABLES_AT.map((o) => ram.gpa(o))),
  len: fc.oneof(fc.integer({ min: 1, max: MAX_TABLE }).map((n) => n * DESC_SIZE), fc.nat({ max: 200 })),
  flags: fc.oneof(fc.constant(VIRTQ_DESC_F_INDIRECT), fc.constant(VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT), fc.constant(VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_WRITE)),
  next: fc.nat({ max: 20 }),
});
const plainDesc = fc.record({
  addr,
  len: fc.oneof({ weight: 6, arbitrary: fc.nat({ max: 300 }) }, { weight: 1, arbitrary: fc.constantFrom(0, HALF, 0xffffffff) }),
  // Mostly NEXT and WRITE, sometimes bits the spec does not define.
  flags: fc.oneof({ weight: 6, arbitrary: fc.nat({ max: 3 }) }, { weight: 1, arbitrary: fc.nat({ max: 0xffff }).map((f) => f & ~VIRTQ_DESC_F_INDIRECT) }),
  next: fc.oneof({ weight: 4, arbitrary: fc.nat({ max: 7 }) }, { weight: 1, arbitrary: fc.nat({ max: 0xffff }) }),
});
const desc: fc.Arbitrary<Desc> = fc.oneof({ weight: 6, arbitrary: plainDesc }, { weight: 1, arbitrary: indirectDesc });
const table = fc.array(desc, { minLength: 1, maxLength: MAX_TABLE });

const caseArb = fc.record({
  queueSize: fc.constantFrom(1, 2, 4, 8),
  ring: fc.array(desc, { minLength: 8, maxLength: 8 }),
  tables: fc.tuple(table, table),
  head: fc.nat({ max: 9 }),
  indirect: fc.boolean(),
});

function writeTable(at: number, descs: Desc[]): void {
  const v = new DataView(ram.bytes.buffer, ram.bytes.byteOffset + at, MAX_TABLE * DESC_SIZE);
  new Uint8Array(v.buffer, v.byteOffset, v.byteLength).fill(0);
  descs.forEach((d, i) => {
    v.setBigUint64(i * DESC_SIZE, BigInt(d.addr), true);
    v.setUint32(i * DESC_SIZE + 8, d.len, true);
    v.setUint16(i * DESC_SIZE + 12, d.flags, true);
    v.setUint16(i * DESC_SIZE + 14, d.next, true);
  });
}

function readTable(at: number, n: number): Desc[] {
  const v = new DataView(ram.bytes.buffer, ram.bytes.byteOffset + at, n * DESC_SIZE);
  return Array.from({ length: n }, (_, i) => ({
    addr: Number(v.getBigUint64(i * DESC_SIZE, true)),
    len: v.getUint32(i * DESC_SIZE + 8, true),
    flags: v.getUint16(i * DESC_SIZE + 12, true),
    next: v.getUint16(i * DESC_SIZE + 14, true),
  }));
}

/** Segments (RAM offset, length) in order, or null where the spec says the chain is malformed. */
type Model = { readable: [number, number][]; writable: [number, number][] } | null;

function model(descs: Desc[], size: number, head: number, indirect: boolean): Model {
  const out = { readable: [] as [number, number][], writable: [] as [number, number][] };
  let sawWritable = false;
  const walk = (t: Desc[], n: number, first: number, nested: boolean): boolean => {
    let i = first;
    for (let count = 1; ; count++) {
      if (i >= n || count > n) return false;
      const d = t[i];
      // No guest has memory at 2^53 or above: such an address is refused whatever the length, an
      // empty buffer's too (the walker's rule; found by the random seed 2131224505).
      if (d.addr >= 2 ** 53) return false;
      if (d.flags & VIRTQ_DESC_F_INDIRECT) {
        // 2.7.5.3.1: negotiated, not in an indirect table, no NEXT, a whole number of descriptors.
        if (nested || !indirect || d.flags & VIRTQ_DESC_F_NEXT || d.len === 0 || d.len % DESC_SIZE !== 0) return false;
        const at = ramOffset(d.addr, d.len);
        if (at === null) return false;
        return walk(readTable(at, d.len / DESC_SIZE), d.len / DESC_SIZE, 0, true);
      }
      const at = d.len === 0 ? 0 : ramOffset(d.addr, d.len);
      if (at === null) return false;
      if (d.flags & VIRTQ_DESC_F_WRITE) {
        sawWritable = true;
        if (d.len > 0) out.writable.push([at, d.len]);
      } else {
        // 2.7.4.2: device-writable descriptors come after every device-readable one.
        if (sawWritable) return false;
        if (d.len > 0) out.readable.push([at, d.len]);
      }
      if (!(d.flags & VIRTQ_DESC_F_NEXT)) return true;
      i = d.next;
    }
  };
  if (head >= size || !walk(descs, size, head, false)) return null;
  return out.readable.length + out.writable.length === 0 ? null : out;
}

/** Where each view is in RAM: found by writing a marker through RAM and reading it back through the view. */
function segmentsOf(views: Uint8Array[]): [number, number][] {
  return views.map((v) => {
    const gpa = memory.gpaOf(v);
    expect(gpa).not.toBeNull();
    const at = ramOffset(gpa!, v.length);
    expect(at).not.toBeNull();
    ram.bytes[at!] ^= 0x5a;
    const seen = v[0];
    ram.bytes[at!] ^= 0x5a;
    expect(seen).toBe(ram.bytes[at!] ^ 0x5a);
    return [at!, v.length];
  });
}

type Case = typeof caseArb extends fc.Arbitrary<infer T> ? T : never;

function check(c: Case): void {
  writeTable(RING_AT, c.ring);
  writeTable(TABLES_AT[0], c.tables[0]);
  writeTable(TABLES_AT[1], c.tables[1]);
  const ringView = new DataView(ram.bytes.buffer, ram.bytes.byteOffset + RING_AT, c.queueSize * DESC_SIZE);
  const want = model(c.ring.slice(0, c.queueSize), c.queueSize, c.head, c.indirect);
  let got: Model;
  try {
    const chain = walkChain(memory, ringView, c.queueSize, c.head, c.indirect);
    got = { readable: segmentsOf(chain.readable), writable: segmentsOf(chain.writable) };
    expect(chain.readableLength).toBe(chain.readable.reduce((a, v) => a + v.length, 0));
    expect(chain.writableLength).toBe(chain.writable.reduce((a, v) => a + v.length, 0));
  } catch (e) {
    if (!(e instanceof ChainError)) throw e;
    expect(e.head).toBe(c.head);
    got = null;
  }
  expect(got).toEqual(want);
}

describe('descriptor chain walker fuzz', () => {
  fuzz('answers what the spec says for any table a guest wrote: views of exactly its buffers, or ChainError', fc.property(caseArb, check), 5000);

  test('an empty buffer at an address no guest has (2^53) is refused like any other there', () => {
    const empty = { addr: 0, len: 0, flags: 0, next: 0 };
    check({
      queueSize: 8,
      ring: [empty, empty, empty, { addr: 2 ** 53, len: 0, flags: 0, next: 0 }, empty, empty, { addr: 0, len: 1, flags: VIRTQ_DESC_F_NEXT, next: 3 }, empty],
      tables: [[empty], [empty]],
      head: 6,
      indirect: false,
    });
    expect(model([{ addr: 0, len: 1, flags: VIRTQ_DESC_F_NEXT, next: 1 }, { addr: 2 ** 53, len: 0, flags: 0, next: 0 }], 2, 0, false)).toBeNull();
  });

  test('the cases the generator must reach are reached (valid chains, indirect ones, each kind of refusal)', () => {
    const seen = { ok: 0, indirectOk: 0, refused: 0 };
    fc.assert(
      fc.property(caseArb, (c) => {
        writeTable(TABLES_AT[0], c.tables[0]);
        writeTable(TABLES_AT[1], c.tables[1]);
        const m = model(c.ring.slice(0, c.queueSize), c.queueSize, c.head, c.indirect);
        if (!m) seen.refused++;
        else if (c.indirect && c.ring.slice(0, c.queueSize).some((d) => d.flags & VIRTQ_DESC_F_INDIRECT)) seen.indirectOk++;
        else seen.ok++;
      }),
      { seed: 1, numRuns: 3000 },
    );
    expect(seen.ok).toBeGreaterThan(100);
    expect(seen.indirectOk).toBeGreaterThan(10);
    expect(seen.refused).toBeGreaterThan(100);
  });
});
