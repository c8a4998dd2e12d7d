// Entry point of a pool worker thread: runs ops one at a time, synchronously, and reports each.
import { parentPort, workerData } from 'node:worker_threads';
import { gettid } from '../sys/libc';
import { unblockCancelSignal } from './cancel-signal';
import { ControlBlock } from './control-block';
import type { RunRequest, WorkerInit, WorkerMessage } from './messages';
import type { CancelToken } from './ops';
import { runOp } from './run-op';

const port = parentPort;
if (!port) throw new Error('worker-main must run in a worker thread');

unblockCancelSignal();
const control = new ControlBlock((workerData as WorkerInit).control);
const tid = gettid();
control.tid = tid;

function post(m: WorkerMessage): void {
  port!.postMessage(m);
}

port.on('message', (req: RunRequest) => {
  const { seq } = req;
  control.runningSeq = seq;
  let announced = false;
  const token: CancelToken = {
    isCancelled: () => control.isCancelled(seq),
    enteringBlockingCall: () => {
      // Told once: the main thread's actor shows "blockedInSyscall" while we sit in the call.
      if (!announced) post({ type: 'blocking', seq });
      announced = true;
    },
  };
  const outcome = runOp(req.op, token);
  control.runningSeq = 0;
  post({ type: 'done', seq, ...outcome });
});

post({ type: 'ready', tid });
