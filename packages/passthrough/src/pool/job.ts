// One op submitted to the pool, from submit() until its promise settles.
import type { Op } from './ops';

export interface Job {
  readonly seq: number;
  readonly op: Op;
  readonly unique: bigint;
  readonly mayBlock: boolean;
  readonly signal: AbortSignal | undefined;
  /** Settles the submit() promise; called exactly once. */
  settle(outcome: { ok: true; value: unknown } | { ok: false; errno: number }): void;
  /** Removes the abort listener (set while the job is queued or running). */
  detach(): void;
}
