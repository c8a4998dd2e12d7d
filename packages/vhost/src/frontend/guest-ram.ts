// The simulated guest's RAM: one memfd, shared with the back-end as two regions with a hole
// between them (as a PC's RAM below and above 4 GiB), so address translation is exercised.
import * as fs from 'fs';
import { MFD_CLOEXEC, MAP_SHARED, Mapping, PROT_READ, PROT_WRITE, memfdCreate, mmap, munmap } from '../sys/libc';
import { MemoryRegionDesc } from '../protocol/messages';

export interface RamRegion {
  desc: MemoryRegionDesc;
  /** Offset of the region in the memfd and in `bytes`. */
  fileOffset: number;
  size: number;
}

/** Where the regions appear to the back-end (arbitrary, as QEMU's would be). */
const HIGH_GPA = 0x1_0000_0000;
const UVA_BASE = 0x7f00_0000_0000;

export class GuestRam {
  readonly fd: number;
  readonly size: number;
  readonly regions: RamRegion[];
  private readonly mapping: Mapping;
  private next = 0;
  private readonly free = new Map<number, number[]>();

  constructor(size: number) {
    if (size % 8192 !== 0) throw new Error('guest RAM size must be a multiple of 8 KiB');
    this.size = size;
    this.fd = memfdCreate('vfsd-guest-ram', MFD_CLOEXEC);
    fs.ftruncateSync(this.fd, size);
    this.mapping = mmap(size, PROT_READ | PROT_WRITE, MAP_SHARED, this.fd, 0);
    const half = size / 2;
    this.regions = [
      { fileOffset: 0, size: half, desc: { guest_phys_addr: 0n, memory_size: BigInt(half), userspace_addr: BigInt(UVA_BASE), mmap_offset: 0n } },
      {
        fileOffset: half,
        size: half,
        desc: { guest_phys_addr: BigInt(HIGH_GPA), memory_size: BigInt(half), userspace_addr: BigInt(UVA_BASE + 0x1000_0000_00), mmap_offset: BigInt(half) },
      },
    ];
  }

  get bytes(): Buffer {
    return this.mapping.buffer;
  }

  /** Guest-physical address of a RAM offset. */
  gpa(offset: number): number {
    const r = this.regionOf(offset);
    return Number(r.desc.guest_phys_addr) + (offset - r.fileOffset);
  }

  /** Front-end virtual address of a RAM offset (what ring addresses use). */
  uva(offset: number): number {
    const r = this.regionOf(offset);
    return Number(r.desc.userspace_addr) + (offset - r.fileOffset);
  }

  private regionOf(offset: number): RamRegion {
    const r = this.regions.find((x) => offset >= x.fileOffset && offset < x.fileOffset + x.size);
    if (!r) throw new Error(`offset ${offset} outside guest RAM`);
    return r;
  }

  /**
   * Allocates `len` bytes aligned to `align` that do not cross a region edge (power-of-two size
   * classes, freed blocks reused).
   */
  alloc(len: number, align = 16): number {
    const cls = Math.max(64, 1 << Math.ceil(Math.log2(Math.max(len, 1))));
    const list = this.free.get(cls);
    if (list && list.length) return list.pop()!;
    let at = Math.ceil(this.next / Math.max(align, Math.min(cls, 4096))) * Math.max(align, Math.min(cls, 4096));
    const half = this.size / 2;
    if (at < half && at + cls > half) at = half;
    if (at + cls > this.size) throw new Error(`guest RAM exhausted (${this.size} bytes)`);
    this.next = at + cls;
    return at;
  }

  release(offset: number, len: number): void {
    const cls = Math.max(64, 1 << Math.ceil(Math.log2(Math.max(len, 1))));
    const list = this.free.get(cls) ?? [];
    list.push(offset);
    this.free.set(cls, list);
  }

  close(): void {
    munmap(this.mapping);
    fs.closeSync(this.fd);
  }
}
