// The vhost-user back-end for one front-end connection, shaped like the spec (and libvhost-user):
// one handler per request, state per vring, messages handled strictly in order.
import * as fs from 'fs';
import { Connection, ConnectionHandler, RawMessage } from '../transport/listener';
import { DirtyLog } from '../memory/dirty-log';
import { closeFd } from '../sys/close-fd';
import { GuestMemory, MemoryRegion, toAddress } from '../memory/guest-memory';
import { EventFdWatcher } from '../sys/eventfd';
import { isValidQueueSize } from '../virtqueue/ring-layout';
import { Virtqueue } from '../virtqueue/virtqueue';
import {
  FLAG_NEED_REPLY,
  FLAG_REPLY,
  FLAG_VERSION,
  FLAG_VERSION_MASK,
  MAX_MEM_SLOTS,
  MEMORY_REGION_SIZE,
  MemoryRegionDesc,
  ProtocolFeature,
  Request,
  SINGLE_REGION_SIZE,
  VHOST_F_LOG_ALL,
  VHOST_USER_F_PROTOCOL_FEATURES,
  VHOST_USER_LOG_SIZE,
  VHOST_VRING_F_LOG,
  VIRTIO_F_VERSION_1,
  VIRTIO_RING_F_EVENT_IDX,
  VIRTIO_RING_F_INDIRECT_DESC,
  VRING_ADDR_SIZE,
  VRING_IDX_MASK,
  VRING_NOFD_MASK,
  VRING_STATE_SIZE,
  DEVICE_STATE_NO_FD,
  DEVICE_STATE_PARAMS_SIZE,
  MIGRATION_PHASE_STOPPED,
  TransferDirection,
  bit,
  decodeDeviceStateParams,
  decodeLog,
  decodeMemoryTable,
  decodeSingleRegion,
  decodeVringAddr,
  decodeVringState,
  encodeMessage,
  encodeU64,
  encodeVringState,
  requestName,
} from '../protocol/messages';
import { Logger, VhostUserDevice, consoleLogger } from './device';
import { TransferOutcome, loadFrom, saveInto } from './state-transfer';

/** The message cannot be trusted (bad size, bad version): the connection is dropped. */
export class ProtocolError extends Error {}
/** The request failed: answered with a failure ack when one is asked for, the session goes on. */
export class RequestFailed extends Error {}

export const OFFERED_PROTOCOL_FEATURES =
  bit(ProtocolFeature.MQ) |
  bit(ProtocolFeature.LOG_SHMFD) |
  bit(ProtocolFeature.REPLY_ACK) |
  bit(ProtocolFeature.BACKEND_REQ) |
  bit(ProtocolFeature.CONFIGURE_MEM_SLOTS) |
  bit(ProtocolFeature.STATUS);

const RING_FEATURES = bit(VIRTIO_F_VERSION_1) | bit(VIRTIO_RING_F_INDIRECT_DESC) | bit(VIRTIO_RING_F_EVENT_IDX) | bit(VHOST_F_LOG_ALL);

/** Requests whose own reply makes a REPLY_ACK redundant. */
const HAS_REPLY = new Set<number>([
  Request.GET_CONFIG,
  Request.GET_FEATURES,
  Request.GET_PROTOCOL_FEATURES,
  Request.GET_QUEUE_NUM,
  Request.GET_VRING_BASE,
  Request.GET_MAX_MEM_SLOTS,
  Request.GET_STATUS,
  Request.SET_LOG_BASE,
  Request.SET_DEVICE_STATE_FD,
  Request.CHECK_DEVICE_STATE,
]);

interface VringSlot {
  vq: Virtqueue;
  kick: EventFdWatcher | null;
  /** SET_VRING_KICK arrived (with an fd, or the no-fd flag: then the ring is polled). */
  started: boolean;
  pollTimer: NodeJS.Timeout | null;
  errFd: number | null;
}


export interface BackendStats {
  messages: number;
  failedRequests: number;
}

export class VhostUserBackend implements ConnectionHandler {
  private ackedFeatures = 0n;
  private protocolFeatures = 0n;
  private status = 0;
  private memory: GuestMemory | null = null;
  private regions: MemoryRegion[] = [];
  /** Regions no longer in the table, unmapped once no chain in flight can still point into them. */
  private retired: MemoryRegion[] = [];
  private backendReqFd: number | null = null;
  /** The last SET_DEVICE_STATE_FD transfer, for CHECK_DEVICE_STATE. */
  private transfer: Promise<TransferOutcome> | null = null;
  /** The dirty-page log shared by SET_LOG_BASE; used while VHOST_F_LOG_ALL is acked. */
  private dirtyLog: DirtyLog | null = null;
  private readonly vrings: VringSlot[];
  private chain: Promise<void> = Promise.resolve();
  private gone = false;
  readonly stats: BackendStats = { messages: 0, failedRequests: 0 };
  private finishedResolve!: () => void;
  /** Resolves once the connection is gone and every resource of it is released. */
  readonly finished: Promise<void>;

  constructor(
    private readonly conn: Connection,
    readonly device: VhostUserDevice,
    private readonly log: Logger = consoleLogger,
  ) {
    this.finished = new Promise((r) => (this.finishedResolve = r));
    this.vrings = Array.from({ length: device.numQueues }, (_, i) => {
      const vq = new Virtqueue(i);
      vq.onSettled = () => this.collectRetired();
      return { vq, kick: null, started: false, pollTimer: null, errFd: null };
    });
  }

  get queues(): readonly Virtqueue[] {
    return this.vrings.map((s) => s.vq);
  }

  get offeredFeatures(): bigint {
    return RING_FEATURES | bit(VHOST_USER_F_PROTOCOL_FEATURES) | this.device.features;
  }

  /** DEVICE_STATE only for devices that can save and load their state. */
  get offeredProtocolFeatures(): bigint {
    const config = this.device.config ? bit(ProtocolFeature.CONFIG) : 0n;
    if (this.device.migratable === false) return (OFFERED_PROTOCOL_FEATURES & ~bit(ProtocolFeature.LOG_SHMFD)) | config;
    const migrates = this.device.saveState !== undefined && this.device.loadState !== undefined;
    return OFFERED_PROTOCOL_FEATURES | (migrates ? bit(ProtocolFeature.DEVICE_STATE) : 0n) | config;
  }

  private has(f: ProtocolFeature): boolean {
    return (this.protocolFeatures & bit(f)) !== 0n;
  }

  // ConnectionHandler: messages are queued and handled one at a time, in order.
  message(msg: RawMessage): void {
    this.chain = this.chain.then(() => this.handle(msg));
  }

  closed(reason: string): void {
    this.log.info(`front-end disconnected: ${reason}`);
    this.chain = this.chain.then(() => this.teardown());
  }

  /**
   * Lets the requests in flight finish (waits that could last forever are cancelled), with the
   * rings stopped as GET_VRING_BASE would: for a daemon asked to stop (SIGTERM).
   */
  drain(): Promise<void> {
    this.chain = this.chain.then(() => this.resetDevice('stop'));
    return this.chain;
  }

  private async handle(msg: RawMessage): Promise<void> {
    if (this.gone) {
      msg.fds.forEach(closeFd);
      return;
    }
    this.stats.messages++;
    const { request, flags } = msg.header;
    const name = requestName(request);
    let fdsTaken = false;
    const takeFds = (): number[] => {
      fdsTaken = true;
      return msg.fds;
    };
    try {
      if ((flags & FLAG_VERSION_MASK) !== FLAG_VERSION) throw new ProtocolError(`bad version in flags 0x${flags.toString(16)}`);
      if (msg.fdsTruncated) throw new RequestFailed('file descriptors were truncated by the kernel');
      const reply = await this.dispatch(request, msg.payload, takeFds);
      if (reply) {
        this.reply(request, reply);
      } else if (flags & FLAG_NEED_REPLY && this.has(ProtocolFeature.REPLY_ACK) && !HAS_REPLY.has(request)) {
        this.reply(request, encodeU64(0n));
      }
      this.log.debug(`${name} ok`);
    } catch (e) {
      if (e instanceof ProtocolError) {
        this.log.error(`${name}: ${e.message}; dropping the connection`);
        this.conn.close();
      } else if (e instanceof RequestFailed) {
        this.stats.failedRequests++;
        this.log.error(`${name}: ${e.message}`);
        if (flags & FLAG_NEED_REPLY && this.has(ProtocolFeature.REPLY_ACK)) this.reply(request, encodeU64(1n));
      } else {
        this.stats.failedRequests++;
        this.log.error(`${name}: unexpected failure: ${(e as Error).stack ?? e}; dropping the connection`);
        this.conn.close();
      }
    } finally {
      if (!fdsTaken) msg.fds.forEach(closeFd);
    }
  }

  private reply(request: number, payload: Buffer): void {
    this.conn.send(encodeMessage(request, FLAG_VERSION | FLAG_REPLY, payload));
  }

  private expectSize(payload: Buffer, size: number): void {
    if (payload.length !== size) throw new ProtocolError(`payload of ${payload.length} bytes, expected ${size}`);
  }

  private slot(index: number): VringSlot {
    const s = this.vrings[index];
    if (!s) throw new RequestFailed(`queue index ${index} out of range (device has ${this.vrings.length})`);
    return s;
  }

  private async dispatch(request: number, p: Buffer, takeFds: () => number[]): Promise<Buffer | null> {
    switch (request) {
      case Request.GET_FEATURES:
        this.expectSize(p, 0);
        return encodeU64(this.offeredFeatures);
      case Request.SET_FEATURES: {
        this.expectSize(p, 8);
        const f = p.readBigUInt64LE(0);
        if (f & ~this.offeredFeatures) throw new RequestFailed(`features 0x${(f & ~this.offeredFeatures).toString(16)} were not offered`);
        // QEMU sends SET_FEATURES again to start and stop logging: only the log changes then.
        const logChangeOnly = this.ackedFeatures !== 0n && (f & ~bit(VHOST_F_LOG_ALL)) === (this.ackedFeatures & ~bit(VHOST_F_LOG_ALL));
        this.ackedFeatures = f;
        if (!logChangeOnly) {
          this.device.featuresNegotiated?.(f & ~bit(VHOST_F_LOG_ALL));
          const ring = { eventIdx: (f & bit(VIRTIO_RING_F_EVENT_IDX)) !== 0n, indirect: (f & bit(VIRTIO_RING_F_INDIRECT_DESC)) !== 0n };
          for (const s of this.vrings) s.vq.features = ring;
        }
        this.applyLogging();
        return null;
      }
      case Request.SET_DEVICE_STATE_FD:
        return this.setDeviceStateFd(p, takeFds());
      case Request.CHECK_DEVICE_STATE: {
        this.expectSize(p, 0);
        if (!this.has(ProtocolFeature.DEVICE_STATE)) throw new RequestFailed('CHECK_DEVICE_STATE without the DEVICE_STATE protocol feature');
        const outcome = this.transfer ? await this.transfer : { ok: false as const, error: 'no state transfer was started' };
        this.transfer = null;
        if (outcome.ok) this.log.info(`device state transferred (${outcome.bytes} bytes)`);
        else this.log.error(outcome.error);
        return encodeU64(outcome.ok ? 0n : 1n);
      }
      case Request.SET_LOG_BASE:
        return this.setLogBase(p, takeFds());
      case Request.SET_LOG_FD: {
        this.expectSize(p, 8);
        const fds = takeFds();
        if (fds.length !== 1) {
          fds.forEach(closeFd);
          throw new RequestFailed(`expected 1 fd, got ${fds.length}`);
        }
        if (!this.dirtyLog) {
          closeFd(fds[0]);
          throw new RequestFailed('SET_LOG_FD before SET_LOG_BASE');
        }
        this.dirtyLog.setEventFd(fds[0]);
        return null;
      }
      case Request.GET_PROTOCOL_FEATURES:
        this.expectSize(p, 0);
        return encodeU64(this.offeredProtocolFeatures);
      case Request.SET_PROTOCOL_FEATURES: {
        this.expectSize(p, 8);
        const f = p.readBigUInt64LE(0);
        const offered = this.offeredProtocolFeatures;
        if (f & ~offered) throw new RequestFailed(`protocol features 0x${(f & ~offered).toString(16)} were not offered`);
        this.protocolFeatures = f;
        return null;
      }
      case Request.SET_OWNER:
        this.expectSize(p, 0);
        return null;
      case Request.RESET_OWNER:
      case Request.RESET_DEVICE:
        await this.resetDevice('stop');
        return null;
      case Request.GET_QUEUE_NUM:
        this.expectSize(p, 0);
        return encodeU64(BigInt(this.vrings.length));
      case Request.GET_MAX_MEM_SLOTS:
        this.expectSize(p, 0);
        return encodeU64(BigInt(MAX_MEM_SLOTS));
      case Request.SET_MEM_TABLE:
        this.setMemTable(p, takeFds());
        return null;
      case Request.ADD_MEM_REG:
        this.addMemReg(p, takeFds());
        return null;
      case Request.REM_MEM_REG:
        this.remMemReg(p);
        return null;
      case Request.SET_VRING_NUM: {
        this.expectSize(p, VRING_STATE_SIZE);
        const { index, num } = decodeVringState(p);
        const s = this.slot(index);
        if (!isValidQueueSize(num)) throw new RequestFailed(`queue ${index}: size ${num} is not a power of 2 up to 32768`);
        if (s.started) throw new RequestFailed(`queue ${index}: size changed while the ring runs`);
        s.vq.size = num;
        return null;
      }
      case Request.SET_VRING_ADDR: {
        this.expectSize(p, VRING_ADDR_SIZE);
        const a = decodeVringAddr(p);
        const s = this.slot(a.index);
        s.vq.addresses = { desc: toAddress(a.desc_user_addr), avail: toAddress(a.avail_user_addr), used: toAddress(a.used_user_addr) };
        s.vq.logUsedAt = a.flags & VHOST_VRING_F_LOG ? toAddress(a.log_guest_addr) : null;
        if (!this.memory) throw new RequestFailed(`queue ${a.index}: ring addresses before any memory table`);
        this.attachRing(s, true);
        return null;
      }
      case Request.SET_VRING_BASE: {
        this.expectSize(p, VRING_STATE_SIZE);
        const { index, num } = decodeVringState(p);
        const s = this.slot(index);
        if (num > 0xffff) throw new RequestFailed(`queue ${index}: base ${num} is not a 16-bit index`);
        s.vq.lastAvailIdx = num;
        s.vq.usedIdx = num;
        return null;
      }
      case Request.GET_VRING_BASE: {
        this.expectSize(p, VRING_STATE_SIZE);
        const { index } = decodeVringState(p);
        const s = this.vrings[index];
        if (!s) throw new ProtocolError(`GET_VRING_BASE for queue ${index}, device has ${this.vrings.length}`);
        await this.stopRing(s, 'stop');
        const base = s.vq.lastAvailIdx;
        s.vq.reset();
        return encodeVringState({ index, num: base });
      }
      case Request.SET_VRING_KICK:
      case Request.SET_VRING_CALL:
      case Request.SET_VRING_ERR:
        this.setVringFd(request, p, takeFds());
        return null;
      case Request.SET_VRING_ENABLE: {
        this.expectSize(p, VRING_STATE_SIZE);
        const { index, num } = decodeVringState(p);
        const s = this.slot(index);
        if (num > 1) throw new RequestFailed(`queue ${index}: enable value ${num}`);
        s.vq.enabled = num === 1;
        if (s.vq.enabled) this.maybeStart(s);
        return null;
      }
      case Request.SET_BACKEND_REQ_FD: {
        this.expectSize(p, 0);
        const fds = takeFds();
        if (fds.length !== 1) {
          fds.forEach(closeFd);
          throw new RequestFailed(`expected 1 fd, got ${fds.length}`);
        }
        closeFd(this.backendReqFd);
        this.backendReqFd = fds[0];
        return null;
      }
      case Request.SET_STATUS:
        this.expectSize(p, 8);
        this.status = Number(p.readBigUInt64LE(0) & 0xffn);
        return null;
      case Request.GET_STATUS:
        this.expectSize(p, 0);
        return encodeU64(BigInt(this.status));
      case Request.GET_CONFIG:
        return this.getConfig(p);
      case Request.SET_CONFIG:
        throw new RequestFailed('the device config space is read-only');
      default:
        throw new RequestFailed(`unsupported request ${requestName(request)} (${p.length}-byte payload)`);
    }
  }

  /**
   * GET_CONFIG: struct vhost_user_config (offset, size, flags, payload) answered with the same header
   * and `size` bytes of the device's config space; a payload of length 0 says it failed (the spec's way).
   */
  private getConfig(p: Buffer): Buffer {
    if (!this.has(ProtocolFeature.CONFIG)) throw new RequestFailed('GET_CONFIG without the CONFIG protocol feature');
    if (p.length < 12) throw new ProtocolError(`GET_CONFIG of ${p.length} bytes`);
    const offset = p.readUInt32LE(0);
    const size = p.readUInt32LE(4);
    if (p.length !== 12 + size) throw new ProtocolError(`GET_CONFIG for ${size} bytes in a ${p.length}-byte payload`);
    const config = this.device.config!;
    const out = Buffer.alloc(12 + size);
    p.copy(out, 0, 0, 12);
    if (offset + size > config.length) {
      out.writeUInt32LE(0, 4);
      return out.subarray(0, 12);
    }
    out.set(config.subarray(offset, offset + size), 12);
    return out;
  }

  /**
   * SET_DEVICE_STATE_FD: starts saving into (or loading from) the front-end's pipe, in the background
   * (QEMU reads or writes the other end while we go on with messages), and answers at once.
   */
  private setDeviceStateFd(p: Buffer, fds: number[]): Buffer {
    try {
      if (!this.has(ProtocolFeature.DEVICE_STATE)) throw new RequestFailed('SET_DEVICE_STATE_FD without the DEVICE_STATE protocol feature');
      this.expectSize(p, DEVICE_STATE_PARAMS_SIZE);
      if (fds.length !== 1) return this.stateRefused(`SET_DEVICE_STATE_FD with ${fds.length} fds`);
      const { direction, phase } = decodeDeviceStateParams(p);
      if (phase !== MIGRATION_PHASE_STOPPED) return this.stateRefused(`migration phase ${phase} is not supported (only 0, stopped)`);
      if (direction !== TransferDirection.SAVE && direction !== TransferDirection.LOAD) return this.stateRefused(`transfer direction ${direction}`);
      if (this.vrings.some((s) => s.started)) return this.stateRefused('device state transfer while a ring runs');
      const fd = fds.splice(0, 1)[0];
      this.transfer = direction === TransferDirection.SAVE ? saveInto(this.device, fd) : loadFrom(this.device, fd);
      this.log.info(`device state: ${direction === TransferDirection.SAVE ? 'saving' : 'loading'}`);
      return encodeU64(DEVICE_STATE_NO_FD);
    } finally {
      fds.forEach(closeFd);
    }
  }

  /** The front-end always waits for this reply: a refusal is an error code in it, not silence. */
  private stateRefused(why: string): Buffer {
    this.stats.failedRequests++;
    this.log.error(`SET_DEVICE_STATE_FD: ${why}`);
    this.transfer = null;
    return encodeU64(1n | DEVICE_STATE_NO_FD);
  }

  /** SET_LOG_BASE with LOG_SHMFD: maps the front-end's bitmap (replacing the last one) and says so. */
  private setLogBase(p: Buffer, fds: number[]): Buffer {
    try {
      if (!this.has(ProtocolFeature.LOG_SHMFD)) throw new RequestFailed('SET_LOG_BASE without the LOG_SHMFD protocol feature');
      this.expectSize(p, VHOST_USER_LOG_SIZE);
      if (fds.length !== 1) throw new RequestFailed(`SET_LOG_BASE with ${fds.length} fds`);
      const l = decodeLog(p);
      const size = toAddress(l.mmap_size);
      const offset = toAddress(l.mmap_offset);
      let log: DirtyLog;
      try {
        log = new DirtyLog(fds[0], size, offset);
      } catch (e) {
        // QEMU takes the reply as "mapped" whatever it holds: going on would migrate without logging.
        throw new ProtocolError(`cannot map the dirty log (${l.mmap_size} bytes at ${l.mmap_offset}): ${(e as Error).message}`);
      }
      this.dirtyLog?.close();
      this.dirtyLog = log;
      this.applyLogging();
      // The reply tells the front-end the log is mapped (libvhost-user answers a u64 too).
      return encodeU64(0n);
    } finally {
      fds.forEach(closeFd); // the mapping keeps the log
    }
  }

  /** Rings log their writes while the front-end has acked VHOST_F_LOG_ALL and shared a log. */
  private applyLogging(): void {
    const log = this.ackedFeatures & bit(VHOST_F_LOG_ALL) ? this.dirtyLog : null;
    for (const s of this.vrings) s.vq.log = log;
  }

  private setMemTable(p: Buffer, fds: number[]): void {
    try {
      const table = decodeMemoryTable(p);
      if (!table) throw new ProtocolError(`memory table payload of ${p.length} bytes is inconsistent`);
      if (p.length !== 8 + table.length * MEMORY_REGION_SIZE) throw new ProtocolError(`memory table of ${table.length} regions in ${p.length} bytes`);
      if (fds.length !== table.length) throw new RequestFailed(`memory table has ${table.length} regions but ${fds.length} fds came with it`);
      const regions = this.mapRegions(table, fds);
      this.retired.push(...this.regions);
      this.regions = regions;
      this.installMemory();
    } finally {
      fds.forEach(closeFd); // the mappings keep the memory
    }
  }

  private mapRegions(table: MemoryRegionDesc[], fds: number[]): MemoryRegion[] {
    const regions: MemoryRegion[] = [];
    try {
      table.forEach((d, i) => regions.push(new MemoryRegion(d, fds[i])));
    } catch (e) {
      regions.forEach((r) => r.unmap());
      throw new RequestFailed(`cannot map guest memory: ${(e as Error).message}`);
    }
    return regions;
  }

  private addMemReg(p: Buffer, fds: number[]): void {
    try {
      this.expectSize(p, SINGLE_REGION_SIZE);
      if (fds.length !== 1) throw new RequestFailed(`ADD_MEM_REG with ${fds.length} fds`);
      if (this.regions.length >= MAX_MEM_SLOTS) throw new RequestFailed(`no free memory slot (${MAX_MEM_SLOTS} in use)`);
      const [region] = this.mapRegions([decodeSingleRegion(p)], fds);
      this.regions = [...this.regions, region];
      this.installMemory();
    } finally {
      fds.forEach(closeFd);
    }
  }

  private remMemReg(p: Buffer): void {
    this.expectSize(p, SINGLE_REGION_SIZE);
    const d = decodeSingleRegion(p);
    const i = this.regions.findIndex(
      (r) => r.desc.guest_phys_addr === d.guest_phys_addr && r.desc.memory_size === d.memory_size && r.desc.userspace_addr === d.userspace_addr,
    );
    if (i < 0) throw new RequestFailed(`no region at gpa 0x${d.guest_phys_addr.toString(16)} of 0x${d.memory_size.toString(16)} bytes`);
    this.retired.push(this.regions[i]);
    this.regions = this.regions.filter((_, k) => k !== i);
    this.installMemory();
  }

  /** Uses the new region set: rings are mapped again (their addresses are front-end virtual ones). */
  private installMemory(): void {
    this.memory = new GuestMemory(this.regions);
    this.device.memoryMapped?.(this.regions);
    for (const s of this.vrings) {
      if (s.vq.addresses && s.vq.size) this.attachRing(s, false);
    }
    this.collectRetired();
  }

  private attachRing(s: VringSlot, fromAddr: boolean): void {
    try {
      s.vq.attach(this.memory!);
    } catch (e) {
      s.vq.detach();
      throw new RequestFailed((e as Error).message);
    }
    if (fromAddr) s.vq.syncUsedIdx();
  }

  private collectRetired(): void {
    if (this.retired.length === 0) return;
    if (this.vrings.some((s) => s.vq.inFlight > 0)) return;
    for (const r of this.retired) r.unmap();
    this.retired = [];
  }

  private setVringFd(request: number, p: Buffer, fds: number[]): void {
    try {
      this.expectSize(p, 8);
      const v = p.readBigUInt64LE(0);
      const index = Number(v & VRING_IDX_MASK);
      const noFd = (v & VRING_NOFD_MASK) !== 0n;
      if (v & ~(VRING_IDX_MASK | VRING_NOFD_MASK)) throw new RequestFailed(`reserved bits set in 0x${v.toString(16)}`);
      const s = this.slot(index);
      if (noFd ? fds.length !== 0 : fds.length !== 1) throw new RequestFailed(`queue ${index}: ${fds.length} fds with${noFd ? '' : 'out'} the no-fd flag`);
      const fd = noFd ? null : fds.splice(0, 1)[0];
      if (request === Request.SET_VRING_CALL) {
        closeFd(s.vq.callFd);
        s.vq.callFd = fd;
        if (s.started && s.vq.enabled && s.vq.ready) this.device.callFdChanged?.(s.vq);
      } else if (request === Request.SET_VRING_ERR) {
        closeFd(s.errFd);
        s.errFd = fd;
      } else {
        this.stopKickWatch(s);
        if (fd !== null) {
          s.kick = new EventFdWatcher(
            fd,
            () => this.kicked(s),
            (err) => this.log.error(`queue ${index}: kick fd: ${err.message}`),
          );
        }
        s.started = true;
        // Without VHOST_USER_F_PROTOCOL_FEATURES a ring is enabled as soon as it starts.
        if (!(this.ackedFeatures & bit(VHOST_USER_F_PROTOCOL_FEATURES))) s.vq.enabled = true;
        this.maybeStart(s);
      }
    } finally {
      fds.forEach(closeFd);
    }
  }

  private maybeStart(s: VringSlot): void {
    if (!s.started || !s.vq.enabled || !s.vq.ready) return;
    if (this.device.queueStarted(s.vq, s.kick?.fd ?? null) === true) {
      // The device watches the ring's kicks in a thread of its own (with a copy of the fd).
      this.stopKickWatch(s);
      return;
    }
    if (!s.kick && !s.pollTimer) {
      // No kick fd (the no-fd flag): the ring is polled.
      s.pollTimer = setInterval(() => this.kicked(s), 1);
    }
    this.kicked(s); // chains made available before the start
  }

  private kicked(s: VringSlot): void {
    s.vq.kicks++;
    if (!s.started || !s.vq.enabled || !s.vq.ready || this.gone) return;
    this.device.kicked(s.vq);
    if (s.vq.broken && s.errFd !== null) {
      try {
        fs.writeSync(s.errFd, Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]));
      } catch {
        // the front-end is gone
      }
    }
  }

  private stopKickWatch(s: VringSlot): void {
    s.kick?.close();
    s.kick = null;
    if (s.pollTimer) clearInterval(s.pollTimer);
    s.pollTimer = null;
  }

  /** Stops popping, lets the device settle what is in flight. */
  private async stopRing(s: VringSlot, reason: 'stop' | 'disconnect'): Promise<void> {
    this.stopKickWatch(s);
    const wasStarted = s.started;
    s.started = false;
    if (wasStarted) await this.device.stopQueue(s.vq, reason);
  }

  private async resetDevice(reason: 'stop' | 'disconnect'): Promise<void> {
    // Every ring is asked at once: one slow ring must not delay the others' cancellation.
    await Promise.all(this.vrings.map((s) => this.stopRing(s, reason)));
    for (const s of this.vrings) {
      s.vq.reset();
      closeFd(s.vq.callFd);
      s.vq.callFd = null;
      closeFd(s.errFd);
      s.errFd = null;
    }
    this.ackedFeatures = 0n;
    this.protocolFeatures = 0n;
    this.status = 0;
    this.applyLogging();
    this.dirtyLog?.close();
    this.dirtyLog = null;
  }

  private async teardown(): Promise<void> {
    if (this.gone) return;
    this.gone = true;
    await this.resetDevice('disconnect');
    closeFd(this.backendReqFd);
    this.backendReqFd = null;
    this.retired.push(...this.regions);
    this.regions = [];
    this.memory = null;
    this.collectRetired();
    try {
      await this.device.disconnected?.();
    } catch (e) {
      this.log.error(`device teardown: ${(e as Error).message}`);
    }
    this.finishedResolve();
  }
}
