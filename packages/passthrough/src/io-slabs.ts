// Shared buffers for big reads and writes that go through a pool worker. A fresh 1 MiB buffer per
// request costs its page faults (212 µs to read 1 MiB into one against 128 µs into a reused one, here)
// and a structured-clone or transfer on top; a slab is shared memory that both threads see, faulted
// in once and reused: the worker reads into it (or writes from it), the main thread copies between it
// and the guest's buffers.

/**
 * At most `max` slabs of `size` bytes, made when first needed and then reused. When all are in use,
 * take() answers undefined and the caller does without (a request beyond the pool's reach would only
 * wait in its queue holding one).
 */
export class IoSlabs {
  private readonly free: SharedArrayBuffer[] = [];
  private made = 0;

  constructor(
    readonly size: number,
    private readonly max = 16,
  ) {}

  take(): SharedArrayBuffer | undefined {
    const slab = this.free.pop();
    if (slab) return slab;
    if (this.made >= this.max) return undefined;
    this.made++;
    const fresh = new SharedArrayBuffer(this.size);
    // Fault every page in now, not on the worker's first read into it.
    new Uint8Array(fresh).fill(0);
    return fresh;
  }

  /** Back for reuse, once no thread uses it. */
  give(slab: SharedArrayBuffer): void {
    this.free.push(slab);
  }

  /** Never to be reused (a failed op's worker may still hold it): another may be made instead. */
  drop(): void {
    this.made--;
  }

  get inUse(): number {
    return this.made - this.free.length;
  }
}
