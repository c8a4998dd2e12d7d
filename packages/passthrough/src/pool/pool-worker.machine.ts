// The observable life of one pool worker thread, as seen from the main thread: which request it runs,
// since when, and whether it sits in a blocking syscall or is being cancelled. The pool sends the events;
// anyone may subscribe (or attach an xstate inspector) to watch the workers.
// A regular worker takes a few jobs at once (they run in order): the actor shows the one at the head,
// which is running or next to run, and how many the worker holds (inFlight). Regular workers create
// this actor only when someone looks (WorkerPool.workers, or an inspector given to the pool): until
// then they keep the same facts in plain fields, since an xstate transition per job on the main thread
// cost more than the job.
import { assign, setup } from 'xstate';

export type Lane = 'regular' | 'waiter';

export interface PoolWorkerContext {
  readonly workerId: number;
  readonly lane: Lane;
  /** Kernel thread id, known once the worker is ready. */
  tid: number;
  /** The FUSE request being served (0n for internal calls), undefined when idle. */
  unique: bigint | undefined;
  /** Op kind being run. */
  op: string | undefined;
  /** Date.now() when the current state began (request dispatched, blocked, or cancel requested). */
  since: number;
  completed: number;
  /** Jobs handed to the worker and not finished, the head one included (0 when idle). */
  inFlight: number;
}

export type PoolWorkerEvent =
  | { type: 'READY'; tid: number }
  | { type: 'DISPATCH'; unique: bigint; op: string; at: number; inFlight?: number }
  /** The head job finished and the next one the worker holds becomes the head. */
  | { type: 'NEXT'; unique: bigint; op: string; at: number; inFlight: number; completed: number }
  /** More jobs handed to a busy worker. */
  | { type: 'QUEUED'; inFlight: number }
  | { type: 'BLOCKING'; at: number }
  | { type: 'CANCEL'; at: number }
  /** completed: the worker's new total (several jobs may finish at once); default one more. */
  | { type: 'DONE'; at: number; completed?: number }
  | { type: 'EXITED' };

export const poolWorkerMachine = setup({
  types: {
    context: {} as PoolWorkerContext,
    events: {} as PoolWorkerEvent,
    input: {} as { workerId: number; lane: Lane },
  },
  actions: {
    recordTid: assign({ tid: ({ event }) => (event.type === 'READY' ? event.tid : 0) }),
    recordRequest: assign(({ event }) =>
      event.type === 'DISPATCH' ? { unique: event.unique, op: event.op, since: event.at, inFlight: event.inFlight ?? 1 } : {},
    ),
    recordNext: assign(({ event }) =>
      event.type === 'NEXT'
        ? { unique: event.unique, op: event.op, since: event.at, inFlight: event.inFlight, completed: event.completed }
        : {},
    ),
    recordQueued: assign({ inFlight: ({ event, context }) => (event.type === 'QUEUED' ? event.inFlight : context.inFlight) }),
    markSince: assign({ since: ({ event, context }) => ('at' in event ? event.at : context.since) }),
    clearRequest: assign({
      unique: () => undefined,
      op: () => undefined,
      since: ({ event, context }) => ('at' in event ? event.at : context.since),
      completed: ({ event, context }) => (event.type === 'DONE' && event.completed !== undefined ? event.completed : context.completed + 1),
      inFlight: () => 0,
    }),
  },
}).createMachine({
  id: 'poolWorker',
  context: ({ input }) => ({
    workerId: input.workerId,
    lane: input.lane,
    tid: 0,
    unique: undefined,
    op: undefined,
    since: Date.now(),
    completed: 0,
    inFlight: 0,
  }),
  initial: 'starting',
  on: { EXITED: '.exited' },
  states: {
    // Requests may be dispatched before READY: the worker's port queues them.
    starting: {
      on: {
        READY: { target: 'idle', actions: 'recordTid' },
        DISPATCH: { target: 'busy', actions: 'recordRequest' },
      },
    },
    idle: {
      on: { DISPATCH: { target: 'busy', actions: 'recordRequest' } },
    },
    busy: {
      on: {
        READY: { actions: 'recordTid' },
        BLOCKING: { target: 'blockedInSyscall', actions: 'markSince' },
        CANCEL: { target: 'cancelling', actions: 'markSince' },
        DONE: { target: 'idle', actions: 'clearRequest' },
        NEXT: { target: 'busy', actions: 'recordNext' },
        QUEUED: { actions: 'recordQueued' },
      },
    },
    blockedInSyscall: {
      on: {
        CANCEL: { target: 'cancelling', actions: 'markSince' },
        DONE: { target: 'idle', actions: 'clearRequest' },
        NEXT: { target: 'busy', actions: 'recordNext' },
        QUEUED: { actions: 'recordQueued' },
      },
    },
    // Cancel flag set and signals being sent until the worker reports done.
    cancelling: {
      on: {
        DONE: { target: 'idle', actions: 'clearRequest' },
        NEXT: { target: 'busy', actions: 'recordNext' },
        QUEUED: { actions: 'recordQueued' },
      },
    },
    exited: { type: 'final' },
  },
});
