// The observable life of one pool worker thread, as seen from the main thread: which request it runs,
// since when, and whether it sits in a blocking syscall or is being cancelled. The pool sends the events;
// anyone may subscribe (or attach an xstate inspector) to watch the workers.
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
}

export type PoolWorkerEvent =
  | { type: 'READY'; tid: number }
  | { type: 'DISPATCH'; unique: bigint; op: string; at: number }
  | { type: 'BLOCKING'; at: number }
  | { type: 'CANCEL'; at: number }
  | { type: 'DONE'; at: number }
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
      event.type === 'DISPATCH' ? { unique: event.unique, op: event.op, since: event.at } : {},
    ),
    markSince: assign({ since: ({ event, context }) => ('at' in event ? event.at : context.since) }),
    clearRequest: assign({
      unique: () => undefined,
      op: () => undefined,
      since: ({ event, context }) => ('at' in event ? event.at : context.since),
      completed: ({ context }) => context.completed + 1,
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
      },
    },
    blockedInSyscall: {
      on: {
        CANCEL: { target: 'cancelling', actions: 'markSince' },
        DONE: { target: 'idle', actions: 'clearRequest' },
      },
    },
    // Cancel flag set and signals being sent until the worker reports done.
    cancelling: {
      on: { DONE: { target: 'idle', actions: 'clearRequest' } },
    },
    exited: { type: 'final' },
  },
});
