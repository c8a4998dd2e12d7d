// One op submitted to the pool, from submit() until its promise settles.
import { FsError } from '@vfsd/core/abi';
import type { Op } from './ops';

export type Outcome = { ok: true; value: unknown } | { ok: false; errno: number };

export class Job {
  /** The signal being listened to (set at once for waiter jobs, lazily for regular ones: see WorkerPool). */
  signal: AbortSignal | undefined = undefined;
  /** Where a regular job sits in its worker's ring (-1 when not in one). */
  slot = -1;
  /** The worker holding the job, if any. */
  holder: unknown = undefined;
  settled = false;
  /** Called once when the job settles (the pool's count of pending regular jobs). */
  onSettled: (() => void) | undefined = undefined;
  private onAbort: (() => void) | undefined = undefined;

  constructor(
    readonly seq: number,
    readonly op: Op,
    readonly unique: bigint,
    readonly mayBlock: boolean,
    /** The request whose signal to follow, read only when needed (creating an AbortSignal costs µs). */
    readonly context: { readonly signal: AbortSignal } | undefined,
    /** The pool's watchdog tick when submitted. */
    readonly born: number,
    private readonly resolve: (value: never) => void,
    private readonly reject: (err: Error) => void,
  ) {}

  /** Listens to `signal` (once); aborting calls onAbort. */
  watch(signal: AbortSignal, onAbort: () => void): void {
    if (this.signal || this.settled) return;
    this.signal = signal;
    this.onAbort = onAbort;
    signal.addEventListener('abort', onAbort, { once: true });
  }

  /** Settles the submit() promise; only the first call counts. */
  settle(outcome: Outcome): void {
    if (this.settled) return;
    this.settled = true;
    this.holder = undefined;
    this.detach();
    this.onSettled?.();
    if (outcome.ok) this.resolve(outcome.value as never);
    else this.reject(new FsError(outcome.errno, this.op.kind));
  }

  /** Removes the abort listener. */
  detach(): void {
    if (this.signal && this.onAbort) this.signal.removeEventListener('abort', this.onAbort);
    this.onAbort = undefined;
  }
}
