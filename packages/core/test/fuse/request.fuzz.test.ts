// Fuzzing the FUSE request decoder, every opcode: structured inputs (a valid header, bodies made of
// struct-sized pieces, names, and size fields that mostly agree with the data after them) and plain
// bytes. Invariants: the result is a decoded request or a FuseDecodeError (never another throw); an
// error carries the unique whenever bytes 8-15 are there; what is decoded lies inside the input (views
// into it) and the input is left as it was; the segmented decoder agrees with the whole-buffer one.
import fc from 'fast-check';
import {
  decodeExtensions,
  decodeRequestSegments,
  EINVAL,
  ENAMETOOLONG,
  ENOSYS,
  FUSE_NAME_MAX,
  FuseDecodeError,
  FuseOpcode as Op,
  isNoReply,
  tryDecodeRequest,
  type DecodedRequest,
  type DecodeOptions,
} from '../../src/fuse';
import { bytesJoined, bytesViews, type Bytes } from '../../src/io-views';
import { fuzz } from '@vfsd/vhost/testing';
import { request } from './helpers';

const OPCODES = Object.values(Op).filter((v): v is Op => typeof v === 'number');

/** Where the size (or count) field that governs the rest of the body sits, and what it counts. */
const SIZED: Partial<Record<Op, { structSizes: number[]; at: number; unit: number; name?: boolean }>> = {
  [Op.FUSE_WRITE]: { structSizes: [40, 24], at: 16, unit: 1 },
  [Op.FUSE_SETXATTR]: { structSizes: [8, 16], at: 0, unit: 1, name: true },
  [Op.FUSE_IOCTL]: { structSizes: [32], at: 24, unit: 1 },
  [Op.FUSE_NOTIFY_REPLY]: { structSizes: [40], at: 16, unit: 1 },
  [Op.FUSE_BATCH_FORGET]: { structSizes: [8], at: 0, unit: 16 },
  [Op.FUSE_REMOVEMAPPING]: { structSizes: [4], at: 0, unit: 16 },
};

const STRUCT_SIZES = [4, 8, 12, 16, 24, 32, 40, 48, 56, 64, 72, 80, 88, 104];

/** A name: mostly plain, sometimes empty, with '/', or longer than FUSE_NAME_MAX; with or without its NUL. */
const name = fc
  .oneof(
    { weight: 6, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 16 }).map((b) => b.map((c) => (c === 0 || c === 0x2f ? 0x61 : c))) },
    { weight: 1, arbitrary: fc.constant(new Uint8Array(0)) },
    { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 8 }) },
    { weight: 1, arbitrary: fc.constant(new Uint8Array(FUSE_NAME_MAX + 1).fill(0x62)) },
  )
  .chain((n) => fc.boolean().map((nul) => Buffer.concat([n, nul ? Buffer.from([0]) : Buffer.alloc(0)])));

const piece = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...STRUCT_SIZES).chain((n) => fc.uint8Array({ minLength: n, maxLength: n })) },
  { weight: 3, arbitrary: name },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 40 }) },
);

/** How far a size field is from the truth: mostly exact. */
const delta = fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, { weight: 2, arbitrary: fc.integer({ min: -2, max: 2 }) }, { weight: 1, arbitrary: fc.nat() });

function sizedBody(op: Op): fc.Arbitrary<Buffer> {
  const s = SIZED[op]!;
  return fc
    .record({
      structSize: fc.constantFrom(...s.structSizes),
      struct: fc.uint8Array({ minLength: 40, maxLength: 40 }),
      name: s.name ? name : fc.constant(Buffer.alloc(0)),
      items: fc.nat({ max: 6 }),
      delta,
    })
    .chain((r) =>
      fc.uint8Array({ minLength: r.items * s.unit, maxLength: r.items * s.unit }).map((data) => {
        const struct = Buffer.from(r.struct.subarray(0, r.structSize));
        struct.writeUInt32LE((r.items + r.delta) >>> 0, s.at);
        return Buffer.concat([struct, r.name, data]);
      }),
    );
}

/** Extensions (total_extlen 8-byte units): fuse_ext_header-shaped records, or random bytes. */
const extension = fc.oneof(
  { weight: 3, arbitrary: fc.constant(Buffer.alloc(0)) },
  {
    weight: 1,
    arbitrary: fc.record({ units: fc.integer({ min: 1, max: 4 }), type: fc.nat({ max: 3 }), fill: fc.uint8Array({ minLength: 32, maxLength: 32 }) }).map(({ units, type, fill }) => {
      const b = Buffer.from(fill.subarray(0, units * 8));
      b.writeUInt32LE(units * 8, 0);
      b.writeUInt32LE(type, 4);
      return b;
    }),
  },
);

const options: fc.Arbitrary<DecodeOptions> = fc.record({ minor: fc.constantFrom(5, 8, 9, 11, 12, 23, 31, 36, 37, 38), setxattrExt: fc.boolean() });

/** A request with a valid header (len, total_extlen right) around a body made for its opcode. */
const structured = fc
  .record({ opcode: fc.constantFrom(...OPCODES), unique: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), ext: extension })
  .chain(({ opcode, unique, ext }) =>
    (SIZED[opcode] ? fc.oneof(sizedBody(opcode), fc.array(piece, { maxLength: 3 }).map((p) => Buffer.concat(p))) : fc.array(piece, { maxLength: 3 }).map((p) => Buffer.concat(p))).map(
      (body) => request(opcode, Buffer.concat([body, ext]), { unique, total_extlen: ext.length / 8 }),
    ),
  );

/** Plain bytes; half of them with a `len` that matches, so that they get past the first check. */
const byteLevel = fc.record({ bytes: fc.uint8Array({ maxLength: 160 }), fixLen: fc.boolean(), opcode: fc.option(fc.constantFrom(...OPCODES)) }).map(({ bytes, fixLen, opcode }) => {
  const b = Buffer.from(bytes);
  if (fixLen && b.length >= 4) b.writeUInt32LE(b.length, 0);
  if (opcode !== null && b.length >= 8) b.writeUInt32LE(opcode, 4);
  return b;
});

/** Random cut points: the same bytes as 1-4 segments. */
function segmentsOf(bytes: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of [...at, bytes.length]) {
    out.push(Buffer.from(bytes.subarray(prev, c)));
    prev = c;
  }
  return out.filter((s, i) => s.length > 0 || i === 0);
}

/** Every Buffer the decoded request holds (names, data, values, ext). */
function viewsOf(r: DecodedRequest): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const v of Object.values(r) as unknown[]) {
    if (v instanceof Uint8Array) out.push(v);
    else if (Array.isArray(v) && v.every((x) => x instanceof Uint8Array)) out.push(...(v as Uint8Array[]));
  }
  return out;
}

function within(view: Uint8Array, segments: readonly Uint8Array[]): boolean {
  return segments.some((s) => view.buffer === s.buffer && view.byteOffset >= s.byteOffset && view.byteOffset + view.byteLength <= s.byteOffset + s.byteLength);
}

/** The invariants of one decode of `bytes`. */
function checkDecode(bytes: Buffer, opts: DecodeOptions): DecodedRequest | FuseDecodeError {
  const copy = Buffer.from(bytes);
  const r = tryDecodeRequest(bytes, opts);
  expect(bytes.equals(copy)).toBe(true);
  if (r instanceof FuseDecodeError) {
    expect([EINVAL, ENAMETOOLONG, ENOSYS]).toContain(r.errno);
    if (bytes.length >= 16) {
      expect(r.unique).toBe(bytes.readBigUInt64LE(8));
      expect(r.opcode).toBe(bytes.readUInt32LE(4));
      expect(r.noReply).toBe(isNoReply(r.opcode!));
    } else {
      expect(r.unique).toBeUndefined();
    }
    return r;
  }
  expect(r.header.len).toBe(bytes.length);
  expect(r.header.unique).toBe(bytes.readBigUInt64LE(8));
  expect(r.opcode).toBe(bytes.readUInt32LE(4));
  expect(r.noReply).toBe(isNoReply(r.opcode));
  // Names, values and extensions are copies (the request may be guest memory); only a WRITE's data is a view.
  for (const v of viewsOf(r)) expect(within(v, [bytes])).toBe(r.opcode === Op.FUSE_WRITE && v === r.data);
  if (r.ext) expect(within(r.ext, [bytes])).toBe(false);
  if ('name' in r && r.opcode !== Op.FUSE_TMPFILE) expect(r.name.includes(0)).toBe(false);
  if (r.ext) {
    // The extension area decodes to records or a typed error, nothing else.
    try {
      decodeExtensions(r.ext);
    } catch (e) {
      expect(e).toBeInstanceOf(FuseDecodeError);
    }
  }
  return r;
}

/** What the segmented decoder must agree on with the whole-buffer one. */
function outcome(r: DecodedRequest | FuseDecodeError): unknown {
  if (r instanceof FuseDecodeError) return { errno: r.errno, unique: r.unique };
  const { data, ...rest } = r as DecodedRequest & { data?: Bytes };
  return { ...rest, data: data === undefined ? undefined : Buffer.from(bytesJoined(data)) };
}

function checkSegmented(bytes: Buffer, cuts: number[], opts: DecodeOptions): void {
  const whole = checkDecode(bytes, opts);
  const segments = segmentsOf(bytes, cuts);
  let r: DecodedRequest | FuseDecodeError;
  try {
    r = decodeRequestSegments(segments, opts);
  } catch (e) {
    if (!(e instanceof FuseDecodeError)) throw e;
    r = e;
  }
  expect(outcome(r)).toEqual(outcome(whole));
  // A WRITE's data left in the segments must lie inside them.
  if (!(r instanceof FuseDecodeError) && r.opcode === Op.FUSE_WRITE && !(r.data instanceof Uint8Array)) {
    for (const v of bytesViews(r.data)) expect(within(v, segments)).toBe(true);
  }
}

const cuts = fc.array(fc.nat({ max: 400 }), { maxLength: 3 });

describe('FUSE request decoder fuzz', () => {
  fuzz('structured requests of every opcode: decoded or a FuseDecodeError', fc.property(structured, options, (bytes, opts) => void checkDecode(bytes, opts)), 4000);
  fuzz('plain bytes: decoded or a FuseDecodeError, the unique kept once readable', fc.property(byteLevel, options, (bytes, opts) => void checkDecode(bytes, opts)), 4000);
  fuzz('segmented decoding agrees with the whole-buffer decoder', fc.property(structured, cuts, options, checkSegmented), 2000);

  test('the structured generator reaches decoded requests of every opcode (it is not all errors)', () => {
    const decoded = new Set<number>();
    fc.assert(
      fc.property(structured, (bytes) => {
        const r = tryDecodeRequest(bytes);
        if (!(r instanceof FuseDecodeError)) decoded.add(r.opcode);
      }),
      { seed: 1, numRuns: 10_000 },
    );
    expect(OPCODES.filter((op) => !decoded.has(op)).map((op) => Op[op])).toEqual([]);
  });
});
