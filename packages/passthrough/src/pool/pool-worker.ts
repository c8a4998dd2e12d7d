// One worker thread of the pool: its Worker, its shared ControlBlock, its observable actor, and the job
// it runs (one at a time, so a hung call holds one thread and never a queue of others behind it).
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { createActor, type Actor, type InspectionEvent, type Observer } from 'xstate';
import { EIO } from '@vfsd/core/abi';
import { kickThread } from './cancel-signal';
import { ControlBlock } from './control-block';
import type { Job } from './job';
import type { RunRequest, WorkerInit, WorkerMessage } from './messages';
import { poolWorkerMachine, type Lane } from './pool-worker.machine';

const WORKER_SCRIPT = path.join(__dirname, 'worker-main.js');

export type PoolWorkerActor = Actor<typeof poolWorkerMachine>;

export interface PoolWorkerHooks {
  /** The worker finished its job (already settled) and can take another. */
  onIdle(worker: PoolWorker): void;
  /** The thread is gone (crash, terminate); its job, if any, was failed with EIO. */
  onExit(worker: PoolWorker): void;
}

export class PoolWorker {
  readonly control = new ControlBlock();
  readonly actor: PoolWorkerActor;
  private readonly thread: Worker;
  private current: Job | undefined;
  private kickTimer: NodeJS.Timeout | undefined;
  private exited = false;
  /** The thread posted 'ready': it has loaded everything (koffi's native module among it). */
  private ready = false;
  private terminateWhenReady = false;
  private readonly exitPromise: Promise<void>;
  private idleWaiters: Array<() => void> = [];
  /** Set by the pool for idle waiters: the timer that retires the worker. */
  retireTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly id: number,
    readonly lane: Lane,
    private readonly hooks: PoolWorkerHooks,
    private readonly kickIntervalMs: number,
    inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void),
  ) {
    this.actor = createActor(poolWorkerMachine, { input: { workerId: id, lane }, inspect }).start();
    const init: WorkerInit = { control: this.control.buffer };
    // trackUnmanagedFds off: fds a worker opens belong to the process (inode and handle tables), not to
    // the thread; with tracking, a retiring worker would close them.
    this.thread = new Worker(WORKER_SCRIPT, { workerData: init, trackUnmanagedFds: false });
    this.thread.on('message', (m: WorkerMessage) => this.onMessage(m));
    // 'error' is always followed by 'exit'; listening keeps it from becoming an uncaught exception.
    this.thread.on('error', () => undefined);
    this.exitPromise = new Promise((resolve) => this.thread.once('exit', () => resolve()));
    this.exitPromise.then(() => this.onThreadExit());
  }

  get busy(): boolean {
    return this.current !== undefined;
  }

  get job(): Job | undefined {
    return this.current;
  }

  get alive(): boolean {
    return !this.exited;
  }

  dispatch(job: Job): void {
    if (this.current) throw new Error(`worker ${this.id} is busy`);
    this.current = job;
    this.actor.send({ type: 'DISPATCH', unique: job.unique, op: job.op.kind, at: Date.now() });
    const req: RunRequest = { seq: job.seq, op: job.op };
    this.thread.postMessage(req);
  }

  /**
   * Cancels the running job if it is `seq`: raises the flag the worker checks before and after a
   * blocking call, then signals the thread until it reports done (a signal sent just before the thread
   * entered the call would be lost, hence the repetition). The job settles with the worker's outcome:
   * EINTR if the call was interrupted, its result if it had already finished.
   */
  cancel(seq: number): void {
    if (!this.current || this.current.seq !== seq || this.kickTimer) return;
    this.control.requestCancel(seq);
    this.actor.send({ type: 'CANCEL', at: Date.now() });
    const kick = (): void => {
      const tid = this.control.tid;
      // Only while the thread is inside this very request: a stray signal must not hit the next one.
      if (tid !== 0 && this.control.runningSeq === seq) kickThread(tid);
    };
    kick();
    this.kickTimer = setInterval(kick, this.kickIntervalMs);
    // The thread itself keeps the process alive while it runs; the timer must not outlive it.
    this.kickTimer.unref();
  }

  /** Resolves when no job is running (at once if idle). */
  whenIdle(): Promise<void> {
    if (!this.current || this.exited) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Resolves when the thread is gone. A thread stuck in an uninterruptible call never goes: race it.
   * One still starting is terminated only once it is ready (or after 1 s): terminating a thread in the
   * middle of loading koffi's native module aborts the process (a failed napi_throw in its init).
   */
  terminate(): Promise<void> {
    if (this.exited) return this.exitPromise;
    if (this.ready) {
      void this.thread.terminate();
    } else if (!this.terminateWhenReady) {
      this.terminateWhenReady = true;
      terminateAfter(this.thread, 1000, this.exitPromise);
    }
    return this.exitPromise;
  }

  /** Lets the process exit even if this thread cannot be joined (stuck in an uninterruptible call). */
  unref(): void {
    this.stopKicking();
    this.thread.unref();
  }

  private stopKicking(): void {
    if (this.kickTimer) clearInterval(this.kickTimer);
    this.kickTimer = undefined;
  }

  private finish(outcome: { ok: true; value: unknown } | { ok: false; errno: number }): void {
    const job = this.current;
    this.stopKicking();
    this.current = undefined;
    this.actor.send({ type: 'DONE', at: Date.now() });
    if (job) job.settle(outcome);
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private onMessage(m: WorkerMessage): void {
    switch (m.type) {
      case 'ready':
        this.ready = true;
        if (this.terminateWhenReady) void this.thread.terminate();
        this.actor.send({ type: 'READY', tid: m.tid });
        return;
      case 'blocking':
        if (this.current?.seq === m.seq) this.actor.send({ type: 'BLOCKING', at: Date.now() });
        return;
      case 'done':
        if (this.current?.seq !== m.seq) return;
        this.finish(m.ok ? { ok: true, value: m.value } : { ok: false, errno: m.errno });
        this.hooks.onIdle(this);
        return;
    }
  }

  private onThreadExit(): void {
    this.exited = true;
    if (this.retireTimer) clearTimeout(this.retireTimer);
    if (this.current) this.finish({ ok: false, errno: EIO });
    this.actor.send({ type: 'EXITED' });
    this.actor.stop();
    this.hooks.onExit(this);
  }
}

/** Terminates `thread` after `ms` unless it has exited by then (the timer holds nothing open). */
export function terminateAfter(thread: Worker, ms: number, exited: Promise<void>): void {
  const force = setTimeout(() => void thread.terminate(), ms);
  force.unref();
  void exited.then(() => clearTimeout(force));
}
