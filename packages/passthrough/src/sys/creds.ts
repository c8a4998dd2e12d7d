// Per-thread filesystem credentials (fsuid/fsgid), as virtiofsd switches them per request.
//
// setfsuid/setfsgid are per-thread system calls (glibc does not broadcast them to the other threads,
// unlike setuid/setgid), so each thread that runs ops — every pool worker, and the main thread for
// inline ops — keeps its own pair. The module state below is per thread (each worker loads its own
// copy of this module). A switch happens only when the wanted pair differs from the thread's current
// one. Leaving fsuid 0 drops the filesystem capabilities (CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_CHOWN...)
// from the thread's effective set; going back to 0 restores them (they stay permitted).
//
// Supplementary groups: as virtiofsd, the caller's are not applied (the FUSE header does not carry
// them); the daemon drops its own (see dropSupplementaryGroups) so the caller never gains root's. The
// one exception is a create-type request's FUSE_EXT_GROUPS group (FUSE_CREATE_SUPP_GROUP): the group
// of the parent directory that the guest's kernel saw the caller hold, set on this thread alone (raw
// setgroups) for that call, as the Rust virtiofsd does.
import { isMainThread } from 'node:worker_threads';
import { setfsgid, setfsuid, setThreadGroups } from './libc';

/** The ids a request runs with (the FUSE header's uid/gid, and a create's supplementary group). */
export interface Cred {
  uid: number;
  gid: number;
  /** FUSE_EXT_GROUPS: one supplementary group, for creating in a directory of that group. */
  group?: number;
}

const NO_GROUPS = new Uint32Array(0);
/** The supplementary group this thread holds now, or -1 (none: the daemon's state). */
let curGroup = -1;

function setGroup(group: number): void {
  if (group === curGroup) return;
  const r = setThreadGroups(group < 0 ? NO_GROUPS : Uint32Array.of(group));
  if (r < 0) throw new Error(`setgroups on this thread failed (errno ${-r})`);
  curGroup = group;
}

/** Whether switching applies: only a daemon running as root can take on other ids. */
export const CREDS_ENABLED = typeof process.geteuid === 'function' && process.geteuid() === 0;
/** The daemon's own ids (those the process started with). */
export const DAEMON_UID = typeof process.geteuid === 'function' ? process.geteuid() : 0;
export const DAEMON_GID = typeof process.getegid === 'function' ? process.getegid() : 0;

let curUid = DAEMON_UID;
let curGid = DAEMON_GID;
let verified = false;
let restoreQueued = false;
/** Switches made by this thread (for tests and measurements). */
let switches = 0;

/** The thread's current fsuid and fsgid as the kernel has them (setfs*id(-1) changes nothing, returns the current id). */
export function kernelFsIds(): Cred {
  return { uid: setfsuid(-1) >>> 0, gid: setfsgid(-1) >>> 0 };
}

function set(uid: number, gid: number): void {
  if (uid === curUid && gid === curGid) return;
  switches++;
  // Going back to the daemon: fsuid first; leaving it: fsuid last. The thread never holds a guest's
  // gid together with root's filesystem capabilities longer than between the two calls.
  if (uid === DAEMON_UID) {
    if (uid !== curUid) setfsuid(uid);
    if (gid !== curGid) setfsgid(gid);
  } else {
    if (gid !== curGid) setfsgid(gid);
    if (uid !== curUid) setfsuid(uid);
  }
  curUid = uid;
  curGid = gid;
  if (!verified) {
    // Once per thread: prove the calls take effect here (a silent failure would run requests as root).
    const k = kernelFsIds();
    if (k.uid !== uid || k.gid !== gid) {
      curUid = k.uid;
      curGid = k.gid;
      throw new Error(`setfsuid/setfsgid did not take effect: wanted ${uid}:${gid}, have ${k.uid}:${k.gid}`);
    }
    verified = true;
  }
}

function restoreDaemon(): void {
  restoreQueued = false;
  set(DAEMON_UID, DAEMON_GID);
  setGroup(-1);
}

/**
 * Makes the calling thread's fsuid/fsgid the caller's (cred given) or the daemon's own (undefined).
 * On the main thread, ids other than the daemon's are put back at the end of the current synchronous
 * run (a microtask): other code on the main thread must never run with a guest's ids for long.
 */
export function useCred(cred: Cred | undefined): void {
  if (!CREDS_ENABLED) return;
  if (cred === undefined) {
    set(DAEMON_UID, DAEMON_GID);
    setGroup(-1);
    return;
  }
  setGroup(cred.group === undefined ? -1 : cred.group >>> 0);
  set(cred.uid >>> 0, cred.gid >>> 0);
  if (isMainThread && !restoreQueued && (curUid !== DAEMON_UID || curGid !== DAEMON_GID || curGroup !== -1)) {
    restoreQueued = true;
    queueMicrotask(restoreDaemon);
  }
}

/** This thread's current pair as last set, and the number of switches it made. */
export function credState(): { uid: number; gid: number; switches: number } {
  return { uid: curUid, gid: curGid, switches };
}

/**
 * Drops the process's supplementary groups (process-wide; glibc applies setgroups to every thread),
 * as virtiofsd does: with fsgid switched to a guest's gid, root's groups must not still grant access.
 * Main thread only, and only as root; a no-op otherwise.
 */
export function dropSupplementaryGroups(): void {
  if (!CREDS_ENABLED || !isMainThread || typeof process.setgroups !== 'function') return;
  try {
    if ((process.getgroups?.() ?? []).length > 0) process.setgroups([]);
  } catch {
    // Not permitted (no CAP_SETGID): keep them.
  }
}
