// The pool that runs filesystem calls off the main thread, in two lanes:
//  - regular: `threadPoolSize` workers for calls that finish (stat, open, close...). A cheap call runs
//    inline on the main thread while fewer than `inlineBelow` requests are in flight (one handoff costs
//    more than the syscall; virtiofsd measured the same), and in a worker when the queue is deeper; with
//    size 0 always inline. Each worker holds up to `workerDepth` jobs in a shared-memory ring (see
//    ring.ts), run in order; a worker stuck in one call for a watchdog period gives back the jobs queued
//    behind it, so a hung disk holds one request per worker, not a queue;
//  - waiter: workers spawned on demand (up to maxWaiters) for calls that may block indefinitely
//    (SETLKW, flock without LOCK_NB, a FIFO open). They never take a regular worker, so waiting locks
//    cannot starve the rest, and never run inline, so the main thread never blocks.
// A running call can be cancelled (AbortSignal or shutdown): see PoolWorker.cancel.
import { EINTR, FsError, type Awaitable } from '@vfsd/core/abi';
import type { InspectionEvent, Observer } from 'xstate';
import { installCancelSignalHandler } from './cancel-signal';
import { Job } from './job';
import { NEVER_CANCELLED, type Op, type OpKind, type OpResult } from './ops';
import { PoolWorker, type PoolWorkerActor } from './pool-worker';
import { Ring } from './ring';
import { RingWorker } from './ring-worker';
import { runOp } from './run-op';

/** A worker holding jobs with no progress for this long is slow: new jobs go to other workers first. */
const SLOW_WORKER_MS = 2;

export interface WorkerPoolOptions {
  /** Regular workers (virtiofsd's --thread-pool-size). 0: cheap calls run inline on the main thread. */
  threadPoolSize: number;
  /** Most waiter workers alive at once; more blocking calls queue. Default 64. */
  maxWaiters?: number;
  /** Idle waiter workers kept warm once started (none is started before the first blocking call). Default 1. */
  warmWaiters?: number;
  /** An idle waiter beyond warmWaiters exits after this long. Default 10 s. */
  waiterIdleMs?: number;
  /** Period of the cancel signal while a cancelled call has not returned. Default 2 ms. */
  cancelKickIntervalMs?: number;
  /** How long shutdown() waits for cancelled calls, then for threads to exit. Default 2 s each. */
  shutdownTimeoutMs?: number;
  /**
   * With workers: a cheap call runs inline while the caller has fewer than this many requests in flight
   * (SubmitOptions.depth, this one included), else in a worker. Default 3; 0 or 1: always a worker.
   */
  inlineBelow?: number;
  /**
   * Jobs a regular worker holds at once (run in order). Default 16: handing over a batch is what makes
   * the pool as fast as inline for cheap calls; a worker that stops making progress gets no more jobs
   * (2 ms) and gives back its queued ones (watchdog), so a hung call still holds only its own request.
   */
  workerDepth?: number;
  /** A regular worker with nothing to do polls this long (µs) before sleeping. Default 0. */
  workerSpinUs?: number;
  /**
   * Period of the watchdog for regular jobs: a job still pending after one full period starts following
   * its request's signal, and a worker inside the same call for a period gives back its queued jobs.
   * Default 50 ms.
   */
  watchdogMs?: number;
  /** Passed to every worker actor (xstate inspection); regular worker actors then exist from the start. */
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
  /** Run on the calling thread whatever the depth (an op over the main thread's memory: readInto). */
  inline?: boolean;
  /**
   * Requests the caller has in flight, this one included: decides inline or worker (see inlineBelow).
   * Default: the regular jobs pending in the pool plus the calls submitted in the current synchronous run.
   */
  depth?: number;
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
  readonly inlineBelow: number;
  private readonly workerDepth: number;
  private readonly workerSpinUs: number;
  private readonly watchdogMs: number;

  private readonly regular: RingWorker[] = [];
  private readonly regularQueue: Job[] = [];
  /** Regular jobs submitted and not settled (queued or in a worker). */
  private regularPending = 0;
  private burst = 0;
  private readonly endBurst = (): void => {
    this.burst = 0;
  };
  private readonly regularSettled = (): void => {
    this.regularPending--;
  };
  private tick = 0;
  private watchdog: NodeJS.Timeout | undefined;
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
    this.inlineBelow = options.inlineBelow ?? 3;
    this.workerDepth = Math.max(1, Math.floor(options.workerDepth ?? 16));
    this.workerSpinUs = Math.max(0, options.workerSpinUs ?? 0);
    this.watchdogMs = Math.max(1, options.watchdogMs ?? 50);
    // The cancel handler must exist before the first signal is sent. (ffi-rs needed libc loaded in the
    // main thread before any worker, or a worker's exit crashed the process; koffi does not: see
    // test/process-exit.test.ts.)
    installCancelSignalHandler();
    for (let i = 0; i < this.threadPoolSize; i++) this.spawnRegular();
    // Waiters start with the first blocking call, not here: an isolate costs about 10 MB resident, and
    // most daemons never see a waiting lock. Once started, warmWaiters of them stay.
    if (this.threadPoolSize > 0) {
      // Unref'd: an idle daemon's timer never holds the process.
      this.watchdog = setInterval(() => this.onWatchdog(), this.watchdogMs);
      this.watchdog.unref();
    }
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
    const regular = [...this.regular];
    const waiters = [...this.waiters];
    const starting = (): boolean =>
      regular.some((w) => !w.ready) || waiters.some((w) => w.alive && w.actor.getSnapshot().matches('starting'));
    while (starting()) await new Promise((r) => setTimeout(r, 1));
  }

  /** Runs an op; rejects with FsError(errno). */
  submit<K extends OpKind>(op: Op<K>, options: SubmitOptions = {}): Promise<OpResult<K>> {
    try {
      const v = this.call(op, options);
      return v instanceof Promise ? v : Promise.resolve(v);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Runs an op: inline (see inlineBelow) its result now, or throws FsError(errno) now; in a worker, a
   * promise of it. The data path uses this, so that an inline answer never goes through a promise.
   */
  call<K extends OpKind>(op: Op<K>, options: SubmitOptions = {}): Awaitable<OpResult<K>> {
    const mayBlock = options.mayBlock ?? false;
    if (!mayBlock && (options.inline || this.runsInline(op as Op, options.depth))) {
      const outcome = runOp(op, NEVER_CANCELLED);
      if (outcome.ok) return outcome.value;
      throw new FsError(outcome.errno, op.kind);
    }
    const unique = options.unique ?? 0n;
    // A waiter job follows its signal from the start; a regular one finishes in microseconds, so it
    // reads its request's signal (creating it costs about 4 µs) only if the watchdog finds it pending.
    const signal = options.signal ?? (mayBlock ? options.context?.signal : undefined);
    if (this.closed || signal?.aborted) return Promise.reject(new FsError(EINTR, 'cancelled'));
    return new Promise<OpResult<K>>((resolve, reject) => {
      const job = new Job(this.takeSeq(), op as Op, unique, mayBlock, options.context, this.tick, resolve, reject);
      if (signal) job.watch(signal, () => this.abort(job));
      if (mayBlock) {
        this.startWaiterJob(job);
      } else {
        this.regularPending++;
        job.onSettled = this.regularSettled;
        this.startRegularJob(job);
      }
    });
  }

  /** Whether a cheap call at this depth would run inline (the rule of submit, for a known depth). */
  runsInlineAt(depth: number): boolean {
    return this.threadPoolSize === 0 || (!this.closed && depth < this.inlineBelow);
  }

  private runsInline(op: Op, depth: number | undefined): boolean {
    if (this.threadPoolSize === 0 || this.closed) return this.threadPoolSize === 0 || op.kind === 'close';
    if (!Ring.fits(op)) return true; // a name too long for a slot: the call fails at once (ENAMETOOLONG)
    if (depth === undefined) {
      // The caller does not know: count the jobs pending in the pool and the calls submitted since
      // the current synchronous run began (a burst from one drain of the queue).
      depth = this.regularPending + ++this.burst;
      if (this.burst === 1) queueMicrotask(this.endBurst);
    }
    return depth < this.inlineBelow;
  }

  /** Cancels everything, stops every thread; never waits longer than about 2 x shutdownTimeoutMs. */
  shutdown(): Promise<ShutdownReport> {
    this.shutdownPromise ??= this.doShutdown();
    return this.shutdownPromise;
  }

  private async doShutdown(): Promise<ShutdownReport> {
    this.closed = true;
    if (this.watchdog) clearInterval(this.watchdog);
    for (const job of [...this.regularQueue.splice(0), ...this.waiterQueue.splice(0)]) {
      // A queued close still runs (inline, it is instant): dropping it would leak the fd.
      job.settle(job.op.kind === 'close' ? runOp(job.op, NEVER_CANCELLED) : { ok: false, errno: EINTR });
    }
    // A close is never interrupted: Linux closes the fd even on EINTR, so the caller could not tell.
    for (const w of this.regular) for (const job of w.heldJobs()) if (job.op.kind !== 'close') w.cancel(job);
    const all = [...this.regular, ...this.waiters];
    for (const w of this.waiters) {
      if (w.retireTimer) clearTimeout(w.retireTimer);
      const job = w.job;
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

  private spawn(lane: 'waiter'): PoolWorker {
    const w = new PoolWorker(
      this.nextWorkerId++,
      lane,
      { onIdle: (worker) => this.onIdle(worker), onExit: (worker) => this.onExit(worker) },
      this.kickIntervalMs,
      this.inspect,
    );
    this.waiters.push(w);
    return w;
  }

  private spawnRegular(): RingWorker {
    const w = new RingWorker(
      this.nextWorkerId++,
      {
        onSpace: () => this.pumpRegular(),
        onReturned: (_w, jobs) => this.requeue(jobs),
        onExit: (worker) => this.onRegularExit(worker),
      },
      { slots: this.workerDepth, spinUs: this.workerSpinUs, kickIntervalMs: this.kickIntervalMs, inspect: this.inspect },
    );
    this.regular.push(w);
    return w;
  }

  /**
   * The worker for the next regular job: the busiest one that still has a free slot and made progress
   * within slowWorkerMs. Filling a worker that is already awake before waking another keeps the handoff
   * cheap (one futex wake and one doorbell per batch, not per job) and the threads few on a small
   * machine; more workers join as the queue deepens past workerDepth per worker. A worker whose call has
   * not returned for slowWorkerMs (slow disk) gets no more jobs while another has room: then the least
   * loaded one. Undefined if every worker is full.
   */
  private pickRegular(): RingWorker | undefined {
    let best: RingWorker | undefined;
    let bestFree = this.workerDepth + 1;
    let fallback: RingWorker | undefined;
    let fallbackFree = 0;
    const now = Date.now();
    for (const w of this.regular) {
      const free = w.free;
      if (free === 0) continue;
      if (w.load === 0 || now - w.lastProgress < SLOW_WORKER_MS) {
        if (free < bestFree) {
          best = w;
          bestFree = free;
        }
      } else if (free > fallbackFree) {
        fallback = w;
        fallbackFree = free;
      }
    }
    return best ?? fallback;
  }

  private startRegularJob(job: Job): void {
    const w = this.regularQueue.length === 0 ? this.pickRegular() : undefined;
    if (w) {
      w.push(job);
      return;
    }
    this.regularQueue.push(job);
  }

  /** Hands queued regular jobs to workers with free slots. */
  private pumpRegular(): void {
    const queue = this.regularQueue;
    while (queue.length > 0 && !this.closed) {
      const w = this.pickRegular();
      if (!w) return;
      w.push(queue.shift()!);
    }
  }

  /** Jobs taken back from a worker, not started: they go first. */
  private requeue(jobs: Job[]): void {
    if (this.closed) {
      for (const j of jobs) j.settle(j.op.kind === 'close' ? runOp(j.op, NEVER_CANCELLED) : { ok: false, errno: EINTR });
      return;
    }
    this.regularQueue.unshift(...jobs);
    this.pumpRegular();
  }

  /**
   * Every watchdogMs: regular jobs pending for a whole period start following their request's signal
   * (so FUSE_INTERRUPT reaches a slow call), and a worker inside the same call since the previous tick
   * gives back the jobs queued behind it.
   */
  private onWatchdog(): void {
    const tick = ++this.tick;
    if (this.regularPending === 0) {
      for (const w of this.regular) w.stuckSinceLastCheck();
      return;
    }
    const old = (j: Job): boolean => j.born <= tick - 2 && !j.signal && j.context !== undefined;
    for (const w of this.regular) {
      for (const j of w.heldJobs()) if (old(j)) this.follow(j);
      if (w.stuckSinceLastCheck()) {
        const back = w.takeBackQueued();
        if (back.length > 0) this.requeue(back);
      }
    }
    for (const j of this.regularQueue) if (old(j)) this.follow(j);
  }

  private follow(job: Job): void {
    const signal = job.context!.signal;
    job.watch(signal, () => this.abort(job));
    if (signal.aborted) this.abort(job);
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
    if (job.settled) return;
    const queue = job.mayBlock ? this.waiterQueue : this.regularQueue;
    const i = queue.indexOf(job);
    if (i >= 0) {
      queue.splice(i, 1);
      job.settle({ ok: false, errno: EINTR });
      return;
    }
    if (job.holder instanceof RingWorker) {
      job.holder.cancel(job);
      return;
    }
    for (const w of this.waiters) {
      if (w.job === job) w.cancel(job.seq);
    }
  }

  private onIdle(w: PoolWorker): void {
    if (this.closed) return;
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
    remove(this.waiters, w);
    remove(this.idleWaiters, w);
    if (this.closed) return;
    if (this.waiterQueue.length > 0) this.startWaiterJob(this.waiterQueue.shift()!);
  }

  private onRegularExit(w: RingWorker): void {
    remove(this.regular, w);
    if (this.closed) return;
    // A regular worker that died (crash) is replaced so the pool keeps its size.
    this.spawnRegular();
    this.pumpRegular();
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
