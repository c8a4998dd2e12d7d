// Walking one descriptor chain into views of guest memory, with every check the spec implies:
// head and next in range, no loops, indirect tables well formed (not nested, not with NEXT),
// writable descriptors only after readable ones, every byte inside guest memory.
import { GuestMemory } from '../memory/guest-memory';
import { DESC_SIZE, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from './ring-layout';

export class DescriptorChain {
  readableLength = 0;
  writableLength = 0;
  /** Views of guest memory (plain Uint8Arrays: a Buffer view costs twice as much to make). */
  readonly readable: Uint8Array[] = [];
  readonly writable: Uint8Array[] = [];
  /** Set once a writable descriptor is seen (even an empty one): readable ones may not follow. */
  sawWritable = false;
  constructor(
    readonly head: number,
    /** The memory table the views are of (a migration's dirty log needs their guest addresses). */
    readonly memory: GuestMemory,
  ) {}

  /** All readable bytes as one Buffer: a view when they are in one segment, else a copy. */
  readAll(): Uint8Array {
    if (this.readable.length === 1) return this.readable[0];
    return Buffer.concat(this.readable, this.readableLength);
  }

  /** Copies `data` into the writable segments in order; returns the bytes written (maybe fewer). */
  write(data: Uint8Array, at = 0): number {
    let skip = at;
    let written = 0;
    for (const seg of this.writable) {
      if (written >= data.length) break;
      if (skip >= seg.length) {
        skip -= seg.length;
        continue;
      }
      const n = Math.min(seg.length - skip, data.length - written);
      seg.set(data.subarray(written, written + n), skip);
      written += n;
      skip = 0;
    }
    return written;
  }
}

export class ChainError extends Error {
  /** Set by the virtqueue that popped the chain. */
  queue = -1;
  constructor(
    readonly head: number,
    readonly reason: string,
  ) {
    super(`descriptor chain at head ${head}: ${reason}`);
    this.name = 'ChainError';
  }
}

const TWO_32 = 0x1_0000_0000;
/** Above this the address would not be exact in a JS number: no guest has memory there. */
const MAX_HI = 0x1f_ffff;

/** Reads one descriptor table (the ring's, or an indirect one) through a DataView. */
function walkTable(
  chain: DescriptorChain,
  memory: GuestMemory,
  table: DataView,
  tableSize: number,
  first: number,
  allowIndirect: boolean,
  inIndirect: boolean,
): void {
  let i = first;
  let count = 0;
  for (;;) {
    if (i >= tableSize) throw new ChainError(chain.head, `descriptor index ${i} out of range (table of ${tableSize})`);
    if (++count > tableSize) throw new ChainError(chain.head, `loop: more than ${tableSize} descriptors`);
    const off = i * DESC_SIZE;
    const lo = table.getUint32(off, true);
    const hi = table.getUint32(off + 4, true);
    const len = table.getUint32(off + 8, true);
    const flags = table.getUint16(off + 12, true);
    const next = table.getUint16(off + 14, true);
    if (hi > MAX_HI) throw new ChainError(chain.head, `descriptor ${i} address outside guest memory`);
    const addr = hi * TWO_32 + lo;
    if (flags & VIRTQ_DESC_F_INDIRECT) {
      if (inIndirect) throw new ChainError(chain.head, 'nested indirect descriptor');
      if (!allowIndirect) throw new ChainError(chain.head, 'indirect descriptor but VIRTIO_RING_F_INDIRECT_DESC was not negotiated');
      if (flags & VIRTQ_DESC_F_NEXT) throw new ChainError(chain.head, 'indirect descriptor with NEXT');
      if (len === 0 || len % DESC_SIZE !== 0) throw new ChainError(chain.head, `indirect table length ${len} is not a multiple of ${DESC_SIZE}`);
      let view = memory.gpaView(addr, len);
      if (!view) {
        // Across a window edge: copy the table (rare); outside memory: reject.
        const parts: Uint8Array[] = [];
        if (!memory.gpaViews(addr, len, parts)) throw new ChainError(chain.head, `indirect table at 0x${addr.toString(16)} (+${len}) outside guest memory`);
        view = Buffer.concat(parts);
      }
      walkTable(chain, memory, new DataView(view.buffer, view.byteOffset, len), len / DESC_SIZE, 0, allowIndirect, true);
      return;
    }
    if (flags & VIRTQ_DESC_F_WRITE) {
      chain.sawWritable = true;
      if (len > 0 && !memory.gpaViews(addr, len, chain.writable)) {
        throw new ChainError(chain.head, `descriptor ${i} buffer 0x${addr.toString(16)} (+${len}) outside guest memory`);
      }
      chain.writableLength += len;
    } else {
      if (chain.sawWritable) throw new ChainError(chain.head, `readable descriptor ${i} after a writable one`);
      if (len > 0 && !memory.gpaViews(addr, len, chain.readable)) {
        throw new ChainError(chain.head, `descriptor ${i} buffer 0x${addr.toString(16)} (+${len}) outside guest memory`);
      }
      chain.readableLength += len;
    }
    if (!(flags & VIRTQ_DESC_F_NEXT)) return;
    i = next;
  }
}

/** Walks the chain starting at `head`; throws ChainError on any malformed input. */
export function walkChain(memory: GuestMemory, descTable: DataView, queueSize: number, head: number, allowIndirect: boolean): DescriptorChain {
  const chain = new DescriptorChain(head, memory);
  if (head >= queueSize) throw new ChainError(head, `head index out of range (queue of ${queueSize})`);
  walkTable(chain, memory, descTable, queueSize, head, allowIndirect, false);
  if (chain.readableLength === 0 && chain.writableLength === 0) throw new ChainError(head, 'zero-length chain');
  return chain;
}
