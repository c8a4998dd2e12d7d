// RLIMIT_NOFILE: every inode the guest knows holds an O_PATH fd, so the daemon raises its open-file
// limit at start-up as virtiofsd does: to min(1,000,000, fs.file-max - 16,384) unless told a number.
import * as fs from 'fs';
import { prlimitNofile } from '@vfsd/passthrough';

export interface NofileLimit {
  soft: number;
  hard: number;
}

export function getNofileLimit(): NofileLimit {
  const r = prlimitNofile(0);
  if (typeof r === 'number') throw new Error(`prlimit: errno ${-r}`);
  return { soft: Number(r.soft), hard: Number(r.hard) };
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
  const set = (soft: number, hard: number): boolean => typeof prlimitNofile(0, { soft: BigInt(soft), hard: BigInt(hard) }) !== 'number';
  if (!set(target, Math.max(target, cur.hard))) set(Math.min(target, cur.hard), cur.hard);
  return getNofileLimit();
}
