// A request's identity and its cancellation, as the FileSystem sees them. The AbortController is
// made only when a filesystem asks for the signal (most requests never do).
import type { FuseInHeader } from '../fuse';
import type { RequestContext } from '../filesystem';

export class RequestHandle implements RequestContext {
  readonly unique: bigint;
  readonly uid: number;
  readonly gid: number;
  readonly pid: number;
  private controller: AbortController | null = null;
  private abortReason: string | null = null;

  constructor(
    header: FuseInHeader,
    /** SETLKW and the like: cancelled when the ring stops, not waited for. */
    readonly mayWaitIndefinitely: boolean,
  ) {
    this.unique = header.unique;
    this.uid = header.uid;
    this.gid = header.gid;
    this.pid = header.pid;
  }

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.abortReason !== null) this.controller.abort(this.abortReason);
    }
    return this.controller.signal;
  }

  get aborted(): boolean {
    return this.abortReason !== null;
  }

  abort(reason: string): void {
    if (this.abortReason !== null) return;
    this.abortReason = reason;
    this.controller?.abort(reason);
  }
}
