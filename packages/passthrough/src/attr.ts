// Host stat -> FUSE attributes and entries: the record's fuse_attr wire bytes (sys/stat.ts) with the
// configured validity.
import { fuse_attr, type FuseAttrOutReply, type FuseEntryOutReply } from '@vfsd/core/abi';
import type { StatRecord } from './sys/stat';

/** A validity timeout in seconds, split as FUSE wants it. */
export interface Timeout {
  sec: bigint;
  nsec: number;
}

export function timeout(seconds: number): Timeout {
  const whole = Math.floor(seconds);
  return { sec: BigInt(whole), nsec: Math.round((seconds - whole) * 1e9) };
}

export function toAttrOut(st: StatRecord, t: Timeout): FuseAttrOutReply {
  return { attr_valid: t.sec, attr_valid_nsec: t.nsec, attr: st.attr };
}

export function toEntryOut(nodeid: bigint, st: StatRecord, entry: Timeout, attr: Timeout): FuseEntryOutReply {
  return {
    nodeid,
    generation: 0n,
    entry_valid: entry.sec,
    entry_valid_nsec: entry.nsec,
    attr_valid: attr.sec,
    attr_valid_nsec: attr.nsec,
    attr: st.attr,
  };
}

const FLAGS_WORD = fuse_attr.offsets.flags / 4;

/** Sets FUSE_ATTR_* flags in a record's attr (its wire bytes belong to that one reply). */
export function addAttrFlags(st: StatRecord, flags: number): void {
  const words = new Uint32Array(st.attr.buffer, st.attr.byteOffset, fuse_attr.size / 4);
  words[FLAGS_WORD] |= flags;
}
