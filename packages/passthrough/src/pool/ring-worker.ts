// One regular worker thread, seen from the main thread: its Ring of job slots, the jobs it holds (at
// most `slots`, run in order), and its observable actor, made only when someone looks.
//
// The hot path costs a few typed-array stores per job to hand it over (plus one futex wake if the thread
// sleeps) and a few loads to read the result; completions arrive as one doorbell message per drain,
// however many jobs finished meanwhile. Nothing per job touches xstate unless the actor exists.
import * as path from 'node:path';
import { MessageChannel, Worker, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { createActor, type InspectionEvent, type Observer } from 'xstate';
import { EINTR, EIO } from '@vfsd/core/abi';
import { kickThread } from './cancel-signal';
import type { Job } from './job';
import { terminateAfter, type PoolWorkerActor } from './pool-worker';
import { poolWorkerMachine, type PoolWorkerContext } from './pool-worker.machine';
import {
  H_COMPLETED,
  H_DOORBELL,
  H_RUNNING_SEQ,
  H_SLEEPING,
  H_STOP,
  H_SUBMITTED,
  H_TID,
  Ring,
  S_CANCELLED,
  S_STOLEN,
} from './ring';
import type { GenericMessage, RingWorkerInit } from './ring-main';
import type { Op, OpOutcome } from './ops';

const WORKER_SCRIPT = path.join(__dirname, 'ring-main.js');

export interface RingWorkerHooks {
  /** Slots were freed (jobs finished): the pool may hand over more. */
  onSpace(worker: RingWorker): void;
  /** Jobs the worker had not started, taken back (the thread died): the pool runs them elsewhere. */
  onReturned(worker: RingWorker, jobs: Job[]): void;
  /** The thread is gone; its running job, if any, was failed with EIO. */
  onExit(worker: RingWorker): void;
}

export interface RingWorkerOptions {
  slots: number;
  spinUs: number;
  kickIntervalMs: number;
  inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
}

export class RingWorker {
  readonly lane = 'regular' as const;
  private readonly ring: Ring;
  private readonly h: Int32Array;
  private readonly slots: number;
  private readonly jobs: Array<Job | undefined>;
  private readonly thread: Worker;
  /** Our end of the GENERIC ops' channel: never started, read only with receiveMessageOnPort. */
  private readonly port: MessagePort;
  private readonly exitPromise: Promise<void>;
  /** Slots handed over (wrapping) and slots the worker passed and we drained. */
  private submitted = 0;
  private consumed = 0;
  private writeSlot = 0;
  private readSlot = 0;
  /** Unsettled jobs in the slots. */
  private held = 0;
  private started = false;
  private exited = false;
  private terminating = false;
  private tid = 0;
  private kickTimer: NodeJS.Timeout | undefined;
  private kickSeq = 0;
  private idleWaiters: Array<() => void> = [];
  /** H_RUNNING_SEQ seen at the previous watchdog tick. */
  private lastRunning = 0;
  // What the actor shows, kept in plain fields until the actor exists.
  private completed = 0;
  private since = Date.now();
  private actorRef: PoolWorkerActor | undefined;

  constructor(
    readonly id: number,
    private readonly hooks: RingWorkerHooks,
    private readonly options: RingWorkerOptions,
  ) {
    this.slots = options.slots;
    this.ring = new Ring(options.slots);
    this.h = this.ring.i32;
    this.jobs = new Array<Job | undefined>(options.slots).fill(undefined);
    if (options.inspect) this.materialize();
    const channel = new MessageChannel();
    this.port = channel.port1;
    this.port.unref();
    const init: RingWorkerInit = { ring: this.ring.buffer, slots: options.slots, spinUs: options.spinUs, port: channel.port2 };
    // trackUnmanagedFds off: fds a worker opens belong to the process (inode and handle tables).
    this.thread = new Worker(WORKER_SCRIPT, { workerData: init, transferList: [channel.port2], trackUnmanagedFds: false });
    this.thread.on('message', (m: unknown) => {
      if (m === 0) this.drain();
      else this.onReady(m as { tid: number });
    });
    this.thread.on('error', () => undefined);
    this.exitPromise = new Promise((resolve) => this.thread.once('exit', () => resolve()));
    void this.exitPromise.then(() => this.onThreadExit());
  }

  /** The observable actor; created on first access from the plain fields, then kept up to date. */
  get actor(): PoolWorkerActor {
    return this.actorRef ?? this.materialize();
  }

  get alive(): boolean {
    return !this.exited;
  }

  get ready(): boolean {
    return this.started || this.exited;
  }

  /** Jobs held (running or queued in the ring). */
  get load(): number {
    return this.held;
  }

  /** Slots available for new jobs (a slot frees when the thread has passed it). */
  get free(): number {
    return this.exited ? 0 : this.slots - ((this.submitted - this.consumed) | 0);
  }

  /** Date.now() of the last job handed over to an idle worker or finished: how recent its progress is. */
  get lastProgress(): number {
    return this.since;
  }

  get busy(): boolean {
    return this.held > 0;
  }

  /** The unsettled jobs held, oldest first. */
  heldJobs(): Job[] {
    const out: Job[] = [];
    let s = this.readSlot;
    for (let n = (this.submitted - this.consumed) | 0; n > 0; n--) {
      const j = this.jobs[s];
      if (j) out.push(j);
      s = s + 1 === this.slots ? 0 : s + 1;
    }
    return out;
  }

  /** Hands a job to the thread. The caller checked `free > 0`. */
  push(job: Job): void {
    const slot = this.writeSlot;
    if (!Ring.isCompact(job.op.kind)) this.port.postMessage({ seq: job.seq, op: postable(job.op) } satisfies GenericMessage);
    this.ring.write(slot, job.seq, job.op);
    this.jobs[slot] = job;
    job.slot = slot;
    job.holder = this;
    this.writeSlot = slot + 1 === this.slots ? 0 : slot + 1;
    this.submitted = (this.submitted + 1) | 0;
    const h = this.h;
    Atomics.store(h, H_SUBMITTED, this.submitted);
    // One wake per sleep: whoever flips SLEEPING back to 0 owns the wake-up.
    if (Atomics.load(h, H_SLEEPING) === 1 && Atomics.compareExchange(h, H_SLEEPING, 1, 0) === 1) Atomics.notify(h, H_SUBMITTED, 1);
    if (this.held++ === 0) this.since = Date.now();
    if (this.actorRef) {
      if (this.held === 1) this.actorRef.send({ type: 'DISPATCH', unique: job.unique, op: job.op.kind, at: this.since, inFlight: 1 });
      else this.actorRef.send({ type: 'QUEUED', inFlight: this.held });
    }
  }

  /** Reads the results of every slot the thread passed and settles their jobs. */
  drain(): void {
    const h = this.h;
    // Clear the bell first: a completion after this point rings again.
    Atomics.store(h, H_DOORBELL, 0);
    const done = Atomics.load(h, H_COMPLETED);
    if (done === this.consumed) return;
    let settled = 0;
    while (this.consumed !== done) {
      const slot = this.readSlot;
      const job = this.jobs[slot];
      this.readSlot = slot + 1 === this.slots ? 0 : slot + 1;
      this.consumed = (this.consumed + 1) | 0;
      if (!job) continue; // cancelled or stolen before it ran: already settled or moved
      this.jobs[slot] = undefined;
      if (this.kickSeq === job.seq) this.stopKicking();
      job.settle(Ring.isCompact(job.op.kind) ? this.ring.readOutcome(slot, job.op.kind) : this.receiveOutcome(job.seq));
      settled++;
    }
    if (settled > 0) this.afterSettled(settled);
    this.hooks.onSpace(this);
  }

  /**
   * Cancels a job this worker holds: not started yet, it is taken back and fails with EINTR at once;
   * running, the cancel flag is raised and the thread is signalled until it returns (EINTR if the call
   * was interrupted, its result if it had finished).
   */
  cancel(job: Job): void {
    if (job.holder !== this || job.settled) return;
    const slot = job.slot;
    if (this.ring.takeBack(slot, S_CANCELLED)) {
      this.jobs[slot] = undefined;
      job.settle({ ok: false, errno: EINTR });
      this.afterSettled(1);
      return;
    }
    this.ring.requestCancel(slot);
    if (this.kickTimer) return; // already kicking another job: that one finishes first anyway
    this.kickSeq = job.seq;
    this.actorRef?.send({ type: 'CANCEL', at: Date.now() });
    const kick = (): void => {
      // Only while the thread is inside this very job: a stray signal must not hit the next one.
      if (this.tid !== 0 && Atomics.load(this.h, H_RUNNING_SEQ) === job.seq) kickThread(this.tid);
    };
    kick();
    this.kickTimer = setInterval(kick, this.options.kickIntervalMs);
    this.kickTimer.unref();
  }

  /** Takes back every job the thread has not started (to run them elsewhere). */
  takeBackQueued(): Job[] {
    const out: Job[] = [];
    let s = this.readSlot;
    for (let n = (this.submitted - this.consumed) | 0; n > 0; n--) {
      const j = this.jobs[s];
      if (j && this.ring.takeBack(s, S_STOLEN)) {
        this.jobs[s] = undefined;
        j.holder = undefined;
        j.slot = -1;
        out.push(j);
      }
      s = s + 1 === this.slots ? 0 : s + 1;
    }
    if (out.length > 0) this.afterSettled(out.length);
    return out;
  }

  /** True if the thread has been inside the same job since the previous call (a hung call). */
  stuckSinceLastCheck(): boolean {
    const running = Atomics.load(this.h, H_RUNNING_SEQ);
    const stuck = running !== 0 && running === this.lastRunning;
    this.lastRunning = running;
    return stuck;
  }

  /** Resolves when no job is held (at once if none). */
  whenIdle(): Promise<void> {
    if (this.held === 0 || this.exited) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Resolves when the thread is gone. A thread stuck in an uninterruptible call never goes: race it.
   * A started thread is asked to leave its loop and exits on its own (terminate() only if it has not
   * after a while); one still starting is given time to finish loading first: terminating a thread
   * in the middle of loading the native library crashes the process (koffi: a failed napi_throw in
   * its module init aborts; ffi-rs had a glibc tcache abort at exit).
   */
  terminate(): Promise<void> {
    if (!this.exited && !this.terminating) {
      this.terminating = true;
      Atomics.store(this.h, H_STOP, 1);
      Atomics.notify(this.h, H_SUBMITTED);
      terminateAfter(this.thread, this.started ? 200 : 1000, this.exitPromise);
    }
    return this.exitPromise;
  }

  /** Lets the process exit even if this thread cannot be joined. */
  unref(): void {
    this.stopKicking();
    this.thread.unref();
  }

  /** The outcome the thread posted for a GENERIC job (before marking its slot DONE). */
  private receiveOutcome(seq: number): OpOutcome {
    for (;;) {
      const m = receiveMessageOnPort(this.port);
      if (!m) return { ok: false, errno: EIO };
      const msg = m.message as GenericMessage;
      if (msg.seq === seq && msg.outcome) return msg.outcome;
    }
  }

  private afterSettled(n: number): void {
    this.held -= n;
    this.completed += n;
    if (this.held > 0) {
      this.since = Date.now();
      if (this.actorRef) {
        const head = this.heldJobs()[0];
        this.actorRef.send({ type: 'NEXT', unique: head.unique, op: head.op.kind, at: this.since, inFlight: this.held, completed: this.completed });
      }
      return;
    }
    this.since = Date.now();
    this.actorRef?.send({ type: 'DONE', at: this.since, completed: this.completed });
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private onReady(m: { tid: number }): void {
    this.started = true;
    this.tid = m.tid || Atomics.load(this.h, H_TID);
    this.actorRef?.send({ type: 'READY', tid: this.tid });
  }

  private stopKicking(): void {
    if (this.kickTimer) clearInterval(this.kickTimer);
    this.kickTimer = undefined;
    this.kickSeq = 0;
  }

  private materialize(): PoolWorkerActor {
    const head = this.held > 0 ? this.heldJobs()[0] : undefined;
    const context: PoolWorkerContext = {
      workerId: this.id,
      lane: 'regular',
      tid: this.tid,
      unique: head?.unique,
      op: head?.op.kind,
      since: this.since,
      completed: this.completed,
      inFlight: this.held,
    };
    const value = this.exited ? 'exited' : head ? (this.kickTimer ? 'cancelling' : 'busy') : this.started ? 'idle' : 'starting';
    const snapshot = poolWorkerMachine.resolveState({ value, context });
    this.actorRef = createActor(poolWorkerMachine, { snapshot, input: { workerId: this.id, lane: 'regular' }, inspect: this.options.inspect }).start();
    return this.actorRef;
  }

  private onThreadExit(): void {
    if (this.exited) return;
    this.exited = true; // no new jobs from here on (free is 0)
    // Results the thread wrote before it went still count.
    this.drain();
    this.stopKicking();
    const returned = this.takeBackQueued();
    const failed = this.heldJobs();
    for (const j of failed) {
      this.jobs[j.slot] = undefined;
      j.settle({ ok: false, errno: EIO });
    }
    if (failed.length > 0) this.afterSettled(failed.length);
    this.actorRef?.send({ type: 'EXITED' });
    this.actorRef?.stop();
    if (returned.length > 0) this.hooks.onReturned(this, returned);
    this.hooks.onExit(this);
  }
}

/**
 * The op as it may cross to a worker: a message carries a typed array's whole ArrayBuffer, so a name
 * or data that is a view into something bigger (guest memory, a decoded request) is copied to its own
 * bytes first. Without this a 1 MiB WRITE taken from guest memory posted all of guest RAM (36 ms).
 */
export function postable(op: Op): Op {
  let out: Record<string, unknown> | undefined;
  for (const [k, v] of Object.entries(op)) {
    if (v instanceof Uint8Array && v.byteLength !== v.buffer.byteLength) {
      const copy: Record<string, unknown> = out ?? { ...op };
      copy[k] = Uint8Array.prototype.slice.call(v);
      out = copy;
    }
  }
  return out ? (out as unknown as Op) : op;
}
