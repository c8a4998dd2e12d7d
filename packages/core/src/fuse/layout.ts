/**
 * A small declarative description of fixed-size C structs (little-endian, the
 * natural alignment gcc uses on x86_64/aarch64) with generated accessors.
 *
 * Each struct is declared once, with the kernel's field names, and the helper:
 * - computes every field offset with C alignment rules and checks the total
 *   against the sizeof() the caller states (a mismatch throws at module load);
 * - generates one `read` and one `write` function per layout (new Function):
 *   straight-line DataView calls at constant offsets, building one object
 *   literal of a fixed shape, no per-call closures or loops.
 *
 * Value policy: 64-bit fields (u64/i64) are `bigint`, every narrower field is
 * `number`. Padding and reserved fields (`pad(...)`) take part in the layout
 * but are not part of the value: they read as nothing and are written as zeros
 * (replies go to guest memory; we never leak stale bytes into padding). Writes
 * convert values modulo 2^bits, exactly like a C assignment would.
 */

/** Scalar field types found in fuse.h. */
export type ScalarType = 'u16' | 'u32' | 'i32' | 'u64' | 'i64';

/** A padding/reserved field: `count` elements of `type`, always zero on the wire. */
export interface PadSpec {
  readonly kind: 'pad';
  readonly type: ScalarType;
  readonly count: number;
}

/** Declares padding or a reserved array (e.g. `uint32_t unused[11]` is `pad('u32', 11)`). */
export function pad(type: ScalarType = 'u32', count = 1): PadSpec {
  return { kind: 'pad', type, count };
}

export type FieldSpec = ScalarType | PadSpec | Struct<object, never>;

type FieldValue<S> = S extends 'u64' | 'i64'
  ? bigint
  : S extends ScalarType
    ? number
    : S extends Struct<infer T, never>
      ? T
      : never;

/** The decoded value type of a field map: pads removed, u64 as bigint. */
export type StructValue<F> = {
  -readonly [K in keyof F as F[K] extends PadSpec ? never : K]: FieldValue<F[K]>;
};

/** The value type of a declared struct, e.g. `StructType<typeof fuse_attr>`. */
export type StructType<S> = S extends Struct<infer T, never> ? T : never;

/**
 * A nested struct given to a write as its wire bytes (exactly its size), copied as they are: a
 * filesystem may fill fuse_attr straight from a host stat buffer instead of building its fields.
 */
export type WireBytes = Uint8Array;

type FieldInput<S> = S extends Struct<unknown, infer I> ? I | WireBytes : FieldValue<S>;

/** What a write accepts: the value type, where every nested struct may also be its wire bytes. */
export type StructInput<F> = {
  -readonly [K in keyof F as F[K] extends PadSpec ? never : K]: FieldInput<F[K]>;
};

/** The write-side type of a declared struct, e.g. `StructInputType<typeof fuse_entry_out>`. */
export type StructInputType<S> = S extends Struct<unknown, infer I> ? I : never;

export interface FieldInfo {
  readonly name: string;
  readonly offset: number;
  /** Total bytes of the field (element size x count for arrays). */
  readonly size: number;
  readonly type: ScalarType | 'struct';
  readonly pad: boolean;
}

export interface Struct<T, I = T> {
  readonly kind: 'struct';
  /** The kernel's struct name, e.g. "fuse_attr". */
  readonly name: string;
  /** sizeof(struct name). */
  readonly size: number;
  /** _Alignof(struct name). */
  readonly align: number;
  readonly fields: readonly FieldInfo[];
  /** offsetof() of every field, pads included. */
  readonly offsets: Readonly<Record<string, number>>;
  /**
   * Unchecked read at an absolute position of a DataView. The caller has
   * already proven `pos + size` is in bounds of the bytes it owns.
   */
  read(view: DataView, pos: number): T;
  /** Unchecked write at an absolute position of a DataView; pads are zeroed. */
  write(view: DataView, pos: number, value: I): void;
  /** Bounds-checked decode of `size` bytes at `offset` of `bytes`. */
  decode(bytes: Uint8Array, offset?: number): T;
  /** Bounds-checked encode at `offset` of `bytes`; returns bytes written (= size). */
  encode(value: I, bytes: Uint8Array, offset?: number): number;
  /** A fresh all-zero value (a convenient starting point for replies). */
  zero(): T;
}

const SCALAR_SIZE: Readonly<Record<ScalarType, number>> = { u16: 2, u32: 4, i32: 4, u64: 8, i64: 8 };
const GETTER: Readonly<Record<ScalarType, string>> = {
  u16: 'getUint16',
  u32: 'getUint32',
  i32: 'getInt32',
  u64: 'getBigUint64',
  i64: 'getBigInt64',
};
const SETTER: Readonly<Record<ScalarType, string>> = {
  u16: 'setUint16',
  u32: 'setUint32',
  i32: 'setInt32',
  u64: 'setBigUint64',
  i64: 'setBigInt64',
};
const ZERO: Readonly<Record<ScalarType, string>> = { u16: '0', u32: '0', i32: '0', u64: '0n', i64: '0n' };
const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/*
 * DataView access is several times faster than Buffer#readUInt32LE & co, but
 * creating a DataView costs as much as decoding a small struct. So views are
 * made once per underlying ArrayBuffer (guest memory regions and Node's Buffer
 * pool are long-lived) and cached; positions are then absolute in that buffer
 * (bytes.byteOffset + offset). Such a view is NOT bounded by the Uint8Array
 * slice, so every public entry point checks bounds against the slice itself.
 */
const views = new WeakMap<ArrayBufferLike, DataView>();
// The last two buffers seen: a request alternates between guest memory and a queue's reply scratch.
let lastBuffer: ArrayBufferLike | undefined;
let lastView: DataView | undefined;
let prevBuffer: ArrayBufferLike | undefined;
let prevView: DataView | undefined;

/** A DataView over the whole ArrayBuffer behind `bytes`; index it with `bytes.byteOffset + i`. */
export function viewOf(bytes: Uint8Array): DataView {
  const ab = bytes.buffer;
  if (ab === lastBuffer) return lastView!;
  let view: DataView | undefined;
  if (ab === prevBuffer) view = prevView!;
  else {
    view = views.get(ab);
    if (view === undefined) {
      view = new DataView(ab);
      views.set(ab, view);
    }
  }
  prevBuffer = lastBuffer;
  prevView = lastView;
  lastBuffer = ab;
  lastView = view;
  return view;
}

/** Throws a RangeError unless [offset, offset + size) lies within `bytes`. */
export function checkRange(bytes: Uint8Array, offset: number, size: number, what: string): void {
  if (!Number.isInteger(offset) || offset < 0 || offset + size > bytes.byteLength) {
    throw new RangeError(`${what}: ${size} bytes at offset ${offset} do not fit in ${bytes.byteLength} bytes`);
  }
}

function isPad(spec: FieldSpec): spec is PadSpec {
  return typeof spec === 'object' && spec.kind === 'pad';
}

interface Accessors<T, I> {
  read(view: DataView, pos: number): T;
  write(view: DataView, pos: number, value: I): void;
}

/** Copies a nested struct given as wire bytes (see WireBytes). */
function writeWire(view: DataView, pos: number, bytes: Uint8Array, size: number, name: string): void {
  if (bytes.byteLength !== size) throw new RangeError(`struct ${name}: ${bytes.byteLength} wire bytes, expected ${size}`);
  new Uint8Array(view.buffer, view.byteOffset + pos, size).set(bytes);
}

/**
 * Declares a struct. `size` is the sizeof() from the C header: the computed
 * layout must match it exactly, so a typo in the declaration fails loudly.
 */
export function defineStruct<const F extends Record<string, FieldSpec>>(
  name: string,
  size: number,
  spec: F,
): Struct<StructValue<F>, StructInput<F>> {
  type T = StructValue<F>;
  type I = StructInput<F>;
  const fields: FieldInfo[] = [];
  const offsets: Record<string, number> = {};
  const nested: FieldSpec[] = [];
  const readParts: string[] = [];
  const writeParts: string[] = [];
  let pos = 0;
  let align = 1;

  for (const [field, fs] of Object.entries(spec) as [string, FieldSpec][]) {
    if (!IDENT.test(field)) throw new Error(`${name}: bad field name ${field}`);
    let fieldAlign: number;
    let fieldSize: number;
    if (typeof fs === 'string') {
      fieldAlign = fieldSize = SCALAR_SIZE[fs];
    } else if (isPad(fs)) {
      fieldAlign = SCALAR_SIZE[fs.type];
      fieldSize = fieldAlign * fs.count;
    } else {
      fieldAlign = fs.align;
      fieldSize = fs.size;
    }
    pos = Math.ceil(pos / fieldAlign) * fieldAlign;
    align = Math.max(align, fieldAlign);
    offsets[field] = pos;
    const at = `p + ${pos}`;
    if (typeof fs === 'string') {
      fields.push({ name: field, offset: pos, size: fieldSize, type: fs, pad: false });
      readParts.push(`${field}: v.${GETTER[fs]}(${at}, true)`);
      writeParts.push(`v.${SETTER[fs]}(${at}, x.${field}, true);`);
    } else if (isPad(fs)) {
      fields.push({ name: field, offset: pos, size: fieldSize, type: fs.type, pad: true });
      for (let i = 0; i < fs.count; i++) {
        writeParts.push(`v.${SETTER[fs.type]}(p + ${pos + i * fieldAlign}, ${ZERO[fs.type]}, true);`);
      }
    } else {
      const k = nested.push(fs) - 1;
      fields.push({ name: field, offset: pos, size: fieldSize, type: 'struct', pad: false });
      readParts.push(`${field}: n${k}.read(v, ${at})`);
      writeParts.push(`if (x.${field} instanceof Uint8Array) wire(v, ${at}, x.${field}, ${fs.size}, '${fs.name}'); else n${k}.write(v, ${at}, x.${field});`);
    }
    pos += fieldSize;
  }
  const computed = Math.ceil(pos / align) * align;
  if (computed !== size) throw new Error(`${name}: computed size ${computed} != sizeof ${size}`);
  // Tail padding (none in fuse.h today, but keep writes total).
  for (let i = pos; i < size; i++) writeParts.push(`v.setUint8(p + ${i}, 0);`);

  const deps = nested.map((_, i) => `n${i}`);
  const source =
    `'use strict';\n` +
    `return {\n` +
    `  read: function read_${name}(v, p) { return { ${readParts.join(', ')} }; },\n` +
    `  write: function write_${name}(v, p, x) { ${writeParts.join(' ')} },\n` +
    `};`;
  // Generated code is built only from the identifiers validated above.
  const factory = new Function('wire', ...deps, source) as (wire: typeof writeWire, ...deps: FieldSpec[]) => Accessors<T, I>;
  const { read, write } = factory(writeWire, ...nested);

  const zeroBytes = new Uint8Array(size);
  const zeroView = new DataView(zeroBytes.buffer);
  const what = `struct ${name}`;
  return {
    kind: 'struct',
    name,
    size,
    align,
    fields,
    offsets,
    read,
    write,
    decode(bytes: Uint8Array, offset = 0): T {
      checkRange(bytes, offset, size, what);
      return read(viewOf(bytes), bytes.byteOffset + offset);
    },
    encode(value: I, bytes: Uint8Array, offset = 0): number {
      checkRange(bytes, offset, size, what);
      write(viewOf(bytes), bytes.byteOffset + offset, value);
      return size;
    },
    zero(): T {
      return read(zeroView, 0);
    },
  };
}
