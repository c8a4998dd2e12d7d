// The driver side of a split virtqueue, as the guest's virtio driver runs it: descriptor free
// list, publishing available heads, kick decisions, reaping used elements.
import { GuestRam } from './guest-ram';
import {
  DESC_SIZE,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  VIRTQ_USED_F_NO_NOTIFY,
  availRingSize,
  descTableSize,
  usedRingSize,
  vringNeedEvent,
} from '../virtqueue/ring-layout';

export interface Segment {
  /** Guest-physical address. */
  addr: number;
  len: number;
  write: boolean;
}

export interface RawDescriptor {
  addr: number;
  len: number;
  flags: number;
  next: number;
}

export interface UsedElem {
  id: number;
  len: number;
}

export class DriverQueue {
  readonly descOff: number;
  readonly availOff: number;
  readonly usedOff: number;
  private readonly desc: DataView;
  private readonly avail: Uint16Array;
  private readonly used: Uint16Array;
  private readonly usedElems: Uint32Array;
  private readonly freeList: number[] = [];
  /** Descriptors (and an indirect table) each head holds until it is used. */
  private readonly held = new Map<number, { descs: number[]; indirect: { off: number; len: number } | null }>();
  availIdx = 0;
  lastUsedIdx = 0;
  private publishedIdx = 0;

  constructor(
    private readonly ram: GuestRam,
    readonly index: number,
    readonly size: number,
    readonly eventIdx: boolean,
  ) {
    this.descOff = ram.alloc(descTableSize(size), 4096);
    this.availOff = ram.alloc(availRingSize(size), 4096);
    this.usedOff = ram.alloc(usedRingSize(size), 4096);
    const b = ram.bytes;
    b.fill(0, this.descOff, this.descOff + descTableSize(size));
    b.fill(0, this.availOff, this.availOff + availRingSize(size));
    b.fill(0, this.usedOff, this.usedOff + usedRingSize(size));
    this.desc = new DataView(b.buffer, b.byteOffset + this.descOff, descTableSize(size));
    this.avail = new Uint16Array(b.buffer, b.byteOffset + this.availOff, availRingSize(size) / 2);
    this.used = new Uint16Array(b.buffer, b.byteOffset + this.usedOff, usedRingSize(size) / 2);
    this.usedElems = new Uint32Array(b.buffer, b.byteOffset + this.usedOff + 4, size * 2);
    for (let i = size - 1; i >= 0; i--) this.freeList.push(i);
  }

  /** Ring addresses as the front-end announces them (its own virtual addresses). */
  get addresses(): { desc: number; avail: number; used: number } {
    return { desc: this.ram.uva(this.descOff), avail: this.ram.uva(this.availOff), used: this.ram.uva(this.usedOff) };
  }

  /** The used ring's guest-physical address (vhost_vring_addr.log_guest_addr). */
  get usedGpa(): number {
    return this.ram.gpa(this.usedOff);
  }

  get freeDescriptors(): number {
    return this.freeList.length;
  }

  /** Starts the indices somewhere else (as after SET_VRING_BASE), for wrap-around tests. */
  setBase(idx: number): void {
    this.availIdx = this.publishedIdx = this.lastUsedIdx = idx & 0xffff;
    Atomics.store(this.avail, 1, this.availIdx);
    Atomics.store(this.used, 1, this.lastUsedIdx);
    if (this.eventIdx) Atomics.store(this.avail, 2 + this.size, this.lastUsedIdx);
  }

  writeDescriptor(table: DataView, i: number, d: RawDescriptor): void {
    const off = i * DESC_SIZE;
    table.setUint32(off, d.addr % 0x1_0000_0000, true);
    table.setUint32(off + 4, Math.floor(d.addr / 0x1_0000_0000), true);
    table.setUint32(off + 8, d.len, true);
    table.setUint16(off + 12, d.flags, true);
    table.setUint16(off + 14, d.next, true);
  }

  /** Writes a raw descriptor into the ring's table (malformed-chain tests). */
  writeRaw(i: number, d: RawDescriptor): void {
    this.writeDescriptor(this.desc, i, d);
  }

  /**
   * Adds a chain; returns its head, or null when there are not enough free descriptors.
   * With `indirect`, the segments go in an indirect table and the chain takes one descriptor.
   */
  add(segments: readonly Segment[], indirect: boolean): number | null {
    const flagsOf = (s: Segment, last: boolean): number => (s.write ? VIRTQ_DESC_F_WRITE : 0) | (last ? 0 : VIRTQ_DESC_F_NEXT);
    if (indirect) {
      if (this.freeList.length < 1) return null;
      const len = segments.length * DESC_SIZE;
      const off = this.ram.alloc(len, 16);
      const b = this.ram.bytes;
      const table = new DataView(b.buffer, b.byteOffset + off, len);
      segments.forEach((s, i) => this.writeDescriptor(table, i, { addr: s.addr, len: s.len, flags: flagsOf(s, i === segments.length - 1), next: i + 1 }));
      const head = this.freeList.pop()!;
      this.writeDescriptor(this.desc, head, { addr: this.ram.gpa(off), len, flags: VIRTQ_DESC_F_INDIRECT, next: 0 });
      this.held.set(head, { descs: [head], indirect: { off, len } });
      this.publish(head);
      return head;
    }
    if (this.freeList.length < segments.length) return null;
    const descs = segments.map(() => this.freeList.pop()!);
    segments.forEach((s, i) => this.writeDescriptor(this.desc, descs[i], { addr: s.addr, len: s.len, flags: flagsOf(s, i === segments.length - 1), next: descs[i + 1] ?? 0 }));
    this.held.set(descs[0], { descs, indirect: null });
    this.publish(descs[0]);
    return descs[0];
  }

  /** Puts a head in the available ring (not yet visible: see flush()). */
  publish(head: number): void {
    this.avail[2 + (this.availIdx % this.size)] = head;
    this.availIdx = (this.availIdx + 1) & 0xffff;
  }

  /** Makes published heads visible; returns whether the device wants a kick. */
  flush(): boolean {
    const old = this.publishedIdx;
    const now = this.availIdx;
    if (old === now) return false;
    Atomics.store(this.avail, 1, now); // full fence, then read the device's wish
    this.publishedIdx = now;
    if (this.eventIdx) return vringNeedEvent(Atomics.load(this.used, (4 + 8 * this.size) / 2), now, old);
    return (Atomics.load(this.used, 0) & VIRTQ_USED_F_NO_NOTIFY) === 0;
  }

  /** Reaps used elements and frees their descriptors; re-arms the interrupt (used_event). */
  reap(): UsedElem[] {
    const out: UsedElem[] = [];
    for (;;) {
      const usedIdx = Atomics.load(this.used, 1);
      while (this.lastUsedIdx !== usedIdx) {
        const slot = (this.lastUsedIdx % this.size) * 2;
        const id = this.usedElems[slot];
        const len = this.usedElems[slot + 1];
        this.lastUsedIdx = (this.lastUsedIdx + 1) & 0xffff;
        const h = this.held.get(id);
        if (h) {
          this.held.delete(id);
          for (let i = h.descs.length - 1; i >= 0; i--) this.freeList.push(h.descs[i]);
          if (h.indirect) this.ram.release(h.indirect.off, h.indirect.len);
        }
        out.push({ id, len });
      }
      if (!this.eventIdx) return out;
      Atomics.store(this.avail, 2 + this.size, this.lastUsedIdx);
      if (Atomics.load(this.used, 1) === this.lastUsedIdx) return out;
    }
  }

  /** Holds raw descriptors for a head written with writeRaw, so reaping frees them. */
  hold(head: number, descs: number[]): void {
    for (const d of descs) {
      const i = this.freeList.indexOf(d);
      if (i >= 0) this.freeList.splice(i, 1);
    }
    this.held.set(head, { descs, indirect: null });
  }

  get inFlight(): number {
    return this.held.size;
  }
}
