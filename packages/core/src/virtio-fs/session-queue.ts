// What every queue of a FUSE session is to its request actors (RequestQueue), whoever serves its ring:
// the main thread (QueueRuntime), or a request-queue thread whose handed-over requests the main thread
// serves (QueueThread). It keeps the requests that wait for the filesystem, where interrupts and a
// ring stop reach them, and counts and logs each one answered.
import type { RequestQueue, RequestRun } from '../actors/request-run';
import type { StopMode } from '../actors/virtqueue.machine';
import type { DecodeFailure } from '../fuse/decode-error';
import type { Logger } from '@vfsd/vhost';
import type { FuseServer } from '../server/fuse-server';
import type { FuseSession } from './queue-runtime';

/** Scratch for small replies that do not fit the first writable segment (a Linux out header has its own). */
const SCRATCH_BYTES = 64 << 10;

export abstract class SessionQueue implements RequestQueue {
  readonly scratch = new Uint8Array(SCRATCH_BYTES);
  /** Requests of this queue waiting for the filesystem. */
  private readonly waitingRuns = new Set<RequestRun>();

  constructor(
    readonly index: number,
    protected readonly session: FuseSession,
  ) {}

  get server(): FuseServer {
    return this.session.server;
  }

  get log(): Logger {
    return this.session.log;
  }

  get inspect(): RequestQueue['inspect'] {
    return this.session.inspection.requestInspect;
  }

  interrupt(unique: bigint): void {
    this.session.interrupt(unique);
  }

  guestFault(kind: DecodeFailure, detail: string): void {
    this.session.faults.record(kind, detail);
  }

  waiting(run: RequestRun): void {
    this.waitingRuns.add(run);
    this.session.byUnique.set(run.handle!.unique, run);
  }

  abstract finished(run: RequestRun, len: number, errno: number): void;

  /** A ring stop: waits that may last forever give up (every wait, when the front-end is gone). */
  protected cancelWaits(mode: StopMode): void {
    for (const run of this.waitingRuns) {
      const h = run.handle!;
      if (mode === 'cancelAll' || h.mayWaitIndefinitely) h.abort(mode === 'cancelAll' ? 'front-end disconnected' : 'ring stopped');
    }
  }

  /** The request is answered: no longer waiting, logged (when the session logs requests) and counted. */
  protected settle(run: RequestRun, len: number, errno: number): void {
    const session = this.session;
    if (this.waitingRuns.delete(run)) session.byUnique.delete(run.handle!.unique);
    const log = session.onRequestDone;
    if (log) {
      const st = run.snapshot;
      log({ queue: this.index, unique: st.unique, opcode: st.opcode, errno, len, latencyUs: (performance.now() - st.startedAt) * 1000 });
    }
    session.liveRequests--;
    session.completed++;
  }
}
