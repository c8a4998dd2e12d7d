// Guest memory: the regions the front-end shares (memfds received with SET_MEM_TABLE/ADD_MEM_REG),
// mapped into this process and viewed from JS without copies. Descriptors carry guest-physical
// addresses; ring addresses (SET_VRING_ADDR) are front-end virtual addresses. Every access is
// bounds-checked against the regions.
import * as fs from 'fs';
import { closeFd } from '../sys/close-fd';
import { MAP_SHARED, Mapping, PROT_READ, PROT_WRITE, dupFd, mmap, munmap } from '../sys/libc';
import { MemoryRegionDesc } from '../protocol/messages';

/** One Buffer can cover at most 4 GiB in Node 20: large regions are mapped as several windows. */
export const WINDOW_SIZE = 1 << 30;
const PAGE = 4096;

interface Window {
  /** Offset of the window inside the region. */
  start: number;
  length: number;
  mapping: Mapping;
  view: Buffer;
  /** view's ArrayBuffer and offset in it, for plain Uint8Array views (made twice as fast as a Buffer's subarray). */
  ab: ArrayBuffer;
  base: number;
}

/** Largest address we accept: JS numbers are exact to 2^53, far above any real address. */
const MAX_ADDR = Number.MAX_SAFE_INTEGER;

export function toAddress(v: bigint): number {
  return v > BigInt(MAX_ADDR) ? -1 : Number(v);
}

export class MemoryRegion {
  readonly guestPhysAddr: number;
  readonly size: number;
  readonly userAddr: number;
  private readonly windows: Window[] = [];
  private unmapped = false;
  /** A copy of the region's fd, kept for as long as it is mapped: a request-queue thread maps it too. */
  private fd = -1;

  constructor(readonly desc: MemoryRegionDesc, fd: number) {
    this.guestPhysAddr = toAddress(desc.guest_phys_addr);
    this.size = toAddress(desc.memory_size);
    this.userAddr = toAddress(desc.userspace_addr);
    const mmapOffset = toAddress(desc.mmap_offset);
    if (this.guestPhysAddr < 0 || this.size <= 0 || this.userAddr < 0 || mmapOffset < 0) {
      throw new Error(`memory region out of range: gpa=0x${desc.guest_phys_addr.toString(16)} size=0x${desc.memory_size.toString(16)}`);
    }
    if (this.guestPhysAddr + this.size > MAX_ADDR || this.userAddr + this.size > MAX_ADDR) {
      throw new Error('memory region wraps the address space');
    }
    const st = fs.fstatSync(fd);
    if (st.isFile() && st.size < mmapOffset + this.size) {
      throw new Error(`memory region fd is ${st.size} bytes, region needs ${mmapOffset + this.size}`);
    }
    try {
      for (let start = 0; start < this.size; start += WINDOW_SIZE) {
        const length = Math.min(WINDOW_SIZE, this.size - start);
        const fileOff = mmapOffset + start;
        const aligned = fileOff - (fileOff % PAGE);
        const delta = fileOff - aligned;
        const mapping = mmap(length + delta, PROT_READ | PROT_WRITE, MAP_SHARED, fd, aligned);
        const view = mapping.buffer.subarray(delta, delta + length);
        this.windows.push({ start, length, mapping, view, ab: view.buffer as ArrayBuffer, base: view.byteOffset });
      }
      this.fd = dupFd(fd);
    } catch (e) {
      this.unmap();
      throw e;
    }
  }

  /** A new copy of the region's fd for another thread to map (it closes it), or -1 once unmapped. */
  shareFd(): number {
    return this.fd < 0 ? -1 : dupFd(this.fd);
  }

  containsGpa(gpa: number): boolean {
    return gpa >= this.guestPhysAddr && gpa < this.guestPhysAddr + this.size;
  }

  containsUva(uva: number): boolean {
    return uva >= this.userAddr && uva < this.userAddr + this.size;
  }

  /**
   * Pushes views of [offset, offset+len) of this region (split at window edges) onto `out`;
   * returns the bytes covered (less than len when the range leaves the region).
   */
  views(offset: number, len: number, out: Uint8Array[]): number {
    let done = 0;
    while (done < len && offset + done < this.size) {
      const at = offset + done;
      const w = this.windows[Math.floor(at / WINDOW_SIZE)];
      const inWin = at - w.start;
      const n = Math.min(len - done, w.length - inWin);
      out.push(new Uint8Array(w.ab, w.base + inWin, n));
      done += n;
    }
    return done;
  }

  /** The guest-physical address of a view's first byte, if the view lies in this region. */
  gpaOf(view: Uint8Array): number | null {
    for (const w of this.windows) {
      if (view.buffer === w.view.buffer && view.byteOffset >= w.view.byteOffset && view.byteOffset < w.view.byteOffset + w.length) {
        return this.guestPhysAddr + w.start + (view.byteOffset - w.view.byteOffset);
      }
    }
    return null;
  }

  /** A single view when [offset, offset+len) lies in one window, else null. */
  view(offset: number, len: number): Buffer | null {
    if (offset < 0 || len < 0 || offset + len > this.size) return null;
    const w = this.windows[Math.floor(offset / WINDOW_SIZE)];
    const inWin = offset - w.start;
    if (inWin + len > w.length) return null;
    return w.view.subarray(inWin, inWin + len);
  }

  unmap(): void {
    if (this.unmapped) return;
    this.unmapped = true;
    for (const w of this.windows) munmap(w.mapping);
    this.windows.length = 0;
    if (this.fd >= 0) closeFd(this.fd);
    this.fd = -1;
  }
}

export class GuestMemoryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GuestMemoryError';
  }
}

/** The current set of regions. Replaced (never edited in place) when the table changes. */
export class GuestMemory {
  private last: MemoryRegion | null = null;

  constructor(readonly regions: readonly MemoryRegion[]) {}

  private byGpa(gpa: number): MemoryRegion | null {
    const l = this.last;
    if (l && l.containsGpa(gpa)) return l;
    for (const r of this.regions) {
      if (r.containsGpa(gpa)) {
        this.last = r;
        return r;
      }
    }
    return null;
  }

  /**
   * Views of guest-physical [gpa, gpa+len), crossing regions when they are contiguous.
   * Returns false (pushing nothing further) when any byte is outside guest memory.
   */
  gpaViews(gpa: number, len: number, out: Uint8Array[]): boolean {
    if (gpa < 0 || len < 0 || gpa + len > MAX_ADDR) return false;
    let done = 0;
    while (done < len) {
      const r = this.byGpa(gpa + done);
      if (!r) return false;
      done += r.views(gpa + done - r.guestPhysAddr, len - done, out);
    }
    return true;
  }

  /** Where a view of this memory starts, guest-physically (null for bytes that are not guest memory). */
  gpaOf(view: Uint8Array): number | null {
    for (const r of this.regions) {
      const gpa = r.gpaOf(view);
      if (gpa !== null) return gpa;
    }
    return null;
  }

  /** One contiguous view of guest-physical memory, or null. */
  gpaView(gpa: number, len: number): Buffer | null {
    const r = this.byGpa(gpa);
    return r ? r.view(gpa - r.guestPhysAddr, len) : null;
  }

  /** One contiguous view at a front-end virtual address (ring addresses), or null. */
  uvaView(uva: number, len: number): Buffer | null {
    for (const r of this.regions) {
      if (r.containsUva(uva)) return r.view(uva - r.userAddr, len);
    }
    return null;
  }

  /** Copies guest-physical memory out (for small reads across window edges). */
  read(gpa: number, len: number): Buffer {
    const views: Uint8Array[] = [];
    if (!this.gpaViews(gpa, len, views)) throw new GuestMemoryError(`read of ${len} bytes at gpa 0x${gpa.toString(16)} is outside guest memory`);
    return views.length === 1 ? Buffer.from(views[0]) : Buffer.concat(views);
  }

  write(gpa: number, data: Uint8Array): void {
    const views: Uint8Array[] = [];
    if (!this.gpaViews(gpa, data.length, views)) throw new GuestMemoryError(`write of ${data.length} bytes at gpa 0x${gpa.toString(16)} is outside guest memory`);
    let off = 0;
    for (const v of views) {
      v.set(data.subarray(off, off + v.length));
      off += v.length;
    }
  }
}
