// Lists of byte views (guest memory segments of a descriptor chain) as one logical buffer. No imports:
// the passthrough's pool workers load this file without the rest of @vfsd/core.

/** Views of the bytes [start, start + length) of `views` taken as one buffer (fewer if they end first). */
export function sliceViews(views: readonly Uint8Array[], start: number, length: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let skip = start;
  let left = length;
  for (const v of views) {
    if (left <= 0) break;
    if (skip >= v.byteLength) {
      skip -= v.byteLength;
      continue;
    }
    const n = Math.min(v.byteLength - skip, left);
    out.push(v.subarray(skip, skip + n));
    left -= n;
    skip = 0;
  }
  return out;
}

/** Bytes held as one view, or as the views of the guest segments they span (in order, never copied). */
export type Bytes = Uint8Array | readonly Uint8Array[];

/** The views of `b`. */
export function bytesViews(b: Bytes): readonly Uint8Array[] {
  return b instanceof Uint8Array ? [b] : b;
}

/** The length of `b`. */
export function bytesLength(b: Bytes): number {
  return b instanceof Uint8Array ? b.byteLength : viewsLength(b);
}

/** `b` as one view: itself, or a copy of its segments when there are several. */
export function bytesJoined(b: Bytes): Uint8Array {
  if (b instanceof Uint8Array) return b;
  if (b.length === 1) return b[0];
  const out = new Uint8Array(viewsLength(b));
  gatherInto(out, b);
  return out;
}

/** Copies `views`, in order, to the start of `to` (which must hold them all). */
export function gatherInto(to: Uint8Array, views: readonly Uint8Array[]): void {
  let at = 0;
  for (const v of views) {
    to.set(v, at);
    at += v.byteLength;
  }
}

/** Copies `data` across `views` in order, as far as they reach; returns the bytes copied. */
export function scatterInto(views: readonly Uint8Array[], data: Uint8Array): number {
  let at = 0;
  for (const v of views) {
    if (at >= data.byteLength) break;
    const n = Math.min(v.byteLength, data.byteLength - at);
    v.set(data.subarray(at, at + n));
    at += n;
  }
  return at;
}

/** Total bytes of `views`. */
export function viewsLength(views: readonly Uint8Array[]): number {
  let n = 0;
  for (const v of views) n += v.byteLength;
  return n;
}
