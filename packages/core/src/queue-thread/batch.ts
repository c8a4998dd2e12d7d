// Requests and replies cross between a request-queue thread and the main thread a batch at a time:
// every item's bytes end to end in one buffer and, per item, four numbers in another, so a batch is
// two transferred ArrayBuffers whatever its size (one per item cost the main thread garbage
// collection and array-buffer sweeping in perf: a forwarded LOOKUP about 10 µs there).

/** [id, offset, length, extra] per item. */
const META = 4;

export interface PackedBatch {
  bytes: Uint8Array;
  meta: Int32Array;
}

export class BatchBuilder {
  private parts: Uint8Array[][] = [];
  private numbers: number[] = [];
  private total = 0;

  get size(): number {
    return this.parts.length;
  }

  /** An item of `length` bytes (taken from `parts` in order) with its id and one number more. */
  add(id: number, parts: readonly Uint8Array[], length: number, extra: number): void {
    this.parts.push(parts as Uint8Array[]);
    this.numbers.push(id, this.total, length, extra);
    this.total += length;
  }

  /** The batch so far (copied out), and an empty builder; null when nothing was added. */
  take(): PackedBatch | null {
    if (this.parts.length === 0) return null;
    const bytes = new Uint8Array(this.total);
    const meta = Int32Array.from(this.numbers);
    for (let i = 0; i < this.parts.length; i++) {
      let at = meta[i * META + 1];
      let left = meta[i * META + 2];
      for (const p of this.parts[i]) {
        if (left <= 0) break;
        const n = Math.min(left, p.length);
        bytes.set(n === p.length ? p : p.subarray(0, n), at);
        at += n;
        left -= n;
      }
    }
    this.parts = [];
    this.numbers = [];
    this.total = 0;
    return { bytes, meta };
  }
}

/** Calls fn for each item of a batch: its id, a view of its bytes, its extra number. */
export function forEachItem(b: PackedBatch, fn: (id: number, bytes: Uint8Array, extra: number) => void): void {
  const m = b.meta;
  for (let i = 0; i < m.length; i += META) fn(m[i], b.bytes.subarray(m[i + 1], m[i + 1] + m[i + 2]), m[i + 3]);
}

/** What to transfer with a batch. */
export function transferOf(b: PackedBatch): ArrayBuffer[] {
  return [b.bytes.buffer as ArrayBuffer, b.meta.buffer as ArrayBuffer];
}
