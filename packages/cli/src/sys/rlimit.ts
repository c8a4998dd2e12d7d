// RLIMIT_NOFILE: every inode the guest knows holds an O_PATH fd, so the daemon raises its open-file
// limit at start-up as virtiofsd does: to min(1,000,000, fs.file-max - 16,384) unless told a number.
import * as fs from 'fs';
import { DataType } from 'ffi-rs';
import { libcCall } from './libc';

const RLIMIT_NOFILE = 7;

function prlimit(newLimit: Buffer | null, old: Buffer): { ok: boolean; errno: number } {
  const r = libcCall('prlimit', DataType.I32, [DataType.I32, DataType.I32, newLimit ? DataType.U8Array : DataType.I64, DataType.U8Array], [0, RLIMIT_NOFILE, newLimit ?? 0, old]);
  return { ok: r.value === 0, errno: r.errno };
}

export interface NofileLimit {
  soft: number;
  hard: number;
}

export function getNofileLimit(): NofileLimit {
  const old = Buffer.alloc(16);
  prlimit(null, old);
  return { soft: Number(old.readBigUInt64LE(0)), hard: Number(old.readBigUInt64LE(8)) };
}

function defaultTarget(): number {
  let fileMax = 1_000_000 + 16_384;
  try {
    fileMax = Number(fs.readFileSync('/proc/sys/fs/file-max', 'utf8').trim());
  } catch {
    // keep the default
  }
  return Math.min(1_000_000, fileMax - 16_384);
}

/**
 * Raises the limit to `wanted` (default: virtiofsd's target), up to the hard limit, or beyond it
 * when privileged. Never lowers it. Returns the limit in force afterwards.
 */
export function raiseNofileLimit(wanted?: number): NofileLimit {
  const cur = getNofileLimit();
  const target = wanted ?? defaultTarget();
  if (target <= cur.soft) return cur;
  const set = (soft: number, hard: number): boolean => {
    const b = Buffer.alloc(16);
    b.writeBigUInt64LE(BigInt(soft), 0);
    b.writeBigUInt64LE(BigInt(hard), 8);
    return prlimit(b, Buffer.alloc(16)).ok;
  };
  if (!set(target, Math.max(target, cur.hard))) set(Math.min(target, cur.hard), cur.hard);
  return getNofileLimit();
}
