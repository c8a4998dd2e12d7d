// An fd that in-flight calls may still be using when its owner drops it (FORGET during a GETATTR,
// RELEASE during a waiting lock...). Closing is deferred until the last pin goes: closing earlier would
// let the number be reused and a pending call act on some other file. Published in an FdCells table,
// the pins are that table's atomic word, shared with the request-queue threads (see fd-cells.ts).
import type { FdCells } from './fd-cells';

export class SharedFd {
  private pins = 0;
  private closing = false;
  /** The cell in `cells` (-1: not published; the count is this object's). */
  private readonly cell: number;

  constructor(
    readonly fd: number,
    private readonly closeFd: (fd: number) => void,
    private readonly cells: FdCells | null = null,
    id = 0n,
    aux = 0n,
  ) {
    this.cell = cells ? cells.claim(id, aux, fd) : -1;
  }

  // Once closed, this object never touches its cell again but to drop its own pins: a freed cell may
  // already be another id's.
  get isClosing(): boolean {
    return this.closing;
  }

  /** Some call (of any thread) is using the fd now. */
  get isPinned(): boolean {
    if (this.cell >= 0) return !this.closing && this.cells!.isPinned(this.cell);
    return this.pins > 0;
  }

  /** Returns false when the fd is already being closed. */
  pin(): boolean {
    if (this.closing) return false;
    if (this.cell >= 0) return this.cells!.pin(this.cell);
    this.pins++;
    return true;
  }

  unpin(): void {
    if (this.cell >= 0) {
      if (this.cells!.unpin(this.cell)) this.closeFd(this.fd);
      return;
    }
    this.pins--;
    if (this.pins === 0 && this.closing) this.closeFd(this.fd);
  }

  close(): void {
    if (this.closing) return;
    this.closing = true;
    if (this.cell >= 0) {
      if (this.cells!.close(this.cell)) this.closeFd(this.fd);
      return;
    }
    if (this.pins === 0) this.closeFd(this.fd);
  }
}
