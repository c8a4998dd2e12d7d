// The device side of one split virtqueue: pops available chains, pushes used elements, and decides
// when to notify the driver (VIRTIO_RING_F_EVENT_IDX or the flags) and when to ask for kicks.
import type { DirtyLog } from '../memory/dirty-log';
import { GuestMemory } from '../memory/guest-memory';
import { signalEventFd } from '../sys/eventfd';
import { ChainError, DescriptorChain, walkChain } from './descriptor-chain';
import {
  AVAIL_ALIGN,
  DESC_ALIGN,
  USED_ALIGN,
  VIRTQ_AVAIL_F_NO_INTERRUPT,
  VIRTQ_USED_F_NO_NOTIFY,
  availRingSize,
  descTableSize,
  usedRingSize,
  vringNeedEvent,
} from './ring-layout';

export interface RingAddresses {
  /** Front-end virtual addresses, as SET_VRING_ADDR gives them. */
  desc: number;
  avail: number;
  used: number;
}

export interface RingFeatures {
  eventIdx: boolean;
  indirect: boolean;
}

export class VirtqueueError extends Error {
  constructor(
    readonly queue: number,
    message: string,
  ) {
    super(`queue ${queue}: ${message}`);
    this.name = 'VirtqueueError';
  }
}

/** Views of the three ring parts in guest memory, for one memory table. */
class RingViews {
  readonly desc: DataView;
  readonly avail: Uint16Array;
  readonly used: Uint16Array;
  readonly usedElems: Uint32Array;
  /** Index of avail's used_event and used's avail_event in their Uint16Arrays. */
  readonly usedEventAt: number;
  readonly availEventAt: number;

  constructor(queue: number, memory: GuestMemory, addr: RingAddresses, num: number) {
    const view = (what: string, uva: number, len: number, align: number): Buffer => {
      const v = memory.uvaView(uva, len);
      if (!v) throw new VirtqueueError(queue, `${what} ring at 0x${uva.toString(16)} (+${len}) is outside guest memory`);
      if (uva % align !== 0 || v.byteOffset % align !== 0) throw new VirtqueueError(queue, `${what} ring at 0x${uva.toString(16)} is not ${align}-byte aligned`);
      return v;
    };
    const d = view('descriptor', addr.desc, descTableSize(num), DESC_ALIGN);
    const a = view('available', addr.avail, availRingSize(num), AVAIL_ALIGN);
    const u = view('used', addr.used, usedRingSize(num), USED_ALIGN);
    this.desc = new DataView(d.buffer, d.byteOffset, d.length);
    this.avail = new Uint16Array(a.buffer, a.byteOffset, a.length / 2);
    this.used = new Uint16Array(u.buffer, u.byteOffset, u.length / 2);
    this.usedElems = new Uint32Array(u.buffer, u.byteOffset + 4, num * 2);
    this.usedEventAt = 2 + num;
    this.availEventAt = (4 + 8 * num) / 2;
  }
}

export type ChainHandler = (chain: DescriptorChain) => void;

export class Virtqueue {
  size = 0;
  lastAvailIdx = 0;
  usedIdx = 0;
  enabled = false;
  /** Set when the ring's indices are inconsistent: no more chains are popped until it is reset. */
  broken: string | null = null;
  callFd: number | null = null;
  features: RingFeatures = { eventIdx: false, indirect: false };
  addresses: RingAddresses | null = null;
  /** Chains popped and not yet pushed back. */
  inFlight = 0;
  private views: RingViews | null = null;
  private memory: GuestMemory | null = null;
  private lastSignalledUsed = 0;
  kicks = 0;
  notifications = 0;
  /**
   * The migration's dirty log while the front-end asks for logging (VHOST_F_LOG_ALL): data written
   * through complete() is marked, and the used ring too when `logUsedAt` is set (VHOST_VRING_F_LOG).
   */
  log: DirtyLog | null = null;
  /** Guest-physical address of the used ring for the log (vhost_vring_addr.log_guest_addr). */
  logUsedAt: number | null = null;
  /** Called when the last chain in flight is pushed back. */
  onSettled: (() => void) | null = null;

  constructor(readonly index: number) {}

  get ready(): boolean {
    return this.views !== null;
  }

  /** Maps the ring with the given memory (after SET_VRING_ADDR or a new memory table). */
  attach(memory: GuestMemory): void {
    if (!this.addresses || this.size === 0) throw new VirtqueueError(this.index, 'ring size or addresses not set');
    this.views = new RingViews(this.index, memory, this.addresses, this.size);
    this.memory = memory;
  }

  /** Starts from the used index the driver sees (libvhost-user does the same on SET_VRING_ADDR). */
  syncUsedIdx(): void {
    if (!this.views) return;
    this.usedIdx = Atomics.load(this.views.used, 1);
    this.lastSignalledUsed = this.usedIdx;
  }

  detach(): void {
    this.views = null;
    this.memory = null;
  }

  /** Number of chains the driver has made available and we have not popped. */
  pending(): number {
    if (!this.views) return 0;
    return (Atomics.load(this.views.avail, 1) - this.lastAvailIdx) & 0xffff;
  }

  /** Chains the driver has made available and not yet got back (popped or not): its queue depth now. */
  outstanding(): number {
    if (!this.views) return 0;
    return (Atomics.load(this.views.avail, 1) - this.usedIdx) & 0xffff;
  }

  /**
   * Pops every available chain, calling `onChain` for each good one and `onError` for each
   * malformed one (the malformed chain is returned to the driver with length 0 when its head is
   * valid). Re-arms notifications and re-checks the ring before returning, so no kick is lost.
   */
  drain(onChain: ChainHandler, onError: (e: ChainError | VirtqueueError) => void): number {
    const v = this.views;
    const memory = this.memory;
    if (!v || !memory || !this.enabled || this.broken) return 0;
    let popped = 0;
    this.setKickSuppressed(true);
    for (;;) {
      const avail = Atomics.load(v.avail, 1);
      const n = (avail - this.lastAvailIdx) & 0xffff;
      if (n > this.size) {
        this.broken = `available index ${avail} is ${n} ahead of ours (${this.lastAvailIdx}), more than the queue size ${this.size}`;
        onError(new VirtqueueError(this.index, this.broken));
        return popped;
      }
      for (let k = 0; k < n; k++) {
        const head = v.avail[2 + (this.lastAvailIdx % this.size)];
        this.lastAvailIdx = (this.lastAvailIdx + 1) & 0xffff;
        popped++;
        let chain: DescriptorChain;
        try {
          chain = walkChain(memory, v.desc, this.size, head, this.features.indirect);
        } catch (e) {
          if (!(e instanceof ChainError)) throw e;
          e.queue = this.index;
          e.message = `queue ${this.index}: ${e.message}`;
          onError(e);
          if (head < this.size) {
            this.inFlight++;
            this.push(head, 0);
          }
          continue;
        }
        this.inFlight++;
        onChain(chain);
      }
      this.setKickSuppressed(false);
      // Atomics.store above is a full fence: a chain added before it is seen by this load.
      if (((Atomics.load(v.avail, 1) - this.lastAvailIdx) & 0xffff) === 0) break;
      this.setKickSuppressed(true);
    }
    return popped;
  }

  /**
   * Bounded polling: with kicks suppressed (the driver need not write the kick eventfd, we need not be
   * woken), watches the available index for up to `us` microseconds. True as soon as chains are
   * available; else kicks are asked for again and the ring checked once more (no kick is lost).
   */
  pollAvailable(us: number): boolean {
    const v = this.views;
    if (!v || !this.enabled || this.broken) return false;
    this.setKickSuppressed(true);
    const until = performance.now() + us / 1000;
    do {
      if (((Atomics.load(v.avail, 1) - this.lastAvailIdx) & 0xffff) !== 0) return true;
    } while (performance.now() < until);
    this.setKickSuppressed(false);
    return ((Atomics.load(v.avail, 1) - this.lastAvailIdx) & 0xffff) !== 0;
  }

  private setKickSuppressed(suppressed: boolean): void {
    const v = this.views!;
    if (this.features.eventIdx) {
      // Ask for a kick as soon as the driver adds past what we have popped.
      if (!suppressed) {
        Atomics.store(v.used, v.availEventAt, this.lastAvailIdx);
        this.logUsed(v.availEventAt * 2, 2);
      }
    } else {
      Atomics.store(v.used, 0, suppressed ? VIRTQ_USED_F_NO_NOTIFY : 0);
      this.logUsed(0, 2);
    }
  }

  /** Marks bytes [at, at+len) of the used ring in the dirty log, when the ring is logged. */
  private logUsed(at: number, len: number): void {
    if (this.log && this.logUsedAt !== null) this.log.mark(this.logUsedAt + at, len);
  }

  /** Returns a popped chain with `len` bytes written to its writable buffers (logged while migrating). */
  complete(chain: DescriptorChain, len: number): void {
    const log = this.log;
    if (log && len > 0) {
      let left = len;
      for (const seg of chain.writable) {
        const n = Math.min(left, seg.length);
        const gpa = chain.memory.gpaOf(seg);
        if (gpa !== null) log.mark(gpa, n);
        left -= n;
        if (left === 0) break;
      }
    }
    this.push(chain.head, len);
  }

  /** Returns a chain to the driver with `len` bytes written. Call notify() after a batch. */
  push(head: number, len: number): void {
    const v = this.views;
    if (v) {
      const slot = (this.usedIdx % this.size) * 2;
      v.usedElems[slot] = head;
      v.usedElems[slot + 1] = len;
      this.usedIdx = (this.usedIdx + 1) & 0xffff;
      Atomics.store(v.used, 1, this.usedIdx);
      if (this.log) {
        this.logUsed(4 + slot * 4, 8);
        this.logUsed(2, 2);
      }
    } // else the ring was stopped: the element is dropped, the front-end resets the ring.
    if (--this.inFlight === 0) this.onSettled?.();
  }

  /** Signals the call eventfd if the driver wants to hear about the used elements pushed so far. */
  notify(): boolean {
    const v = this.views;
    if (!v || this.callFd === null) return false;
    const old = this.lastSignalledUsed;
    const now = this.usedIdx;
    if (old === now) return false;
    this.lastSignalledUsed = now;
    this.log?.announce();
    let want: boolean;
    if (this.features.eventIdx) want = vringNeedEvent(Atomics.load(v.avail, v.usedEventAt), now, old);
    else want = (Atomics.load(v.avail, 0) & VIRTQ_AVAIL_F_NO_INTERRUPT) === 0;
    if (!want) return false;
    this.notifications++;
    signalEventFd(this.callFd);
    return true;
  }

  /** Forgets ring state (RESET_OWNER, disconnect, GET_VRING_BASE). */
  reset(): void {
    this.detach();
    this.enabled = false;
    this.broken = null;
    this.addresses = null;
    this.lastAvailIdx = 0;
    this.usedIdx = 0;
    this.lastSignalledUsed = 0;
    this.logUsedAt = null;
  }
}
