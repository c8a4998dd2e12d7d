// The pool that runs filesystem calls off the main thread, in two lanes:
//  - regular: `threadPoolSize` workers for calls that finish (stat, open, close...); with size 0 these
//    run inline on the main thread, which is faster at low queue depth (one handoff costs more than the
//    syscall);
//  - waiter: workers spawned on demand (up to maxWaiters) for calls that may block indefinitely
//    (SETLKW, flock without LOCK_NB, a FIFO open). They never take a regular worker, so waiting locks
//    cannot starve the rest, and never run inline, so the main thread never blocks.
// A running call can be cancelled (AbortSignal or shutdown): see PoolWorker.cancel.
import { EINTR, FsError } from '@vfsd/core';
import type { InspectionEvent, Observer } from 'xstate';
import { ensureLibc } from '../sys/libc';
import { installCancelSignalHandler } from './cancel-signal';
import type { Job } from './job';
import { NEVER_CANCELLED, type Op, type OpKind, type OpResult } from './ops';
import { PoolWorker, type PoolWorkerActor } from './pool-worker';
import { runOp } from './run-op';

export interface WorkerPoolOptions {
  /** Regular workers (virtiofsd's --thread-pool-size). 0: cheap calls run inline on the main thread. */
  threadPoolSize: number;
  /** Most waiter workers alive at once; more blocking calls queue. Default 64. */
  maxWaiters?: number;
  /** Idle waiter workers kept warm (the first is started at once). Default 1. */
  warmWaiters?: number;
  /** An idle waiter beyond warmWaiters exits after this long. Default 10 s. */
  waiterIdleMs?: number;
  /** Period of the cancel signal while a cancelled call has not returned. Default 2 ms. */
  cancelKickIntervalMs?: number;
  /** How long shutdown() waits for cancelled calls, then for threads to exit. Default 2 s each. */
  shutdownTimeoutMs?: number;
  /** Passed to every worker actor (xstate inspection). */
  inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
}

export interface SubmitOptions {
  /** The FUSE request this call serves (shown by the worker actors). */
  unique?: bigint;
  /** Aborting cancels the call: queued, it is dropped; running, it is interrupted (EINTR). */
  signal?: AbortSignal;
  /**
   * Or the request whose signal to follow: read only when the call leaves the main thread, since
   * creating an AbortSignal costs about 4 µs and an inline call never needs one.
   */
  context?: { readonly signal: AbortSignal };
  /** The call may block indefinitely: it goes to the waiter lane. */
  mayBlock?: boolean;
}

export interface ShutdownReport {
  /** Workers that did not return from their call in time (uninterruptible sleep); left unref'd. */
  stuckWorkers: number;
}

export class WorkerPool {
  readonly threadPoolSize: number;
  private readonly maxWaiters: number;
  private readonly warmWaiters: number;
  private readonly waiterIdleMs: number;
  private readonly kickIntervalMs: number;
  private readonly shutdownTimeoutMs: number;
  private readonly inspect: WorkerPoolOptions['inspect'];

  private readonly regular: PoolWorker[] = [];
  private readonly idleRegular: PoolWorker[] = [];
  private readonly regularQueue: Job[] = [];
  private readonly waiters: PoolWorker[] = [];
  private readonly idleWaiters: PoolWorker[] = [];
  private readonly waiterQueue: Job[] = [];

  private nextSeq = 1;
  private nextWorkerId = 1;
  private closed = false;
  private shutdownPromise: Promise<ShutdownReport> | undefined;

  constructor(options: WorkerPoolOptions) {
    if (!Number.isInteger(options.threadPoolSize) || options.threadPoolSize < 0) {
      throw new RangeError(`threadPoolSize must be an integer >= 0, got ${options.threadPoolSize}`);
    }
    this.threadPoolSize = options.threadPoolSize;
    this.maxWaiters = Math.max(1, options.maxWaiters ?? 64);
    this.warmWaiters = Math.min(this.maxWaiters, Math.max(0, options.warmWaiters ?? 1));
    this.waiterIdleMs = options.waiterIdleMs ?? 10_000;
    this.kickIntervalMs = options.cancelKickIntervalMs ?? 2;
    this.shutdownTimeoutMs = options.shutdownTimeoutMs ?? 2_000;
    this.inspect = options.inspect;
    // ffi-rs must be loaded in the main thread before any worker loads it (else a worker's exit crashes
    // the process), and the cancel handler must exist before the first signal is sent.
    ensureLibc();
    installCancelSignalHandler();
    for (let i = 0; i < this.threadPoolSize; i++) this.idleRegular.push(this.spawn('regular'));
    for (let i = 0; i < this.warmWaiters; i++) this.idleWaiters.push(this.spawn('waiter'));
  }

  /** The actors of the live workers, to observe (getSnapshot, subscribe). */
  get workers(): PoolWorkerActor[] {
    return [...this.regular, ...this.waiters].map((w) => w.actor);
  }

  /** Counts for monitoring and tests. */
  stats(): { regular: number; waiters: number; idleWaiters: number; queued: number; waiterQueued: number } {
    return {
      regular: this.regular.length,
      waiters: this.waiters.length,
      idleWaiters: this.idleWaiters.length,
      queued: this.regularQueue.length,
      waiterQueued: this.waiterQueue.length,
    };
  }

  /** Resolves when every worker started so far reported ready (useful before measuring). */
  async ready(): Promise<void> {
    const all = [...this.regular, ...this.waiters];
    while (all.some((w) => w.alive && w.actor.getSnapshot().matches('starting'))) await new Promise((r) => setTimeout(r, 1));
  }

  /** Runs an op; rejects with FsError(errno). */
  submit<K extends OpKind>(op: Op<K>, options: SubmitOptions = {}): Promise<OpResult<K>> {
    const { mayBlock = false, unique = 0n } = options;
    const inline = (!mayBlock && this.threadPoolSize === 0) || (this.closed && op.kind === 'close');
    if (inline) {
      const outcome = runOp(op, NEVER_CANCELLED);
      return outcome.ok ? Promise.resolve(outcome.value) : Promise.reject(new FsError(outcome.errno, op.kind));
    }
    const signal = options.signal ?? options.context?.signal;
    if (this.closed || signal?.aborted) return Promise.reject(new FsError(EINTR, 'cancelled'));
    return new Promise<OpResult<K>>((resolve, reject) => {
      const onAbort = (): void => this.abort(job);
      const job: Job = {
        seq: this.takeSeq(),
        op: op as Op,
        unique,
        mayBlock,
        signal,
        settle: (outcome) => {
          job.detach();
          if (outcome.ok) resolve(outcome.value as OpResult<K>);
          else reject(new FsError(outcome.errno, op.kind));
        },
        detach: () => signal?.removeEventListener('abort', onAbort),
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      if (mayBlock) this.startWaiterJob(job);
      else this.startRegularJob(job);
    });
  }

  /** Cancels everything, stops every thread; never waits longer than about 2 x shutdownTimeoutMs. */
  shutdown(): Promise<ShutdownReport> {
    this.shutdownPromise ??= this.doShutdown();
    return this.shutdownPromise;
  }

  private async doShutdown(): Promise<ShutdownReport> {
    this.closed = true;
    for (const job of [...this.regularQueue.splice(0), ...this.waiterQueue.splice(0)]) {
      // A queued close still runs (inline, it is instant): dropping it would leak the fd.
      job.settle(job.op.kind === 'close' ? runOp(job.op, NEVER_CANCELLED) : { ok: false, errno: EINTR });
    }
    const all = [...this.regular, ...this.waiters];
    for (const w of all) {
      if (w.retireTimer) clearTimeout(w.retireTimer);
      const job = w.job;
      // A close is never interrupted: Linux closes the fd even on EINTR, so the caller could not tell.
      if (job && job.op.kind !== 'close') w.cancel(job.seq);
    }
    await withTimeout(Promise.all(all.map((w) => w.whenIdle())), this.shutdownTimeoutMs);
    const stuck = all.filter((w) => w.busy);
    // A thread stuck in an uninterruptible call cannot be joined: do not let it hold the process.
    for (const w of stuck) w.unref();
    await withTimeout(Promise.all(all.map((w) => w.terminate())), this.shutdownTimeoutMs);
    for (const w of all) if (w.alive) w.unref();
    return { stuckWorkers: stuck.length };
  }

  private takeSeq(): number {
    const seq = this.nextSeq;
    this.nextSeq = seq >= 0x7fffffff ? 1 : seq + 1;
    return seq;
  }

  private spawn(lane: 'regular' | 'waiter'): PoolWorker {
    const w = new PoolWorker(
      this.nextWorkerId++,
      lane,
      { onIdle: (worker) => this.onIdle(worker), onExit: (worker) => this.onExit(worker) },
      this.kickIntervalMs,
      this.inspect,
    );
    (lane === 'regular' ? this.regular : this.waiters).push(w);
    return w;
  }

  private startRegularJob(job: Job): void {
    const w = this.idleRegular.pop();
    if (w) w.dispatch(job);
    else this.regularQueue.push(job);
  }

  private startWaiterJob(job: Job): void {
    let w = this.idleWaiters.pop();
    if (!w && this.waiters.length < this.maxWaiters) w = this.spawn('waiter');
    if (!w) {
      this.waiterQueue.push(job);
      return;
    }
    if (w.retireTimer) clearTimeout(w.retireTimer);
    w.retireTimer = undefined;
    w.dispatch(job);
  }

  private abort(job: Job): void {
    const queue = job.mayBlock ? this.waiterQueue : this.regularQueue;
    const i = queue.indexOf(job);
    if (i >= 0) {
      queue.splice(i, 1);
      job.settle({ ok: false, errno: EINTR });
      return;
    }
    for (const w of job.mayBlock ? this.waiters : this.regular) {
      if (w.job === job) w.cancel(job.seq);
    }
  }

  private onIdle(w: PoolWorker): void {
    if (this.closed) return;
    if (w.lane === 'regular') {
      const next = this.regularQueue.shift();
      if (next) w.dispatch(next);
      else this.idleRegular.push(w);
      return;
    }
    const next = this.waiterQueue.shift();
    if (next) {
      w.dispatch(next);
      return;
    }
    this.idleWaiters.push(w);
    if (this.idleWaiters.length > this.warmWaiters) {
      // Retire surplus waiters after a while; unref'd so an idle daemon's timers never hold the process.
      w.retireTimer = setTimeout(() => {
        const i = this.idleWaiters.indexOf(w);
        if (i >= 0 && this.idleWaiters.length > this.warmWaiters) {
          this.idleWaiters.splice(i, 1);
          void w.terminate();
        }
      }, this.waiterIdleMs);
      w.retireTimer.unref();
    }
  }

  private onExit(w: PoolWorker): void {
    const list = w.lane === 'regular' ? this.regular : this.waiters;
    const idle = w.lane === 'regular' ? this.idleRegular : this.idleWaiters;
    remove(list, w);
    remove(idle, w);
    if (this.closed) return;
    // A regular worker that died (crash) is replaced so the pool keeps its size.
    if (w.lane === 'regular') {
      const fresh = this.spawn('regular');
      this.onIdle(fresh);
    } else if (this.waiterQueue.length > 0) {
      this.startWaiterJob(this.waiterQueue.shift()!);
    }
  }
}

function remove<T>(list: T[], item: T): void {
  const i = list.indexOf(item);
  if (i >= 0) list.splice(i, 1);
}

function withTimeout(p: Promise<unknown>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    void p.then(() => {
      clearTimeout(t);
      resolve();
    });
  });
}
