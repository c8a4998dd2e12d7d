// An fd that in-flight calls may still be using when its owner drops it (FORGET during a GETATTR,
// RELEASE during a waiting lock...). Closing is deferred until the last pin goes: closing earlier would
// let the number be reused and a pending call act on some other file.
export class SharedFd {
  private pins = 0;
  private closing = false;

  constructor(
    readonly fd: number,
    private readonly closeFd: (fd: number) => void,
  ) {}

  get isClosing(): boolean {
    return this.closing;
  }

  /** Some call is using the fd now. */
  get isPinned(): boolean {
    return this.pins > 0;
  }

  /** Returns false when the fd is already being closed. */
  pin(): boolean {
    if (this.closing) return false;
    this.pins++;
    return true;
  }

  unpin(): void {
    this.pins--;
    if (this.pins === 0 && this.closing) this.closeFd(this.fd);
  }

  close(): void {
    if (this.closing) return;
    this.closing = true;
    if (this.pins === 0) this.closeFd(this.fd);
  }
}
