// The main thread's side of one request-queue thread: starts the thread with copies of the ring's
// fds and guest memory, serves the requests the thread hands over (through the same request actors
// and FUSE server as a queue of the main thread) and posts their replies back, and drives the
// queue's actor through the stop. The ring itself is the thread's: nothing here touches it.
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { DescriptorChain, GuestMemory, closeFd, dupFd, type MemoryRegion, type Virtqueue } from '@vfsd/vhost';
import type { ActorRefFrom } from 'xstate';
import { RequestRun } from '../actors/request-run';
import type { RingControl, StopMode, virtqueueMachine } from '../actors/virtqueue.machine';
import type { QueueThreadPart } from '../filesystem';
import { FuseOpcode } from '../fuse/opcodes';
import type { FuseSession, QueueStats } from '../virtio-fs/queue-runtime';
import { SessionQueue } from '../virtio-fs/session-queue';
import { BatchBuilder, forEachItem, transferOf, type PackedBatch } from './batch';
import { QUEUE_COUNTERS, QueueCounter, type SharedRegion, type ToMain, type ToThread } from './messages';

/** A queue thread's young generation (MB): as the main thread's with --max-semi-space-size=4. */
const YOUNG_GENERATION_MB = 12;

/** Forwarded chains are not guest memory: their buffers are the thread's copies. */
const NO_MEMORY = new GuestMemory([]);

/** Copies of each region's fd for a thread to map. */
function shareRegions(regions: readonly MemoryRegion[]): SharedRegion[] {
  return regions.map((r) => ({ desc: r.desc, fd: r.shareFd() }));
}

/** What the thread serving a queue is and does now, for the inspector. */
export interface QueueThreadStats {
  tid: number;
  cpu: number;
  servedHere: number;
  forwarded: number;
}

export class QueueThread extends SessionQueue implements RingControl {
  actor: ActorRefFrom<typeof virtqueueMachine> | null = null;
  readonly whenStopped: Promise<void>;
  /** INIT was answered through this queue: every thread is to hear of the session. */
  onInit: (() => void) | null = null;
  private readonly worker: Worker;
  private readonly counters: Float64Array;
  private readonly replies = new BatchBuilder();
  private inBatch = false;
  private flushScheduled = false;
  private stopping = false;
  /** The thread reported its ring settled (or died): the queue actor may stop. */
  private threadDone = false;
  private resolveStopped!: () => void;
  private readonly flushNow = (): void => {
    this.flushScheduled = false;
    this.flush();
  };

  constructor(
    readonly vq: Virtqueue,
    kickFd: number,
    session: FuseSession,
    part: QueueThreadPart,
    regions: readonly MemoryRegion[],
    cpus: number[],
  ) {
    super(vq.index, session);
    this.whenStopped = new Promise((r) => (this.resolveStopped = r));
    const counters = new SharedArrayBuffer(QUEUE_COUNTERS * 8);
    this.counters = new Float64Array(counters);
    this.worker = new Worker(path.join(__dirname, 'thread-main.js'), {
      // A worker's isolate sizes its young generation itself (the process's --max-semi-space-size does
      // not reach it): the soak at 2 x QD 64 read 140 MB of anonymous memory without this, 121-124 with it.
      resourceLimits: { maxYoungGenerationSizeMb: YOUNG_GENERATION_MB },
      workerData: {
        index: vq.index,
        size: vq.size,
        addresses: vq.addresses!,
        features: { ...vq.features },
        lastAvailIdx: vq.lastAvailIdx,
        kickFd: dupFd(kickFd),
        callFd: vq.callFd === null ? null : dupFd(vq.callFd),
        regions: shareRegions(regions),
        fs: part,
        logRequests: session.onRequestDone !== null,
        cpus,
        counters,
      },
    });
    this.worker.on('message', (m: ToMain) => this.onMessage(m));
    this.worker.on('error', (e) => {
      this.log.error(`queue ${this.index}: its thread failed: ${e.stack ?? e.message}`);
      this.threadEnded();
    });
    this.worker.on('exit', () => this.threadEnded());
    this.sendSession();
  }

  /** Not zero until the thread has settled its ring (the queue actor's stop waits for that). */
  get inFlight(): number {
    return this.threadDone ? 0 : Math.max(1, this.counters[QueueCounter.inFlight]);
  }

  /** The ring as the thread last published it. */
  stats(): QueueStats & { thread: QueueThreadStats } {
    const c = this.counters;
    return {
      index: this.index,
      size: this.vq.size,
      lastAvailIdx: c[QueueCounter.lastAvailIdx],
      usedIdx: c[QueueCounter.usedIdx],
      inFlight: c[QueueCounter.inFlight],
      kicks: c[QueueCounter.kicks],
      notifications: c[QueueCounter.notifications],
      enabled: !this.threadDone,
      broken: null,
      stopping: this.stopping,
      thread: { tid: c[QueueCounter.tid], cpu: c[QueueCounter.cpu], servedHere: c[QueueCounter.servedHere], forwarded: c[QueueCounter.forwarded] },
    };
  }

  /** Kicks are the thread's. */
  drain(): void {}

  kicked(): void {}

  /** The session INIT negotiated, for the thread's own server (nothing before INIT). */
  sendSession(): void {
    const s = this.session.server;
    if (s.initialized) this.post({ type: 'session', minor: s.decodeOptions.minor, setxattrExt: s.decodeOptions.setxattrExt });
  }

  callFdChanged(): void {
    this.post({ type: 'callFd', fd: this.vq.callFd === null ? null : dupFd(this.vq.callFd) });
  }

  memoryMapped(regions: readonly MemoryRegion[]): void {
    this.post({ type: 'memory', regions: shareRegions(regions) });
  }

  beginStop(mode: StopMode): void {
    this.stopping = true;
    this.cancelWaits(mode);
    this.post({ type: 'stop', mode });
  }

  stopped(): void {
    const c = this.counters;
    this.log.debug(`queue ${this.index} stopped (thread ${c[QueueCounter.tid]}, CPU ${c[QueueCounter.cpu]}): ${c[QueueCounter.servedHere]} requests served there, ${c[QueueCounter.forwarded]} by the main thread; ${c[QueueCounter.kicks]} kicks, ${c[QueueCounter.notifications]} notifications`);
    void this.worker.terminate();
    this.resolveStopped();
  }

  finished(run: RequestRun, len: number, errno: number): void {
    this.settle(run, len, errno);
    this.replies.add(run.chain.head, run.chain.writable, len, 0);
    if (run.snapshot.opcode === FuseOpcode.FUSE_INIT) this.onInit?.();
    if (!this.inBatch && !this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(this.flushNow);
    }
  }

  private onMessage(m: ToMain): void {
    switch (m.type) {
      case 'requests':
        this.serve(m.batch);
        return;
      case 'log':
        this.log[m.level](m.message);
        return;
      case 'fault':
        this.session.faults.record(m.kind, m.detail);
        return;
      case 'requestDone':
        this.session.onRequestDone?.(m.entry);
        return;
      case 'stopped':
        this.vq.lastAvailIdx = m.lastAvailIdx;
        this.vq.usedIdx = m.usedIdx;
        this.threadEnded();
        return;
    }
  }

  /** Forwarded requests, each through a request actor over a chain of the thread's copies. */
  private serve(batch: PackedBatch): void {
    this.inBatch = true;
    try {
      forEachItem(batch, (id, bytes, capacity) => {
        const chain = new DescriptorChain(id, NO_MEMORY);
        chain.readable.push(bytes);
        chain.readableLength = bytes.length;
        chain.writable.push(new Uint8Array(capacity));
        chain.writableLength = capacity;
        this.session.liveRequests++;
        new RequestRun(this, chain).run();
      });
    } finally {
      this.inBatch = false;
    }
    this.flush();
  }

  private flush(): void {
    const batch = this.replies.take();
    if (batch) this.post({ type: 'replies', batch }, transferOf(batch));
  }

  private post(m: ToThread, transfer?: ArrayBuffer[]): void {
    if (this.threadDone) {
      if (m.type === 'callFd' && m.fd !== null) closeFd(m.fd);
      if (m.type === 'memory') m.regions.forEach((r) => closeFd(r.fd));
      return;
    }
    this.worker.postMessage(m, transfer);
  }

  private threadEnded(): void {
    if (this.threadDone) return;
    this.threadDone = true;
    this.actor?.send({ type: 'requestsSettled' });
  }
}
