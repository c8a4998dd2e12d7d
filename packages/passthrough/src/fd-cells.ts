// The inode and handle fds as the request-queue threads see them: a table in a SharedArrayBuffer,
// one cell per id (nodeid or fh) at id modulo its size. A cell holds the id, a handle's nodeid, the
// fd, and one word: pins << 1 | CLOSED. Every thread pins and unpins with atomic operations on that
// word; the main thread closes by setting CLOSED; whichever thread sees the word become exactly
// CLOSED (no pins left) closes the fd, so the fd number is never reused while a call of any thread
// still uses it. A pin checks the id before and after it counts, so a cell given to a newer id
// meanwhile is not taken for the old one. Ids are never reused (they only grow). An id whose cell
// holds another live id is not published: its requests are the main thread's, as before.
const CELL_BYTES = 32;
/** Word value of a cell nobody holds: closed, no pins. */
const FREE = 1;
const CLOSED = 1;
const PIN = 2;

export class FdCells {
  readonly buffer: SharedArrayBuffer;
  private readonly ids: BigInt64Array; // [4k]: id, [4k+1]: aux
  private readonly words: Int32Array; // [8k+4]: fd, [8k+5]: word
  private readonly mask: bigint;

  /**
   * A new table of `cells` cells (a power of two), or the view of one another thread made. `closeFd`
   * closes an fd whose last pin pinId() dropped (a request-queue thread's own close).
   */
  constructor(
    from: SharedArrayBuffer | number = 1 << 16,
    private readonly closeFd: (fd: number) => void = () => undefined,
  ) {
    const isNew = typeof from === 'number';
    this.buffer = isNew ? new SharedArrayBuffer(from * CELL_BYTES) : from;
    const cells = this.buffer.byteLength / CELL_BYTES;
    if (!Number.isInteger(cells) || (cells & (cells - 1)) !== 0) throw new Error(`fd table of ${cells} cells: not a power of two`);
    this.ids = new BigInt64Array(this.buffer);
    this.words = new Int32Array(this.buffer);
    this.mask = BigInt(cells - 1);
    if (isNew) for (let k = 0; k < cells; k++) this.words[8 * k + 5] = FREE;
  }

  /** The main thread publishes `fd` for `id`: its cell, or -1 when the cell is another live id's. */
  claim(id: bigint, aux: bigint, fd: number): number {
    const k = Number(id & this.mask);
    if (Atomics.load(this.words, 8 * k + 5) !== FREE) return -1;
    Atomics.store(this.ids, 4 * k, id);
    Atomics.store(this.ids, 4 * k + 1, aux);
    Atomics.store(this.words, 8 * k + 4, fd);
    Atomics.store(this.words, 8 * k + 5, 0); // open: pins may count from here
    return k;
  }

  /** Any thread: pins the cell of `id` (with `aux`, when given, checked too): the cell, or -1. */
  pinId(id: bigint, aux?: bigint): number {
    const k = Number(id & this.mask);
    if (Atomics.load(this.ids, 4 * k) !== id) return -1;
    if (!this.pin(k)) return -1;
    // The cell may have been closed and given to another id between the check and the pin.
    if (Atomics.load(this.ids, 4 * k) !== id || (aux !== undefined && Atomics.load(this.ids, 4 * k + 1) !== aux)) {
      const fd = this.fd(k);
      if (this.unpin(k)) this.closeFd(fd);
      return -1;
    }
    return k;
  }

  /** Pins cell k unless it is closed. */
  pin(k: number): boolean {
    const at = 8 * k + 5;
    for (;;) {
      const w = Atomics.load(this.words, at);
      if ((w & CLOSED) !== 0) return false;
      if (Atomics.compareExchange(this.words, at, w, w + PIN) === w) return true;
    }
  }

  fd(k: number): number {
    return Atomics.load(this.words, 8 * k + 4);
  }

  /** True when this was the last pin of a closed cell: the caller closes fd(k) now. */
  unpin(k: number): boolean {
    return Atomics.sub(this.words, 8 * k + 5, PIN) - PIN === CLOSED;
  }

  /** The main thread: no new pins; true when nobody holds a pin (the caller closes fd(k) now). */
  close(k: number): boolean {
    return Atomics.or(this.words, 8 * k + 5, CLOSED) === 0;
  }

  /** Whether a call of any thread holds cell k. */
  isPinned(k: number): boolean {
    return Atomics.load(this.words, 8 * k + 5) >= PIN;
  }
}
