// The guest's side of FUSE over the simulated front-end: builds requests with the codec's structs,
// submits them on a queue and decodes the replies.
import type { SimulatedFrontend } from '@vfsd/vhost/testing';
import {
  FUSE_KERNEL_MINOR_VERSION,
  FUSE_KERNEL_VERSION,
  FuseFileLock,
  FuseOpcode,
  fuse_attr_out,
  fuse_entry_out,
  fuse_getattr_in,
  fuse_in_header,
  fuse_init_in,
  fuse_lk_in,
  fuse_lk_out,
  fuse_interrupt_in,
  type Struct,
} from '../fuse';

export interface FuseReply {
  error: number;
  unique: bigint;
  body: Buffer;
}

export class FuseClient {
  private nextUnique = 1n;
  constructor(
    readonly fe: SimulatedFrontend,
    readonly queue = 1,
  ) {}

  encode(opcode: number, nodeid: bigint, args: Uint8Array[], unique = this.nextUnique++): Buffer {
    const len = 40 + args.reduce((n, a) => n + a.length, 0);
    const b = Buffer.alloc(len);
    fuse_in_header.encode({ len, opcode, unique, nodeid, uid: 1000, gid: 1000, pid: 4242, total_extlen: 0 }, b, 0);
    let off = 40;
    for (const a of args) {
      b.set(a, off);
      off += a.length;
    }
    return b;
  }

  struct<T>(s: Struct<unknown, T>, v: T): Buffer {
    const b = Buffer.alloc(s.size);
    s.encode(v, b, 0);
    return b;
  }

  async raw(bytes: Buffer, outSize: number, queue = this.queue): Promise<FuseReply> {
    const r = await this.fe.submit(queue, [bytes], [outSize]);
    if (r.len < 16) return { error: NaN, unique: 0n, body: Buffer.alloc(0) };
    return { error: r.data.readInt32LE(4), unique: r.data.readBigUInt64LE(8), body: r.data.subarray(16, r.len) };
  }

  request(opcode: number, nodeid: bigint, args: Uint8Array[], outSize: number, queue = this.queue): Promise<FuseReply> {
    return this.raw(this.encode(opcode, nodeid, args), outSize, queue);
  }

  async init(): Promise<FuseReply> {
    const arg = this.struct(fuse_init_in, { major: FUSE_KERNEL_VERSION, minor: FUSE_KERNEL_MINOR_VERSION, max_readahead: 131072, flags: 0xffffffff, flags2: 0 });
    return this.request(FuseOpcode.FUSE_INIT, 0n, [arg], 16 + 64);
  }

  async lookup(parent: bigint, name: string): Promise<FuseReply> {
    return this.request(FuseOpcode.FUSE_LOOKUP, parent, [Buffer.from(name + '\0')], 16 + fuse_entry_out.size);
  }

  async getattr(nodeid: bigint, queue = this.queue): Promise<FuseReply> {
    return this.request(FuseOpcode.FUSE_GETATTR, nodeid, [this.struct(fuse_getattr_in, { getattr_flags: 0, fh: 0n })], 16 + fuse_attr_out.size, queue);
  }

  lkArg(owner: bigint, lk: FuseFileLock): Buffer {
    return this.struct(fuse_lk_in, { fh: 0n, owner, lk, lk_flags: 0 });
  }

  setlk(nodeid: bigint, owner: bigint, lk: FuseFileLock, wait: boolean, unique?: bigint): Promise<FuseReply> {
    const op = wait ? FuseOpcode.FUSE_SETLKW : FuseOpcode.FUSE_SETLK;
    return this.raw(this.encode(op, nodeid, [this.lkArg(owner, lk)], unique), 16);
  }

  getlk(nodeid: bigint, owner: bigint, lk: FuseFileLock): Promise<FuseReply> {
    return this.request(FuseOpcode.FUSE_GETLK, nodeid, [this.lkArg(owner, lk)], 16 + fuse_lk_out.size);
  }

  /** FUSE_INTERRUPT has no reply: the chain comes back with nothing written. */
  interrupt(target: bigint): Promise<unknown> {
    return this.fe.submit(this.queue, [this.encode(FuseOpcode.FUSE_INTERRUPT, 0n, [this.struct(fuse_interrupt_in, { unique: target })])], [16]);
  }
}
