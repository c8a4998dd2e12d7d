// struct flock on x86-64 (32 bytes): l_type i16 @0, l_whence i16 @2, pad, l_start i64 @8, l_len i64 @16,
// l_pid i32 @24, pad. Passed to fcntl by pointer; F_OFD_GETLK writes the conflicting lock back into it.
import { SEEK_SET } from './constants';

export const FLOCK_SIZE = 32;

/** A byte-range lock as fcntl sees it: len 0 means "to end of file". */
export interface FlockRecord {
  type: number;
  start: bigint;
  len: bigint;
  /** -1 for an OFD lock, a host pid for a classic POSIX lock; 0 on input (F_OFD_* requires it). */
  pid: number;
}

export function encodeFlock(lock: FlockRecord): Buffer {
  const b = Buffer.alloc(FLOCK_SIZE);
  b.writeInt16LE(lock.type, 0);
  b.writeInt16LE(SEEK_SET, 2);
  b.writeBigInt64LE(lock.start, 8);
  b.writeBigInt64LE(lock.len, 16);
  b.writeInt32LE(lock.pid, 24);
  return b;
}

export function decodeFlock(b: Buffer): FlockRecord {
  return { type: b.readInt16LE(0), start: b.readBigInt64LE(8), len: b.readBigInt64LE(16), pid: b.readInt32LE(24) };
}
