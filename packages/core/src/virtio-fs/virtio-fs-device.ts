// The virtio-fs device: the vhost-user back-end's view of our actor system. Each front-end
// connection gets one device actor; each started ring a virtqueue actor; each chain a request actor.
import { createActor } from 'xstate';
import type { Logger, MemoryRegion, VhostUserDevice, Virtqueue } from '@vfsd/vhost';
import { deviceMachine } from '../actors/device.machine';
import { Inspection } from '../actors/inspection';
import type { FileSystem } from '../filesystem';
import { FuseServer } from '../server/fuse-server';
import { decodeDeviceState, encodeDeviceState } from './device-state';
import type { GuestFaultCounts } from './guest-faults';
import { FuseSession, QueueRuntime, type InFlightRequest, type QueueStats, type RequestLogEntry } from './queue-runtime';
import { QueueThread, type QueueThreadStats } from '../queue-thread/queue-thread';

export interface VirtioFsDeviceOptions {
  fs: FileSystem;
  /** Request queues besides the hiprio queue (QEMU's num-request-queues). */
  requestQueues: number;
  logger: Logger;
  inspection?: Inspection;
  /** Called for every finished request (the daemon logs them at debug level). */
  onRequestDone?: (entry: RequestLogEntry) => void;
  /** At most one warn line about guest faults per this many ms (default GUEST_FAULT_LOG_INTERVAL_MS). */
  faultLogIntervalMs?: number;
  /**
   * Each request queue in a thread of its own (when the filesystem has a queue part and the ring a
   * kick fd); the hiprio queue and the control plane stay on the main thread.
   */
  queueThreads?: boolean;
  /** With queueThreads: the CPU each request queue's thread is bound to, in queue order (request queue 1 first). */
  queueCpus?: readonly number[];
  /**
   * The tag the device advertises in its config space (VHOST_USER_PROTOCOL_F_CONFIG), as the Rust
   * virtiofsd's --tag: at most 36 bytes of UTF-8. QEMU 10 takes the tag from its own property.
   */
  tag?: string;
}

/** struct virtio_fs_config: tag[36] (UTF-8, NUL-padded), then le32 num_request_queues. */
export const VIRTIO_FS_TAG_MAX = 36;

export function virtioFsConfig(tag: string, requestQueues: number): Uint8Array {
  const name = Buffer.from(tag, 'utf8');
  if (name.length === 0 || name.length > VIRTIO_FS_TAG_MAX) throw new RangeError(`a tag is 1 to ${VIRTIO_FS_TAG_MAX} bytes of UTF-8 (got ${name.length})`);
  const config = Buffer.alloc(VIRTIO_FS_TAG_MAX + 4);
  name.copy(config, 0);
  config.writeUInt32LE(requestQueues, VIRTIO_FS_TAG_MAX);
  return config;
}

/** Guest faults since the front-end connected: in all and by kind. */
export interface GuestFaultStats {
  total: number;
  byKind: GuestFaultCounts;
}

export class VirtioFsDevice implements VhostUserDevice {
  readonly numQueues: number;
  readonly features = 0n;
  readonly config?: Uint8Array;
  readonly actor;
  readonly session: FuseSession;
  private readonly runtimes = new Map<number, QueueRuntime | QueueThread>();
  /** The memory table last mapped (request-queue threads map it too). */
  private regions: readonly MemoryRegion[] = [];

  constructor(private readonly options: VirtioFsDeviceOptions) {
    this.numQueues = 1 + options.requestQueues;
    if (options.tag !== undefined) this.config = virtioFsConfig(options.tag, options.requestQueues);
    const inspection = options.inspection ?? new Inspection();
    this.session = new FuseSession(new FuseServer(options.fs), options.logger, inspection, options.faultLogIntervalMs);
    this.session.onRequestDone = options.onRequestDone ?? null;
    this.actor = createActor(deviceMachine, { inspect: inspection.inspect });
    this.actor.start();
  }

  /** Rings served by other threads write guest memory where no dirty log reaches. */
  get migratable(): boolean {
    return !this.options.queueThreads;
  }

  featuresNegotiated(features: bigint): void {
    this.actor.send({ type: 'featuresNegotiated', features });
  }

  memoryMapped(regions: readonly MemoryRegion[]): void {
    this.regions = regions;
    this.actor.send({ type: 'memoryMapped', regions: regions.length });
    for (const r of this.runtimes.values()) if (r instanceof QueueThread) r.memoryMapped(regions);
  }

  queueStarted(vq: Virtqueue, kickFd: number | null): boolean {
    const part = this.options.queueThreads && vq.index > 0 && kickFd !== null ? this.options.fs.queueThreadPart?.() : undefined;
    const cpu = this.options.queueCpus?.[vq.index - 1];
    const runtime = part ? new QueueThread(vq, kickFd!, this.session, part, this.regions, cpu === undefined ? [] : [cpu]) : new QueueRuntime(vq, this.session);
    if (runtime instanceof QueueThread) runtime.onInit = () => this.sessionNegotiated();
    else if (vq.index === 0 && this.options.queueThreads) runtime.pollUs = 0; // see QueueRuntime.pollUs
    this.runtimes.set(vq.index, runtime);
    this.actor.send({ type: 'queueStarted', runtime });
    const child = this.actor.getSnapshot().context.queues[vq.index];
    if (!child) throw new Error(`queue ${vq.index}: no virtqueue actor was started`);
    runtime.actor = child;
    return runtime instanceof QueueThread;
  }

  callFdChanged(vq: Virtqueue): void {
    const r = this.runtimes.get(vq.index);
    if (r instanceof QueueThread) r.callFdChanged();
  }

  /** INIT was answered on a thread's queue: every thread's server takes the session. */
  private sessionNegotiated(): void {
    for (const r of this.runtimes.values()) if (r instanceof QueueThread) r.sendSession();
  }

  kicked(vq: Virtqueue): void {
    this.runtimes.get(vq.index)?.kicked();
  }

  async stopQueue(vq: Virtqueue, reason: 'stop' | 'disconnect'): Promise<void> {
    const runtime = this.runtimes.get(vq.index);
    if (!runtime?.actor) return;
    runtime.actor.send({ type: 'stopRequested', mode: reason === 'disconnect' ? 'cancelAll' : 'drain' });
    await runtime.whenStopped;
    this.runtimes.delete(vq.index);
  }

  /** Queues are stopped; the filesystem releases the session (waits cancelled, workers freed). */
  async disconnected(): Promise<void> {
    this.session.faults.close();
    this.actor.send({ type: 'disconnected' });
    await this.options.fs.shutdown?.();
    this.actor.send({ type: 'queuesSettled' });
  }

  /** Live migration, source side (every ring stopped): the FUSE session and the filesystem's tables. */
  async saveState(): Promise<Uint8Array> {
    this.actor.send({ type: 'savingStarted' });
    try {
      return encodeDeviceState(await this.session.server.saveState());
    } finally {
      this.actor.send({ type: 'migrationEnded' });
    }
  }

  /** Destination side, before the rings start: the guest goes on with the session it had. */
  async loadState(bytes: Uint8Array): Promise<void> {
    this.actor.send({ type: 'loadingStarted' });
    try {
      const ctx = { unique: 0n, uid: 0, gid: 0, pid: 0, signal: new AbortController().signal };
      for (const w of await this.session.server.loadState(decodeDeviceState(bytes), ctx)) this.options.logger.warn(w);
    } finally {
      this.actor.send({ type: 'migrationEnded' });
    }
  }

  /** Each started ring's indices and counters, with its queue actor (read-only, for the visualizer). */
  queueStats(): Array<QueueStats & { actor: QueueRuntime['actor']; thread?: QueueThreadStats }> {
    return [...this.runtimes.values()].map((r) => ({ ...r.stats(), actor: r.actor }));
  }

  /** The requests in flight on every queue (read-only, for the visualizer). */
  inFlightRequests(): InFlightRequest[] {
    return this.session.inFlightRequests();
  }

  /** Requests answered since the front-end connected. */
  get completedRequests(): number {
    return this.session.completed;
  }

  /** What the guest got wrong since it connected (a copy). */
  get guestFaults(): GuestFaultStats {
    const f = this.session.faults;
    return { total: f.total, byKind: { ...f.counts } };
  }

  get liveRequests(): number {
    return this.session.liveRequests;
  }
}
