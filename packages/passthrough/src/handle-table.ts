// fh -> open file description, as the Rust virtiofsd's HandleMap. Handles are never reused while open;
// RELEASE removes the entry and the fd closes once no call still uses it.
import { EBADF, FsError } from '@vfsd/core/abi';
import type { FdCells } from './fd-cells';
import { SharedFd } from './shared-fd';

export interface HandleEntry {
  readonly fh: bigint;
  readonly nodeid: bigint;
  readonly file: SharedFd;
}

export class HandleTable {
  private readonly byFh = new Map<bigint, HandleEntry>();
  private nextFh = 1n;

  constructor(
    private readonly closeFd: (fd: number) => void,
    /** Publishes each handle's fd there (with its nodeid), for the request-queue threads. */
    private readonly cells: FdCells | null = null,
  ) {}

  get size(): number {
    return this.byFh.size;
  }

  add(nodeid: bigint, fd: number): HandleEntry {
    const fh = this.nextFh++;
    const entry: HandleEntry = { fh, nodeid, file: new SharedFd(fd, this.closeFd, this.cells, fh, nodeid) };
    this.byFh.set(entry.fh, entry);
    return entry;
  }

  /** The handle with its fd pinned for one call; unpin with entry.file.unpin(). EBADF if unknown. */
  pin(fh: bigint, nodeid: bigint): HandleEntry {
    const entry = this.byFh.get(fh);
    if (!entry || entry.nodeid !== nodeid || !entry.file.pin()) throw new FsError(EBADF, `unknown fh ${fh}`);
    return entry;
  }

  /** RELEASE: forgets the handle; its fd closes after the calls still using it. */
  remove(fh: bigint, nodeid: bigint): HandleEntry {
    const entry = this.byFh.get(fh);
    if (!entry || entry.nodeid !== nodeid) throw new FsError(EBADF, `unknown fh ${fh}`);
    this.byFh.delete(fh);
    entry.file.close();
    return entry;
  }

  /** Migration (source): every open handle. */
  values(): IterableIterator<HandleEntry> {
    return this.byFh.values();
  }

  get nextHandle(): bigint {
    return this.nextFh;
  }

  /** Migration (destination): a handle the guest holds, opened again. */
  restore(fh: bigint, nodeid: bigint, fd: number): HandleEntry {
    if (fh <= 0n || this.byFh.has(fh)) throw new Error(`fh ${fh} is taken`);
    const entry: HandleEntry = { fh, nodeid, file: new SharedFd(fd, this.closeFd, this.cells, fh, nodeid) };
    this.byFh.set(fh, entry);
    if (fh >= this.nextFh) this.nextFh = fh + 1n;
    return entry;
  }

  clear(): void {
    for (const entry of this.byFh.values()) entry.file.close();
    this.byFh.clear();
  }
}
