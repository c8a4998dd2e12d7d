// The protocol between the pool (main thread) and a worker.
import type { Op, OpOutcome } from './ops';

export interface WorkerInit {
  /** The worker's ControlBlock buffer. */
  control: SharedArrayBuffer;
}

/** Main -> worker: run one op. seq is unique per pool and never 0. */
export interface RunRequest {
  seq: number;
  op: Op;
}

/** Worker -> main. */
export type WorkerMessage =
  | { type: 'ready'; tid: number }
  | { type: 'blocking'; seq: number }
  | ({ type: 'done'; seq: number } & OpOutcome);
