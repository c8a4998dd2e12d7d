// fuse_file_lock (inclusive end, OFFSET_MAX = to EOF) <-> struct flock (length, 0 = to EOF).
import { EINVAL, FsError, type FuseFileLock } from '@vfsd/core/abi';
import { F_RDLCK, F_UNLCK, F_WRLCK, OFFSET_MAX } from './sys/constants';
import type { FlockRecord } from './sys/flock-struct';

export function fuseToFlock(lk: FuseFileLock): FlockRecord {
  if (lk.type !== F_RDLCK && lk.type !== F_WRLCK && lk.type !== F_UNLCK) throw new FsError(EINVAL, `lock type ${lk.type}`);
  if (lk.start > OFFSET_MAX || lk.end > OFFSET_MAX || lk.end < lk.start) throw new FsError(EINVAL, 'lock range');
  const len = lk.end === OFFSET_MAX ? 0n : lk.end - lk.start + 1n;
  // F_OFD_* demand l_pid 0 on input.
  return { type: lk.type, start: lk.start, len, pid: 0 };
}

/**
 * The lock F_OFD_GETLK reported, for the guest. An OFD lock has no pid (-1): report 0; the kernel would
 * map an unknown pid to 0 anyway since host pids mean nothing in the guest.
 */
export function flockToFuse(rec: FlockRecord, asked: FuseFileLock): FuseFileLock {
  if (rec.type === F_UNLCK) return { start: asked.start, end: asked.end, type: F_UNLCK, pid: 0 };
  const end = rec.len === 0n ? OFFSET_MAX : rec.start + rec.len - 1n;
  return { start: rec.start, end, type: rec.type, pid: 0 };
}
