// Builders of raw request bytes for the codec tests. They use Buffer writes at
// the offsets of the gcc-generated ABI table, not the codec's own layouts, so
// decode tests do not just round-trip the codec through itself.
import { ABI } from './abi.fixture';

export const IN_HEADER = ABI.structs.fuse_in_header.size;

export interface HeaderFields {
  unique?: bigint;
  nodeid?: bigint;
  uid?: number;
  gid?: number;
  pid?: number;
  total_extlen?: number;
  /** Override fuse_in_header.len (default: the real length). */
  len?: number;
}

/** Little-endian field writer: u32(1), u64(2n), str('abc') (with NUL), raw bytes. */
export class Bytes {
  private parts: Buffer[] = [];
  u16(v: number): this {
    const b = Buffer.alloc(2);
    b.writeUInt16LE(v);
    this.parts.push(b);
    return this;
  }
  u32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v >>> 0);
    this.parts.push(b);
    return this;
  }
  i32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    this.parts.push(b);
    return this;
  }
  u64(v: bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt.asUintN(64, v));
    this.parts.push(b);
    return this;
  }
  /** A NUL-terminated string. */
  str(s: string): this {
    this.parts.push(Buffer.from(s + '\0', 'latin1'));
    return this;
  }
  raw(b: Uint8Array | string): this {
    this.parts.push(typeof b === 'string' ? Buffer.from(b, 'latin1') : Buffer.from(b));
    return this;
  }
  zeros(n: number): this {
    this.parts.push(Buffer.alloc(n));
    return this;
  }
  build(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** A complete request: fuse_in_header (offsets from the ABI table) + body. */
export function request(opcode: number, body: Buffer | Bytes = Buffer.alloc(0), h: HeaderFields = {}): Buffer {
  const b = body instanceof Bytes ? body.build() : body;
  const out = Buffer.alloc(IN_HEADER + b.length);
  const f = ABI.structs.fuse_in_header.fields;
  out.writeUInt32LE(h.len ?? out.length, f.len);
  out.writeUInt32LE(opcode, f.opcode);
  out.writeBigUInt64LE(h.unique ?? 0x1122334455667788n, f.unique);
  out.writeBigUInt64LE(h.nodeid ?? 1n, f.nodeid);
  out.writeUInt32LE(h.uid ?? 1000, f.uid);
  out.writeUInt32LE(h.gid ?? 100, f.gid);
  out.writeUInt32LE(h.pid ?? 4242, f.pid);
  out.writeUInt16LE(h.total_extlen ?? 0, f.total_extlen);
  b.copy(out, IN_HEADER);
  return out;
}

/** Hex dump helper for readable byte expectations. */
export function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}
