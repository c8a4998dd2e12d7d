// Entry point of a regular pool worker: runs the slots of its Ring in order, synchronously, and sleeps
// in Atomics.wait when there is nothing to run. It never returns to its event loop: everything it needs
// is in shared memory; it only posts the "ready" message and doorbells.
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { gettid } from '../sys/libc';
import { unblockCancelSignal } from './cancel-signal';
import type { CancelToken, Op, OpOutcome } from './ops';
import {
  H_COMPLETED,
  H_DOORBELL,
  H_RUNNING_SEQ,
  H_SLEEPING,
  H_STOP,
  H_SUBMITTED,
  H_TID,
  Ring,
} from './ring';
import { runOp } from './run-op';

export interface RingWorkerInit {
  ring: SharedArrayBuffer;
  slots: number;
  /** Wait this long (µs) for more work before sleeping; 0: sleep at once. */
  spinUs: number;
  /** Carries GENERIC ops (main -> worker) and their outcomes (worker -> main), each with its seq. */
  port: MessagePort;
}

/** A GENERIC op or outcome on the port. */
export interface GenericMessage {
  seq: number;
  op?: Op;
  outcome?: OpOutcome;
}

const port = parentPort;
if (!port) throw new Error('ring-main must run in a worker thread');

unblockCancelSignal();
const init = workerData as RingWorkerInit;
const ring = new Ring(init.slots, init.ring);
const h = ring.i32;
const slots = init.slots;
Atomics.store(h, H_TID, gettid());
port.postMessage({ type: 'ready', tid: Atomics.load(h, H_TID) });

let slot = 0; // next % slots (the counters wrap)
const token: CancelToken = {
  isCancelled: () => ring.cancelRequested(slot),
  enteringBlockingCall: () => undefined,
};

function spinFor(next: number): boolean {
  if (init.spinUs <= 0) return false;
  const end = performance.now() + init.spinUs / 1000;
  while (performance.now() < end) if (Atomics.load(h, H_SUBMITTED) !== next) return true;
  return false;
}

/**
 * The op of a GENERIC slot: messages come in slot order; those of slots the main thread took back
 * before they ran (cancelled, stolen) are skipped.
 */
function receiveOp(seq: number): Op | undefined {
  for (;;) {
    const m = receiveMessageOnPort(init.port);
    if (!m) return undefined;
    const msg = m.message as GenericMessage;
    if (msg.seq === seq && msg.op) return msg.op;
  }
}

let next = 0; // count of slots passed (== H_COMPLETED)
for (;;) {
  if (Atomics.load(h, H_STOP) === 1) break;
  if (Atomics.load(h, H_SUBMITTED) === next && !spinFor(next)) {
    Atomics.store(h, H_SLEEPING, 1);
    // Re-check after announcing sleep: the main thread stores SUBMITTED, then looks at SLEEPING.
    if (Atomics.load(h, H_SUBMITTED) === next && Atomics.load(h, H_STOP) === 0) Atomics.wait(h, H_SUBMITTED, next);
    Atomics.store(h, H_SLEEPING, 0);
    continue;
  }
  if (ring.claim(slot)) {
    const seq = ring.seqOf(slot);
    Atomics.store(h, H_RUNNING_SEQ, seq);
    const compact = ring.readOp(slot);
    const op = compact ?? receiveOp(seq);
    const outcome: OpOutcome = op ? runOp(op, token) : { ok: false, errno: 5 };
    Atomics.store(h, H_RUNNING_SEQ, 0);
    // A GENERIC outcome is posted before the slot says DONE: the main thread reads it when it sees DONE.
    if (!compact) init.port.postMessage({ seq, outcome } satisfies GenericMessage, transferable(outcome));
    ring.writeOutcome(slot, op?.kind ?? 'close', outcome);
  }
  slot = slot + 1 === slots ? 0 : slot + 1;
  next = (next + 1) | 0;
  Atomics.store(h, H_COMPLETED, next);
  // One doorbell until the main thread drains: it clears the bell, then reads COMPLETED.
  if (Atomics.compareExchange(h, H_DOORBELL, 0, 1) === 0) port.postMessage(0);
}
// Asked to stop: nothing else keeps this thread's event loop alive, so it exits on its own.
port.close();

/**
 * A read's data moves to the main thread instead of being copied, when it owns its whole ArrayBuffer
 * (a big read: Buffer.allocUnsafe gives small ones a slice of a shared pool, which must stay here).
 */
function transferable(outcome: OpOutcome): ArrayBuffer[] {
  if (!outcome.ok || !(outcome.value instanceof Uint8Array)) return [];
  const v = outcome.value;
  return v.buffer instanceof ArrayBuffer && v.byteOffset === 0 && v.byteLength === v.buffer.byteLength ? [v.buffer] : [];
}
