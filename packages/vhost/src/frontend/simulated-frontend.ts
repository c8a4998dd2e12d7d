// A TypeScript stand-in for QEMU plus the guest's virtio driver: it speaks real vhost-user over a
// real UNIX socket, shares memfd guest RAM, runs split rings from the driver side and offers
// submit() with many requests in flight. It can also send malformed messages and chains on purpose.
import * as fs from 'fs';
import * as net from 'net';
import { AF_UNIX, SOCK_CLOEXEC, SOCK_STREAM, connect, sockaddrUn, socket } from '../sys/libc';
import { ScmChannel } from '../sys/scm-rights';
import { EventFdWatcher, createEventFd, signalEventFd } from '../sys/eventfd';
import {
  FLAG_NEED_REPLY,
  FLAG_VERSION,
  HEADER_SIZE,
  ProtocolFeature,
  Request,
  VHOST_USER_F_PROTOCOL_FEATURES,
  VIRTIO_F_VERSION_1,
  VIRTIO_RING_F_EVENT_IDX,
  VIRTIO_RING_F_INDIRECT_DESC,
  bit,
  encodeMemoryTable,
  encodeU64,
  encodeVringAddr,
  encodeVringState,
  requestName,
} from '../protocol/messages';
import { DriverQueue, Segment } from './driver-queue';
import { GuestRam } from './guest-ram';

export interface NegotiateOptions {
  /** Queues to set up (default 2), each of `queueSize` entries (default 256). */
  numQueues?: number;
  queueSize?: number;
  eventIdx?: boolean;
  indirect?: boolean;
  /** Start every ring's indices here (wrap-around tests). */
  base?: number;
  /** Also negotiate what live migration needs: LOG_SHMFD and DEVICE_STATE. */
  migration?: boolean;
  /** Also negotiate CONFIG (the device's config space through GET_CONFIG), when offered. */
  config?: boolean;
}

export interface SubmitOptions {
  /** Put the chain in an indirect table (default: the negotiated setting). */
  indirect?: boolean;
}

export interface SubmitResult {
  /** Bytes the device says it wrote. */
  len: number;
  /** A copy of the writable buffers' first `len` bytes. */
  data: Buffer;
  /** Where the writable buffers were, guest-physically (dirty-log tests). */
  writable: readonly { addr: number; len: number }[];
}

interface Waiter {
  request: number;
  resolve: (payload: Buffer) => void;
  reject: (err: Error) => void;
}

interface Pending {
  resolve: (r: SubmitResult) => void;
  reject: (err: Error) => void;
  allocs: { off: number; len: number }[];
  writable: Segment[];
  writableOffs: number[];
}

interface QueuedSubmit {
  readable: readonly Uint8Array[];
  writableSizes: readonly number[];
  indirect: boolean;
  resolve: (r: SubmitResult) => void;
  reject: (err: Error) => void;
}

export class FrontendClosedError extends Error {}

export class SimulatedFrontend {
  readonly ram: GuestRam;
  readonly queues: DriverQueue[] = [];
  private readonly sock: net.Socket;
  private readonly scm = new ScmChannel();
  private inbuf: Buffer = Buffer.alloc(0);
  private readonly waiters: Waiter[] = [];
  private readonly kickFds: number[] = [];
  private readonly callWatchers: EventFdWatcher[] = [];
  private readonly pending: Map<number, Pending>[] = [];
  private readonly backlog: QueuedSubmit[][] = [];
  private readonly flushScheduled: boolean[] = [];
  private isClosed = false;
  private closeReason = '';
  backendFeatures = 0n;
  /** What negotiate() acked with SET_FEATURES. */
  ackedFeatures = 0n;
  protocolFeatures = 0n;
  indirect = false;
  kicksSent = 0;
  callsReceived = 0;
  private closedResolve!: () => void;
  /** Resolves when the back-end closed the connection (or close() was called). */
  readonly closed: Promise<void>;

  private constructor(
    readonly fd: number,
    memorySize: number,
  ) {
    this.ram = new GuestRam(memorySize);
    this.closed = new Promise((r) => (this.closedResolve = r));
    this.sock = new net.Socket({ fd, readable: true, writable: false });
    this.sock.on('data', (d: Buffer) => this.onData(d));
    this.sock.on('error', (e) => this.onClose(`socket error: ${e.message}`));
    this.sock.on('close', () => this.onClose('back-end closed the connection'));
  }

  static async connect(socketPath: string, memorySize = 64 << 20): Promise<SimulatedFrontend> {
    const fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    try {
      connect(fd, sockaddrUn(socketPath));
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
    return new SimulatedFrontend(fd, memorySize);
  }

  get isConnected(): boolean {
    return !this.isClosed;
  }

  private onClose(reason: string): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.closeReason = reason;
    const err = new FrontendClosedError(reason);
    for (const w of this.waiters.splice(0)) w.reject(err);
    for (const m of this.pending) for (const p of m.values()) p.reject(err);
    for (const b of this.backlog) for (const q of b.splice(0)) q.reject(err);
    this.pending.forEach((m) => m.clear());
    // The connection is gone: its eventfds are of no use (and would keep the event loop alive).
    for (const w of this.callWatchers) w?.close();
    this.closedResolve();
  }

  private onData(d: Buffer): void {
    this.inbuf = this.inbuf.length ? Buffer.concat([this.inbuf, d]) : d;
    while (this.inbuf.length >= HEADER_SIZE) {
      const size = this.inbuf.readUInt32LE(8);
      if (this.inbuf.length < HEADER_SIZE + size) return;
      const request = this.inbuf.readUInt32LE(0);
      const payload = Buffer.from(this.inbuf.subarray(HEADER_SIZE, HEADER_SIZE + size));
      this.inbuf = this.inbuf.subarray(HEADER_SIZE + size);
      const w = this.waiters.shift();
      if (!w) continue; // unsolicited: ignored
      if (w.request !== request) w.reject(new Error(`reply to ${requestName(request)} while waiting for ${requestName(w.request)}`));
      else w.resolve(payload);
    }
  }

  /** Sends raw bytes (a whole or partial message) with fds: for malformed-input tests. */
  sendRaw(bytes: Uint8Array, fds: readonly number[] = []): void {
    if (this.isClosed) throw new FrontendClosedError(this.closeReason);
    const data = this.scm.data;
    data.set(bytes, 0);
    this.scm.send(this.fd, bytes.length, fds);
  }

  /**
   * Sends a request. Resolves with the reply payload when `reply` is set (a request with its own
   * reply, or need_reply with REPLY_ACK), else with null once sent.
   */
  request(request: number, payload: Buffer = Buffer.alloc(0), opts: { fds?: readonly number[]; needReply?: boolean; reply?: boolean; flags?: number } = {}): Promise<Buffer | null> {
    const flags = (opts.flags ?? FLAG_VERSION) | (opts.needReply ? FLAG_NEED_REPLY : 0);
    const msg = Buffer.alloc(HEADER_SIZE + payload.length);
    msg.writeUInt32LE(request, 0);
    msg.writeUInt32LE(flags, 4);
    msg.writeUInt32LE(payload.length, 8);
    payload.copy(msg, HEADER_SIZE);
    const wantReply = opts.reply || opts.needReply;
    const p = wantReply
      ? new Promise<Buffer | null>((resolve, reject) => this.waiters.push({ request, resolve, reject }))
      : Promise.resolve(null);
    try {
      this.sendRaw(msg, opts.fds ?? []);
    } catch (e) {
      if (wantReply) this.waiters.pop();
      return Promise.reject(e);
    }
    return p;
  }

  /** A request with need_reply set: resolves with the ack value (0 = success). */
  async requestAck(request: number, payload?: Buffer, fds?: readonly number[]): Promise<bigint> {
    const r = await this.request(request, payload, { fds, needReply: true });
    return r!.readBigUInt64LE(0);
  }

  async getU64(request: number): Promise<bigint> {
    const r = await this.request(request, Buffer.alloc(0), { reply: true });
    return r!.readBigUInt64LE(0);
  }

  /** The sequence QEMU follows for a vhost-user-fs device, from SET_OWNER to enabled rings. */
  async negotiate(opts: NegotiateOptions = {}): Promise<void> {
    const numQueues = opts.numQueues ?? 2;
    const size = opts.queueSize ?? 256;
    const eventIdx = opts.eventIdx ?? true;
    this.indirect = opts.indirect ?? true;
    await this.request(Request.SET_OWNER);
    this.backendFeatures = await this.getU64(Request.GET_FEATURES);
    if (this.backendFeatures & bit(VHOST_USER_F_PROTOCOL_FEATURES)) {
      const offered = await this.getU64(Request.GET_PROTOCOL_FEATURES);
      const want =
        bit(ProtocolFeature.MQ) | bit(ProtocolFeature.REPLY_ACK) | bit(ProtocolFeature.CONFIGURE_MEM_SLOTS) | bit(ProtocolFeature.STATUS) | (opts.migration ? bit(ProtocolFeature.LOG_SHMFD) | bit(ProtocolFeature.DEVICE_STATE) : 0n) |
        (opts.config ? bit(ProtocolFeature.CONFIG) : 0n);
      this.protocolFeatures = offered & want;
      await this.request(Request.SET_PROTOCOL_FEATURES, encodeU64(this.protocolFeatures));
      const qn = await this.getU64(Request.GET_QUEUE_NUM);
      if (Number(qn) < numQueues) throw new Error(`back-end has ${qn} queues, ${numQueues} wanted`);
    }
    let features = bit(VIRTIO_F_VERSION_1) | (this.backendFeatures & bit(VHOST_USER_F_PROTOCOL_FEATURES));
    if (eventIdx) features |= bit(VIRTIO_RING_F_EVENT_IDX);
    if (this.indirect) features |= bit(VIRTIO_RING_F_INDIRECT_DESC);
    await this.checked(Request.SET_FEATURES, encodeU64(features));
    this.ackedFeatures = features;
    await this.checked(Request.SET_MEM_TABLE, encodeMemoryTable(this.ram.regions.map((r) => r.desc)), this.ram.regions.map(() => this.ram.fd));
    for (let i = 0; i < numQueues; i++) await this.setupQueue(i, size, eventIdx, opts.base ?? 0);
    for (let i = 0; i < numQueues; i++) await this.checked(Request.SET_VRING_ENABLE, encodeVringState({ index: i, num: 1 }));
  }

  /** Sends a request with need_reply when REPLY_ACK is on, and fails on a failure ack. */
  async checked(request: number, payload: Buffer, fds: readonly number[] = []): Promise<void> {
    if (this.protocolFeatures & bit(ProtocolFeature.REPLY_ACK)) {
      const ack = await this.requestAck(request, payload, fds);
      if (ack !== 0n) throw new Error(`${requestName(request)} failed (ack ${ack})`);
    } else {
      await this.request(request, payload, { fds });
    }
  }

  async setupQueue(i: number, size: number, eventIdx: boolean, base: number): Promise<void> {
    const q = new DriverQueue(this.ram, i, size, eventIdx);
    if (base) q.setBase(base);
    this.queues[i] = q;
    this.pending[i] = new Map();
    this.backlog[i] = [];
    this.flushScheduled[i] = false;
    await this.checked(Request.SET_VRING_NUM, encodeVringState({ index: i, num: size }));
    await this.checked(Request.SET_VRING_BASE, encodeVringState({ index: i, num: base & 0xffff }));
    const a = q.addresses;
    await this.checked(Request.SET_VRING_ADDR, encodeVringAddr({ index: i, flags: 0, desc_user_addr: BigInt(a.desc), used_user_addr: BigInt(a.used), avail_user_addr: BigInt(a.avail), log_guest_addr: 0n }));
    const kick = createEventFd();
    const call = createEventFd();
    this.kickFds[i] = kick;
    this.callWatchers[i]?.close();
    this.callWatchers[i] = new EventFdWatcher(call, () => {
      this.callsReceived++;
      this.reap(i);
    });
    await this.checked(Request.SET_VRING_KICK, encodeU64(BigInt(i)), [kick]);
    // The watcher owns `call`; the back-end gets its own copy through SCM_RIGHTS.
    await this.checked(Request.SET_VRING_CALL, encodeU64(BigInt(i)), [call]);
  }

  /** GET_CONFIG: `size` bytes of the device's config space from `offset` (none: the back-end refused). */
  async getConfig(offset: number, size: number): Promise<Buffer> {
    const p = Buffer.alloc(12 + size);
    p.writeUInt32LE(offset, 0);
    p.writeUInt32LE(size, 4);
    const r = await this.request(Request.GET_CONFIG, p, { reply: true });
    return r!.subarray(12, 12 + r!.readUInt32LE(4));
  }

  /** Asks for the ring's state, stopping it (QEMU does this when the guest stops the device). */
  async getVringBase(i: number): Promise<number> {
    const r = await this.request(Request.GET_VRING_BASE, encodeVringState({ index: i, num: 0 }), { reply: true });
    return r!.readUInt32LE(4);
  }

  kick(i: number): void {
    this.kicksSent++;
    signalEventFd(this.kickFds[i]);
  }

  /**
   * Submits one request: `readable` buffers the device reads, `writableSizes` buffers it writes.
   * Many may be in flight; when the ring is full, requests wait for free descriptors.
   */
  submit(queue: number, readable: readonly Uint8Array[], writableSizes: readonly number[], opts: SubmitOptions = {}): Promise<SubmitResult> {
    if (this.isClosed) return Promise.reject(new FrontendClosedError(this.closeReason));
    const q = this.queues[queue];
    if (!q) return Promise.reject(new Error(`queue ${queue} is not set up`));
    return new Promise((resolve, reject) => {
      this.backlog[queue].push({ readable, writableSizes, indirect: opts.indirect ?? this.indirect, resolve, reject });
      this.pump(queue);
    });
  }

  private pump(queue: number): void {
    const q = this.queues[queue];
    const backlog = this.backlog[queue];
    while (backlog.length) {
      const s = backlog[0];
      const nseg = s.readable.length + s.writableSizes.length;
      if (s.indirect ? q.freeDescriptors < 1 : q.freeDescriptors < nseg) break;
      backlog.shift();
      const allocs: { off: number; len: number }[] = [];
      const segs: Segment[] = [];
      const writable: Segment[] = [];
      const writableOffs: number[] = [];
      for (const r of s.readable) {
        const off = this.ram.alloc(r.length);
        this.ram.bytes.set(r, off);
        allocs.push({ off, len: r.length });
        segs.push({ addr: this.ram.gpa(off), len: r.length, write: false });
      }
      for (const n of s.writableSizes) {
        const off = this.ram.alloc(n);
        allocs.push({ off, len: n });
        const seg = { addr: this.ram.gpa(off), len: n, write: true };
        segs.push(seg);
        writable.push(seg);
        writableOffs.push(off);
      }
      const head = q.add(segs, s.indirect)!;
      this.pending[queue].set(head, { resolve: s.resolve, reject: s.reject, allocs, writable, writableOffs });
    }
    if (!this.flushScheduled[queue]) {
      this.flushScheduled[queue] = true;
      queueMicrotask(() => {
        this.flushScheduled[queue] = false;
        if (!this.isClosed && q.flush()) this.kick(queue);
      });
    }
  }

  /** Publishes raw descriptors already written with writeRaw (malformed-chain tests) and kicks. */
  publishRaw(queue: number, head: number, descs: number[]): Promise<SubmitResult> {
    const q = this.queues[queue];
    q.hold(head, descs);
    const p = new Promise<SubmitResult>((resolve, reject) => this.pending[queue].set(head, { resolve, reject, allocs: [], writable: [], writableOffs: [] }));
    q.publish(head);
    if (q.flush()) this.kick(queue);
    return p;
  }

  /** Reaps completions of a queue (on a call, or when polled). */
  reap(queue: number): number {
    const q = this.queues[queue];
    if (!q) return 0;
    const used = q.reap();
    for (const u of used) {
      const p = this.pending[queue].get(u.id);
      if (!p) continue;
      this.pending[queue].delete(u.id);
      const chunks: Buffer[] = [];
      let left = u.len;
      p.writableOffs.forEach((off, i) => {
        const n = Math.min(left, p.writable[i].len);
        if (n > 0) chunks.push(Buffer.from(this.ram.bytes.subarray(off, off + n)));
        left -= n;
      });
      for (const a of p.allocs) this.ram.release(a.off, a.len);
      p.resolve({ len: u.len, data: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks), writable: p.writable.map((w) => ({ addr: w.addr, len: w.len })) });
    }
    if (used.length && this.backlog[queue].length) this.pump(queue);
    return used.length;
  }

  inFlight(queue: number): number {
    return this.pending[queue]?.size ?? 0;
  }

  /** Closes the connection (a QEMU that exits or a guest that reboots). */
  close(): void {
    for (const w of this.callWatchers) w?.close();
    for (const fd of this.kickFds) {
      try {
        fs.closeSync(fd);
      } catch {
        // closed
      }
    }
    this.kickFds.length = 0;
    this.sock.destroy();
    this.onClose('closed by the front-end');
    this.ram.close();
  }
}
