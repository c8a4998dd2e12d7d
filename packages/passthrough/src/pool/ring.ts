// The shared memory between the main thread and one regular pool worker: a single-producer
// single-consumer ring of job slots in a SharedArrayBuffer. The main thread writes an op into a slot
// and bumps SUBMITTED (waking the worker with Atomics.notify only if it sleeps); the worker runs the
// slots in order, writes each result into its slot, bumps COMPLETED and rings a doorbell (one message
// until the main thread has drained, however many jobs complete meanwhile). No structured clone, no
// object graph: ops and results are a few words and bytes in the slot.
//
// Each slot has a state word. The worker moves it QUEUED -> RUNNING with a compare-and-swap; the main
// thread can take back a slot the worker has not started (QUEUED -> CANCELLED or STOLEN), which is how a
// queued job is cancelled at once and how jobs queued behind a hung call move to another worker.
import type { Op, OpKind, OpOutcome } from './ops';
import type { FlockRecord } from '../sys/flock-struct';
import type { StatRecord } from '../sys/stat';
import { fuse_attr } from '@vfsd/core/abi';

// Header words (Int32 indexes), each on its own 64-byte line: the two threads write different ones.
export const H_SUBMITTED = 0; // jobs written by the main thread (wrapping counter)
export const H_SLEEPING = 16; // 1 while the worker waits (or is about to) on H_SUBMITTED
export const H_COMPLETED = 32; // slots passed by the worker, done or skipped (wrapping counter)
export const H_DOORBELL = 48; // 1 from the worker's "completions ready" message until the main thread drains
export const H_STOP = 64; // 1: the worker leaves its loop
export const H_TID = 80; // kernel thread id of the worker
export const H_RUNNING_SEQ = 96; // seq the worker is executing, 0 between jobs
const HEADER_BYTES = 512;

export const SLOT_BYTES = 512;
/** The longest name a slot holds; a longer one fails at once with ENAMETOOLONG, so it runs inline. */
export const SLOT_NAME_MAX = 256;

// Slot states.
export const S_FREE = 0;
export const S_QUEUED = 1;
export const S_RUNNING = 2;
export const S_DONE = 3;
export const S_CANCELLED = 4; // taken back before it ran: the main thread settled it (EINTR)
export const S_STOLEN = 5; // taken back before it ran: re-dispatched to another worker

// Slot words (Int32 index relative to the slot).
const W_STATE = 0;
const W_SEQ = 1;
const W_KIND = 2;
const W_CANCEL = 3; // 1: cancel requested while running
const W_ERRNO = 4; // result: 0 ok, else errno
const W_A = 5; // fd / dirFd
const W_B = 6; // flags / cmd / operation
const W_C = 7; // lock type
const W_D = 8; // lock pid
const W_NAMELEN = 9;
const W_R0 = 10; // result: fd / number / lock type
const W_R1 = 11; // result: mode / lock pid
// After the 64-bit words (bytes 64..143): the caller's ids.
const W_HASCRED = 40; // 1: W_UID/W_GID hold the op's cred
const W_UID = 41;
const W_GID = 42;
// BigInt64 indexes relative to the slot (byte offset / 8).
const Q_START = 8; // lock start (args and result)
const Q_LEN = 9; // lock len (args and result)
const Q_DEV = 10;
const Q_INO = 11;
const NAME_OFFSET = 256; // bytes
/** A result's fuse_attr bytes: where the name was (the worker copied it before the call). */
const ATTR_OFFSET = NAME_OFFSET;

type CompactKind = 'fstat' | 'lookupAt' | 'reopen' | 'close' | 'flushFd' | 'ofdLock' | 'flock';
const KIND_CODES: Record<CompactKind, number> = { fstat: 1, lookupAt: 2, reopen: 3, close: 4, flushFd: 5, ofdLock: 6, flock: 7 };
const KINDS: CompactKind[] = ['fstat', 'fstat', 'lookupAt', 'reopen', 'close', 'flushFd', 'ofdLock', 'flock'];
/**
 * Every other op (names, data, entry lists: variable sizes) is GENERIC: the slot only orders it and
 * carries its state; the op and its outcome travel through the worker's MessagePort, posted before the
 * slot is published and read synchronously with receiveMessageOnPort (see ring-worker.ts).
 */
export const K_GENERIC = 8;

export class Ring {
  readonly i32: Int32Array;
  readonly i64: BigInt64Array;
  readonly u8: Uint8Array;

  constructor(
    readonly slots: number,
    readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(HEADER_BYTES + slots * SLOT_BYTES),
  ) {
    this.i32 = new Int32Array(buffer);
    this.i64 = new BigInt64Array(buffer);
    this.u8 = new Uint8Array(buffer);
  }

  /** Int32 index of slot i's first word. */
  base(slot: number): number {
    return (HEADER_BYTES + slot * SLOT_BYTES) >> 2;
  }

  // ---- main thread ----

  /** Whether an op fits a slot (every op but a name longer than SLOT_NAME_MAX). */
  static fits(op: Op): boolean {
    return op.kind !== 'lookupAt' || op.name.length <= SLOT_NAME_MAX;
  }

  /** Whether the op and its result are carried in the slot words (else GENERIC, by message). */
  static isCompact(kind: OpKind): kind is CompactKind {
    return kind in KIND_CODES;
  }

  /** Writes op into slot (free or passed by the worker) and marks it QUEUED. Does not publish it. */
  write(slot: number, seq: number, op: Op): void {
    const w = this.base(slot);
    const i32 = this.i32;
    i32[w + W_SEQ] = seq;
    i32[w + W_KIND] = Ring.isCompact(op.kind) ? KIND_CODES[op.kind] : K_GENERIC;
    i32[w + W_CANCEL] = 0;
    i32[w + W_ERRNO] = 0;
    if (op.cred) {
      i32[w + W_HASCRED] = 1;
      i32[w + W_UID] = op.cred.uid;
      i32[w + W_GID] = op.cred.gid;
    } else {
      i32[w + W_HASCRED] = 0;
    }
    switch (op.kind) {
      case 'fstat':
      case 'close':
      case 'flushFd':
        i32[w + W_A] = op.fd;
        break;
      case 'lookupAt':
        i32[w + W_A] = op.dirFd;
        i32[w + W_NAMELEN] = op.name.length;
        this.u8.set(op.name, (w << 2) + NAME_OFFSET);
        break;
      case 'reopen':
        i32[w + W_A] = op.fd;
        i32[w + W_B] = op.flags;
        break;
      case 'ofdLock': {
        const q = w >> 1;
        i32[w + W_A] = op.fd;
        i32[w + W_B] = op.cmd;
        i32[w + W_C] = op.lock.type;
        i32[w + W_D] = op.lock.pid;
        this.i64[q + Q_START] = op.lock.start;
        this.i64[q + Q_LEN] = op.lock.len;
        break;
      }
      case 'flock':
        i32[w + W_A] = op.fd;
        i32[w + W_B] = op.operation;
        break;
      default:
        break; // GENERIC: posted by the caller
    }
    Atomics.store(i32, w + W_STATE, S_QUEUED);
  }

  /** QUEUED -> to (CANCELLED or STOLEN): true if the worker had not started the slot. */
  takeBack(slot: number, to: number): boolean {
    return Atomics.compareExchange(this.i32, this.base(slot) + W_STATE, S_QUEUED, to) === S_QUEUED;
  }

  requestCancel(slot: number): void {
    Atomics.store(this.i32, this.base(slot) + W_CANCEL, 1);
  }

  /** The outcome the worker wrote into a DONE slot, as the op's result type. */
  readOutcome(slot: number, kind: OpKind): OpOutcome {
    const w = this.base(slot);
    const i32 = this.i32;
    const errno = i32[w + W_ERRNO];
    if (errno !== 0) return { ok: false, errno };
    switch (kind) {
      case 'fstat':
        return { ok: true, value: this.readStat(w) };
      case 'lookupAt':
        return { ok: true, value: { fd: i32[w + W_R0], stat: this.readStat(w) } };
      case 'reopen':
        return { ok: true, value: i32[w + W_R0] };
      case 'ofdLock': {
        const q = w >> 1;
        const lock: FlockRecord = { type: i32[w + W_R0], start: this.i64[q + Q_START], len: this.i64[q + Q_LEN], pid: i32[w + W_R1] };
        return { ok: true, value: lock };
      }
      default:
        return { ok: true, value: undefined };
    }
  }

  private readStat(w: number): StatRecord {
    const i32 = this.i32;
    const i64 = this.i64;
    const q = w >> 1;
    const at = (w << 2) + ATTR_OFFSET;
    return { dev: i64[q + Q_DEV], ino: i64[q + Q_INO], mode: i32[w + W_R1] >>> 0, attr: this.u8.slice(at, at + fuse_attr.size) };
  }

  // ---- worker thread ----

  /** QUEUED -> RUNNING: false if the main thread took the slot back. */
  claim(slot: number): boolean {
    return Atomics.compareExchange(this.i32, this.base(slot) + W_STATE, S_QUEUED, S_RUNNING) === S_QUEUED;
  }

  seqOf(slot: number): number {
    return this.i32[this.base(slot) + W_SEQ];
  }

  cancelRequested(slot: number): boolean {
    return Atomics.load(this.i32, this.base(slot) + W_CANCEL) === 1;
  }

  /** The op in a slot; null for a GENERIC one (its op is in the worker's port). */
  readOp(slot: number): Op | null {
    const op = this.readCompact(slot);
    if (op) {
      const w = this.base(slot);
      if (this.i32[w + W_HASCRED] === 1) op.cred = { uid: this.i32[w + W_UID] >>> 0, gid: this.i32[w + W_GID] >>> 0 };
    }
    return op;
  }

  private readCompact(slot: number): Op | null {
    const w = this.base(slot);
    const i32 = this.i32;
    if (i32[w + W_KIND] === K_GENERIC) return null;
    const kind = KINDS[i32[w + W_KIND]];
    switch (kind) {
      case 'fstat':
      case 'close':
      case 'flushFd':
        return { kind, fd: i32[w + W_A] };
      case 'lookupAt': {
        const at = (w << 2) + NAME_OFFSET;
        // A copy: native calls get a private buffer, never a view of shared memory.
        return { kind, dirFd: i32[w + W_A], name: Buffer.from(this.u8.subarray(at, at + i32[w + W_NAMELEN])) };
      }
      case 'reopen':
        return { kind, fd: i32[w + W_A], flags: i32[w + W_B] };
      case 'ofdLock': {
        const q = w >> 1;
        return { kind, fd: i32[w + W_A], cmd: i32[w + W_B], lock: { type: i32[w + W_C], start: this.i64[q + Q_START], len: this.i64[q + Q_LEN], pid: i32[w + W_D] } };
      }
      case 'flock':
        return { kind, fd: i32[w + W_A], operation: i32[w + W_B] };
    }
  }

  /** Writes the outcome and marks the slot DONE. */
  writeOutcome(slot: number, kind: OpKind, outcome: OpOutcome): void {
    const w = this.base(slot);
    const i32 = this.i32;
    if (!outcome.ok) {
      i32[w + W_ERRNO] = outcome.errno || 5;
    } else {
      i32[w + W_ERRNO] = 0;
      const v = outcome.value as unknown;
      switch (kind) {
        case 'fstat':
          this.writeStat(w, v as StatRecord);
          break;
        case 'lookupAt': {
          const r = v as { fd: number; stat: StatRecord };
          i32[w + W_R0] = r.fd;
          this.writeStat(w, r.stat);
          break;
        }
        case 'reopen':
          i32[w + W_R0] = v as number;
          break;
        case 'ofdLock': {
          const l = v as FlockRecord;
          const q = w >> 1;
          i32[w + W_R0] = l.type;
          i32[w + W_R1] = l.pid;
          this.i64[q + Q_START] = l.start;
          this.i64[q + Q_LEN] = l.len;
          break;
        }
        default:
          break;
      }
    }
    Atomics.store(i32, w + W_STATE, S_DONE);
  }

  private writeStat(w: number, s: StatRecord): void {
    const q = w >> 1;
    this.i64[q + Q_DEV] = s.dev;
    this.i64[q + Q_INO] = s.ino;
    this.i32[w + W_R1] = s.mode;
    this.u8.set(s.attr, (w << 2) + ATTR_OFFSET);
  }
}
