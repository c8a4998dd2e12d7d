// Host stat -> FUSE attributes and entries.
import type { FuseAttr, FuseAttrOut, FuseEntryOut } from '@vfsd/core/abi';
import type { StatRecord } from './sys/stat';

const NS = 1_000_000_000n;

/** A validity timeout in seconds, split as FUSE wants it. */
export interface Timeout {
  sec: bigint;
  nsec: number;
}

export function timeout(seconds: number): Timeout {
  const whole = Math.floor(seconds);
  return { sec: BigInt(whole), nsec: Math.round((seconds - whole) * 1e9) };
}

function splitNs(ns: bigint): [bigint, number] {
  // Floor division, so a pre-1970 time keeps 0 <= nsec < 1e9.
  let sec = ns / NS;
  let nsec = ns % NS;
  if (nsec < 0n) {
    sec -= 1n;
    nsec += NS;
  }
  return [sec, Number(nsec)];
}

export function toFuseAttr(st: StatRecord): FuseAttr {
  const [atime, atimensec] = splitNs(st.atimeNs);
  const [mtime, mtimensec] = splitNs(st.mtimeNs);
  const [ctime, ctimensec] = splitNs(st.ctimeNs);
  return {
    ino: st.ino,
    size: st.size,
    blocks: st.blocks,
    atime,
    mtime,
    ctime,
    atimensec,
    mtimensec,
    ctimensec,
    mode: st.mode,
    nlink: st.nlink,
    uid: st.uid,
    gid: st.gid,
    // fuse_attr.rdev is 32 bits: the kernel decodes it with new_decode_dev, glibc encodes the same way
    // for majors and minors that fit, which is what the C virtiofsd passes on too.
    rdev: Number(BigInt.asUintN(32, st.rdev)),
    blksize: st.blksize,
    flags: 0,
  };
}

export function toAttrOut(st: StatRecord, t: Timeout): FuseAttrOut {
  return { attr_valid: t.sec, attr_valid_nsec: t.nsec, attr: toFuseAttr(st) };
}

export function toEntryOut(nodeid: bigint, st: StatRecord, entry: Timeout, attr: Timeout): FuseEntryOut {
  return {
    nodeid,
    generation: 0n,
    entry_valid: entry.sec,
    entry_valid_nsec: entry.nsec,
    attr_valid: attr.sec,
    attr_valid_nsec: attr.nsec,
    attr: toFuseAttr(st),
  };
}
