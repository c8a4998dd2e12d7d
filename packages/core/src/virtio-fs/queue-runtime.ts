// The data path of one virtqueue: pops chains and starts one request actor each (RequestRun owns a
// request's steps), gives chains back as their replies are written and notifies the driver by the
// ring's rules. Nothing here waits: a request that blocks only holds its own chain.
import type { ActorRefFrom } from 'xstate';
import { ChainError, type DescriptorChain, type Logger, type Virtqueue, type VirtqueueError } from '@vfsd/vhost';
import { RequestRun } from '../actors/request-run';
import type { RequestState } from '../actors/request.logic';
import type { RingControl, StopMode, virtqueueMachine } from '../actors/virtqueue.machine';
import type { Inspection } from '../actors/inspection';
import type { FuseServer } from '../server/fuse-server';
import { GuestFaults } from './guest-faults';
import { SessionQueue } from './session-queue';

export type { StopMode } from '../actors/virtqueue.machine';

/** One finished request, for the debug log (queue, unique id, opcode, result, latency). */
export interface RequestLogEntry {
  queue: number;
  unique: bigint | null;
  opcode: number | null;
  /** 0 on success, else the errno answered. */
  errno: number;
  /** Bytes written to the chain. */
  len: number;
  latencyUs: number;
  /** The kernel thread id of the request-queue thread that answered it (none: the main thread). */
  thread?: number;
}

/** A read-only view of one ring, for the visualizer (the counters as they are now). */
export interface QueueStats {
  index: number;
  size: number;
  /** Next available entry we will pop / next used entry we will fill (16-bit ring indices). */
  lastAvailIdx: number;
  usedIdx: number;
  /** Chains popped and not yet pushed back. */
  inFlight: number;
  kicks: number;
  notifications: number;
  enabled: boolean;
  broken: string | null;
  stopping: boolean;
}

/** A read-only view of one request in flight, for the visualizer. */
export interface InFlightRequest {
  queue: number;
  head: number;
  unique: bigint | null;
  opcode: number | null;
  nodeid: bigint | null;
  phase: RequestState['phase'];
  interrupted: boolean;
  /** performance.now() when the chain was popped. */
  startedAt: number;
  /** The xstate actor's session id while the request runs as one (someone inspects). */
  actorId: string | null;
}

/** What all queues of one session share: the FUSE server and the waiting requests INTERRUPT can reach. */
export class FuseSession {
  /** Set to receive every finished request (costs a little per request: only at debug level). */
  onRequestDone: ((entry: RequestLogEntry) => void) | null = null;
  /** Requests waiting for the filesystem (one answered inline never shows here: nothing can reach it). */
  readonly byUnique = new Map<bigint, RequestRun>();
  /** Request actors alive now (a leak shows here). */
  liveRequests = 0;
  completed = 0;
  /** What the guest got wrong, counted; logged at debug, above it rate-limited. */
  readonly faults: GuestFaults;

  constructor(
    readonly server: FuseServer,
    readonly log: Logger,
    readonly inspection: Inspection,
    faultLogIntervalMs?: number,
  ) {
    this.faults = new GuestFaults(log, faultLogIntervalMs);
  }

  /** The requests in flight now (decoded, not yet answered), for the visualizer. */
  inFlightRequests(): InFlightRequest[] {
    const out: InFlightRequest[] = [];
    for (const run of this.byUnique.values()) {
      const st = run.snapshot;
      out.push({
        queue: st.queue,
        head: st.head,
        unique: st.unique,
        opcode: st.opcode,
        nodeid: st.nodeid,
        phase: st.phase,
        interrupted: st.interrupted,
        startedAt: st.startedAt,
        actorId: run.actorRef?.sessionId ?? null,
      });
    }
    return out;
  }

  /** FUSE_INTERRUPT: a request still waiting gives up with EINTR. */
  interrupt(unique: bigint): boolean {
    const r = this.byUnique.get(unique);
    if (!r) return false;
    r.interrupt();
    return true;
  }
}

/**
 * Replies pushed within one drain between two notifications (see finished()): a quarter of the chains
 * the driver has out when the drain begins (its queue depth), at least MIN_NOTIFY_BATCH. A fixed 16 held QD 16
 * in lock-step (the driver heard of nothing until all 16 were done): A/B medians there 171k -> 272k
 * ops/s with 4, 3.0 -> 5.5 µs of CPU per request; at QD 64, 16 beat 8 (310k against 287k).
 */
const MIN_NOTIFY_BATCH = 4;

/**
 * How long a queue watches its ring after a drain before it sleeps until the next kick (µs). GETATTR at
 * QD 1: 0 gave about 17k ops/s, 20 74k, 50 and 200 no better; no loss at QD 16-64.
 */
const POLL_US = 20;

export class QueueRuntime extends SessionQueue implements RingControl {
  actor: ActorRefFrom<typeof virtqueueMachine> | null = null;
  /** In a request-queue thread (see RequestQueue): what is answered here, and where the rest goes. */
  servedHere: ReadonlySet<number> | null | undefined = undefined;
  elsewhere: ((run: RequestRun) => void) | undefined = undefined;
  /**
   * Announce replies within a drain (every quarter of the driver's depth), or only at its end. A
   * request-queue thread announces at the end: on 2 cores shared with the driver's threads each call
   * eventfd write that wakes one costs a context switch (35% of the thread's time in perf); GETATTR at
   * QD 16 on each of 2 queue threads went from 430-480k to 650-690k ops/s, p99 251 -> 185 µs. On the
   * main thread (CPU-bound, one queue at QD 32) it made no difference.
   */
  notifyWithinDrain = true;
  /**
   * How long to watch the ring after a drain (µs, see POLL_US). A request-queue thread does not watch
   * while it waits for the main thread's replies (the spin would delay their message), and with queue
   * threads the hiprio queue does not at all: on 2 cores every spin takes the CPU a woken thread needs
   * (a forwarded LOOKUP at QD 1 spent about 130 µs in such waits).
   */
  pollUs = POLL_US;
  mayPoll: () => boolean = () => true;
  private stopping = false;
  private draining = false;
  /** Drains run (kicks that found the queue waiting, and the first of a start). */
  private drains = 0;
  /** Replies pushed in this drain and not yet announced. */
  private unannounced = 0;
  /** Replies per notification in this drain (see MIN_NOTIFY_BATCH). */
  private notifyBatch = MIN_NOTIFY_BATCH;
  private notifyScheduled = false;
  private readonly notifyNow = (): void => {
    this.notifyScheduled = false;
    this.vq.notify();
  };
  private resolveStopped!: () => void;
  /** Resolves when the queue actor reached `stopped`. */
  readonly whenStopped: Promise<void>;
  private readonly startRun = (chain: DescriptorChain): void => {
    this.session.liveRequests++;
    new RequestRun(this, chain).run();
  };
  private readonly chainError = (err: ChainError | VirtqueueError): void => {
    this.session.faults.record(err instanceof ChainError ? 'bad chain' : 'broken ring', err.message);
  };

  constructor(
    readonly vq: Virtqueue,
    session: FuseSession,
  ) {
    super(vq.index, session);
    this.whenStopped = new Promise((r) => (this.resolveStopped = r));
    vq.onSettled = () => {
      if (this.stopping) this.actor?.send({ type: 'requestsSettled' });
    };
  }

  get inFlight(): number {
    return this.vq.inFlight;
  }

  /** The ring's indices and counters now (read-only). */
  stats(): QueueStats {
    const vq = this.vq;
    return {
      index: this.index,
      size: vq.size,
      lastAvailIdx: vq.lastAvailIdx,
      usedIdx: vq.usedIdx,
      inFlight: vq.inFlight,
      kicks: vq.kicks,
      notifications: vq.notifications,
      enabled: vq.enabled,
      broken: vq.broken,
      stopping: this.stopping,
    };
  }

  drain(): void {
    if (this.stopping) return;
    this.drains++;
    do {
      this.draining = true;
      this.notifyBatch = this.notifyWithinDrain ? Math.max(MIN_NOTIFY_BATCH, this.vq.outstanding() >> 2) : Infinity;
      try {
        this.vq.drain(this.startRun, this.chainError);
      } finally {
        this.draining = false;
      }
      this.unannounced = 0;
      this.vq.notify();
      // Bounded polling: the next request often comes within microseconds; watching the ring for it
      // saves the driver a kick and us a wake-up.
    } while (this.pollUs > 0 && !this.stopping && this.mayPoll() && this.vq.pollAvailable(this.pollUs));
  }

  /** A kick: through the queue actor while someone inspects, else straight to its drain while it waits for kicks. */
  kicked(): void {
    const actor = this.actor;
    if (!actor) return;
    if (this.session.inspection.active) actor.send({ type: 'kicked' });
    else if (actor.getSnapshot().value === 'waitingForKick') this.drain();
  }

  beginStop(mode: StopMode): void {
    this.stopping = true;
    this.cancelWaits(mode);
  }

  stopped(): void {
    const vq = this.vq;
    this.session.log.debug(`queue ${this.index} stopped: ${vq.kicks} kicks, ${vq.notifications} notifications, ${this.drains} drains`);
    this.resolveStopped();
  }

  finished(run: RequestRun, len: number, errno: number): void {
    this.settle(run, len, errno);
    this.vq.complete(run.chain, len);
    // Within a drain, replies are announced every notifyBatch pushes (and at its end), so the driver
    // refills while we go on without an eventfd write per reply; with EVENT_IDX the write happens only
    // if the driver asked (used_event). Late replies (the pool's) are announced once per tick.
    if (!this.draining) this.scheduleNotify();
    else if (++this.unannounced >= this.notifyBatch && this.vq.features.eventIdx) {
      this.unannounced = 0;
      this.vq.notify();
    }
  }

  private scheduleNotify(): void {
    if (this.notifyScheduled) return;
    this.notifyScheduled = true;
    queueMicrotask(this.notifyNow);
  }
}
