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

/** Total bytes of `views`. */
export function viewsLength(views: readonly Uint8Array[]): number {
  let n = 0;
  for (const v of views) n += v.byteLength;
  return n;
}
