// The dirty-page log of a live migration (vhost-user "Migration": VHOST_USER_PROTOCOL_F_LOG_SHMFD).
// The front-end shares a bitmap, one bit per 4 KiB page of guest-physical memory; while it has acked
// VHOST_F_LOG_ALL, every byte the back-end writes into guest memory (reply data, used-ring entries)
// has its page marked, so that QEMU sends that page again. QEMU reads and clears the bitmap while we
// write it: bits are set with atomic ORs.
import * as fs from 'fs';
import { closeFd } from '../sys/close-fd';
import { signalEventFd } from '../sys/eventfd';
import { MAP_SHARED, Mapping, PROT_READ, PROT_WRITE, mmap, munmap } from '../sys/libc';

export const VHOST_LOG_PAGE = 0x1000;
const MMAP_ALIGN = 4096;

export class DirtyLog {
  private readonly mapping: Mapping;
  /** The bitmap: byte page>>3, bit page&7. */
  private readonly bits: Uint8Array;
  /** Marks of pages beyond the log's end (a front-end bug): counted, never written. */
  outOfRange = 0;
  /** A page was marked since the last announce(). */
  private changed = false;
  /** SET_LOG_FD's eventfd (optional in the spec): signalled after marks, once per notification. */
  private eventFd: number | null = null;

  constructor(fd: number, size: number, offset: number) {
    if (!Number.isSafeInteger(size) || !Number.isSafeInteger(offset) || size <= 0 || offset < 0) throw new RangeError(`dirty log of ${size} bytes at offset ${offset}`);
    // A bitmap past the file's end would map, and the first mark there would kill us with SIGBUS.
    const st = fs.fstatSync(fd);
    if (st.isFile() && st.size < offset + size) throw new RangeError(`dirty log fd is ${st.size} bytes, the log needs ${offset + size}`);
    const aligned = offset - (offset % MMAP_ALIGN);
    this.mapping = mmap(size + offset - aligned, PROT_READ | PROT_WRITE, MAP_SHARED, fd, aligned);
    this.bits = new Uint8Array(this.mapping.buffer.buffer, this.mapping.buffer.byteOffset + (offset - aligned), size);
  }

  get size(): number {
    return this.bits.length;
  }

  /** Marks every page that [gpa, gpa+len) touches. */
  mark(gpa: number, len: number): void {
    if (len <= 0) return;
    const last = Math.floor((gpa + len - 1) / VHOST_LOG_PAGE);
    for (let page = Math.floor(gpa / VHOST_LOG_PAGE); page <= last; page++) {
      const byte = Math.floor(page / 8);
      if (byte >= this.bits.length) {
        this.outOfRange++;
        return;
      }
      Atomics.or(this.bits, byte, 1 << (page & 7));
    }
    this.changed = true;
  }

  /** True if the page holding `gpa` is marked (tests, inspection). */
  isMarked(gpa: number): boolean {
    const page = Math.floor(gpa / VHOST_LOG_PAGE);
    const byte = page >> 3;
    return byte < this.bits.length && (Atomics.load(this.bits, byte) & (1 << (page & 7))) !== 0;
  }

  setEventFd(fd: number): void {
    this.closeEventFd();
    this.eventFd = fd;
  }

  /** Tells the front-end (SET_LOG_FD) that pages were marked; called with each ring notification. */
  announce(): void {
    if (!this.changed || this.eventFd === null) return;
    this.changed = false;
    signalEventFd(this.eventFd);
  }

  close(): void {
    this.closeEventFd();
    munmap(this.mapping);
  }

  private closeEventFd(): void {
    closeFd(this.eventFd);
    this.eventFd = null;
  }
}

