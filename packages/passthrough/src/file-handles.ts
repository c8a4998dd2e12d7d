// Whether inodes can be held by file handle here (--inode-file-handles): the daemon's start-up check
// and the filesystem's own, one policy.
import * as fs from 'node:fs';
import { EPERM } from '@vfsd/core/abi';
import { O_CLOEXEC, O_DIRECTORY, O_PATH, O_RDONLY } from './sys/constants';
import { closeQuietly } from './sys/close-quietly';
import { nameToHandleAt, openByHandleAt } from './sys/libc';

/** Why file handles cannot serve `sharedDir` (see fileHandlesUnusable), or null: for a start-up check. */
export function probeFileHandles(sharedDir: string): string | null {
  const fd = fs.openSync(sharedDir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  try {
    return fileHandlesUnusable(fd);
  } finally {
    closeQuietly(fd);
  }
}

/** Why file handles cannot serve here (no handle for the shared directory, no right to open one), or null. */
export function fileHandlesUnusable(rootFd: number): string | null {
  const h = nameToHandleAt(rootFd);
  if (typeof h === 'number') return `name_to_handle_at: errno ${-h}`;
  // open_by_handle_at's mount fd may not be O_PATH.
  const mountFd = fs.openSync(`/proc/self/fd/${rootFd}`, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  try {
    const fd = openByHandleAt(mountFd, h.handle, O_PATH | O_CLOEXEC);
    if (fd < 0) return `open_by_handle_at: errno ${-fd}${fd === -EPERM ? ' (needs CAP_DAC_READ_SEARCH)' : ''}`;
    closeQuietly(fd);
    return null;
  } finally {
    closeQuietly(mountFd);
  }
}
