// One reply, written once into a chain's writable descriptors (as the Rust virtiofsd's Writer). The
// server encodes header and body in place when the first writable segment holds them, else into a
// scratch that commit() scatters (the Linux driver gives the out header a 16-byte descriptor of its
// own, so small replies usually take the scratch: two short copies, no allocation). A READ's data goes
// straight into the segments after the header (bodyViews) and only the header is written after it.
import type { Struct } from '../fuse/layout';
import { encodeErrorReply, encodeHeaderOfPlacedReply, encodeStructReply, encodeStructReplyParts, OUT_HEADER_SIZE } from '../fuse/reply';
import { scatterInto, sliceViews } from '../io-views';

const EMPTY = new Uint8Array(0);

export class ReplyWriter {
  /** Where begin() placed the reply: encode it at the start of these bytes. */
  bytes: Uint8Array = EMPTY;
  /** Bytes written to the chain so far (its used length). */
  length = 0;
  /** The errno answered, 0 on success. */
  errno = 0;
  private scattered = false;
  /** All writable bytes of the chain. */
  readonly capacity: number;

  constructor(
    private readonly segments: readonly Uint8Array[],
    capacity: number,
    /** Reused by every reply of one queue: begin..commit runs without yielding. */
    private readonly scratch: Uint8Array,
  ) {
    this.capacity = capacity;
  }

  /** Room for a reply of at most `size` bytes, header included; false if the chain holds fewer. */
  begin(size: number): boolean {
    if (size > this.capacity) return false;
    const first = this.segments[0];
    if (first.byteLength >= size) {
      this.bytes = first;
      this.scattered = false;
    } else {
      this.bytes = size <= this.scratch.byteLength ? this.scratch : new Uint8Array(size);
      this.scattered = true;
    }
    return true;
  }

  /** The reply is encoded: its first `n` bytes (scattered now if they went to the scratch). */
  commit(n: number): void {
    if (this.scattered) scatterInto(this.segments, this.bytes.subarray(0, n));
    this.length = n;
  }

  /**
   * A reply of one struct, `size` bytes of it (a compat size is a prefix): straight into the chain when
   * its out header has a descriptor of its own (the Linux driver's layout), else as begin/commit do.
   * False, with nothing written, if the chain cannot hold it.
   */
  struct<T>(unique: bigint, layout: Struct<unknown, T>, value: T, size: number): boolean {
    const segs = this.segments;
    if (size === layout.size && segs.length > 1) {
      const n = encodeStructReplyParts(segs[0], segs[1], unique, layout, value);
      if (n > 0) {
        this.length = n;
        return true;
      }
    }
    if (!this.begin(OUT_HEADER_SIZE + size)) return false;
    this.commit(encodeStructReply(this.bytes, 0, unique, layout, value, size));
    return true;
  }

  /** An error reply (a bare header); nothing if the chain cannot hold even that. */
  error(unique: bigint, errno: number): void {
    this.errno = errno;
    if (this.begin(OUT_HEADER_SIZE)) this.commit(encodeErrorReply(this.bytes, 0, unique, errno));
    else this.length = 0;
  }

  /** The guest's buffers for `size` bytes after the header (a READ's data), if the chain holds them. */
  bodyViews(size: number): Uint8Array[] | undefined {
    if (this.capacity < OUT_HEADER_SIZE + size) return undefined;
    return sliceViews(this.segments, OUT_HEADER_SIZE, size);
  }

  /** The header of a reply whose `bodyLen` bytes were already written through bodyViews(). */
  placed(unique: bigint, bodyLen: number): void {
    this.begin(OUT_HEADER_SIZE);
    encodeHeaderOfPlacedReply(this.bytes, 0, unique, bodyLen);
    this.commit(OUT_HEADER_SIZE);
    this.length = OUT_HEADER_SIZE + bodyLen;
  }
}
