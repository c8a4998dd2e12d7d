// Per-worker state shared through a SharedArrayBuffer, readable without a message round trip: the
// cancel path must work while the worker's thread is stuck in a syscall and cannot answer messages.
const TID = 0; // kernel thread id, written once by the worker
const RUNNING_SEQ = 1; // seq of the request the worker is executing, 0 when between requests
const CANCEL_SEQ = 2; // seq the main thread wants cancelled
const SLOTS = 4;

export class ControlBlock {
  readonly words: Int32Array;

  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(SLOTS * 4)) {
    this.words = new Int32Array(buffer);
  }

  get tid(): number {
    return Atomics.load(this.words, TID);
  }
  set tid(tid: number) {
    Atomics.store(this.words, TID, tid);
  }

  get runningSeq(): number {
    return Atomics.load(this.words, RUNNING_SEQ);
  }
  set runningSeq(seq: number) {
    Atomics.store(this.words, RUNNING_SEQ, seq);
  }

  requestCancel(seq: number): void {
    Atomics.store(this.words, CANCEL_SEQ, seq);
  }

  isCancelled(seq: number): boolean {
    return Atomics.load(this.words, CANCEL_SEQ) === seq;
  }
}
