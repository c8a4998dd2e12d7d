// One virtqueue: waits for kicks and pops every available chain into a request actor; when the
// ring is stopped (GET_VRING_BASE) or the front-end leaves, it stops popping, settles what is in
// flight, and reports stopped. The ring work itself is the QueueRuntime's (the data path).
// While nobody inspects, a kick runs the ring's drain directly when this machine is in
// waitingForKick (the runtime reads the state from the snapshot): at one kick per request at low
// depth, an xstate event per kick cost about 8 µs of CPU per request in the daemon (docs/design.md).
import { setup } from 'xstate';

/** `drain`: the ring stops (GET_VRING_BASE): requests finish, waits are cancelled. `cancelAll`: the front-end is gone. */
export type StopMode = 'drain' | 'cancelAll';

/** The ring work this machine drives (the queue's data path implements it). */
export interface RingControl {
  readonly index: number;
  /** Chains popped and not yet given back. */
  readonly inFlight: number;
  /** Pops and serves every available chain. */
  drain(): void;
  /** Stops popping; cancels the requests that may wait forever (all of them for cancelAll). */
  beginStop(mode: StopMode): void;
  stopped(): void;
}

export interface VirtqueueInput {
  runtime: RingControl;
}

export type VirtqueueEvent =
  | { type: 'kicked' }
  | { type: 'stopRequested'; mode: StopMode }
  | { type: 'requestsSettled' };

export const virtqueueMachine = setup({
  types: {
    context: {} as { runtime: RingControl; index: number },
    events: {} as VirtqueueEvent,
    input: {} as VirtqueueInput,
  },
  actions: {
    drainRing: ({ context }) => context.runtime.drain(),
    cancelRequests: ({ context, event }) => {
      if (event.type === 'stopRequested') context.runtime.beginStop(event.mode);
    },
    reportStopped: ({ context }) => context.runtime.stopped(),
  },
  guards: {
    noRequestsInFlight: ({ context }) => context.runtime.inFlight === 0,
  },
}).createMachine({
  id: 'virtqueue',
  context: ({ input }) => ({ runtime: input.runtime, index: input.runtime.index }),
  initial: 'waitingForKick',
  states: {
    waitingForKick: {
      on: {
        kicked: { actions: 'drainRing' },
        stopRequested: { target: 'stopping', actions: 'cancelRequests' },
      },
    },
    stopping: {
      always: { guard: 'noRequestsInFlight', target: 'stopped' },
      on: { requestsSettled: { guard: 'noRequestsInFlight', target: 'stopped' } },
    },
    stopped: { type: 'final', entry: 'reportStopped' },
  },
});
