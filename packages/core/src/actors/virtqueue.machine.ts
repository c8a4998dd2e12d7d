// One virtqueue: waits for kicks and pops every available chain into a request actor; when the
// ring is stopped (GET_VRING_BASE) or the front-end leaves, it stops popping, settles what is in
// flight, and reports stopped. The ring work itself is the QueueRuntime's (the data path).
// While nobody inspects, a kick runs `drainRing` directly when the queue is in waitingForKick
// (QueueRuntime.acceptingKicks): at one kick per request at low depth, an xstate event per kick
// cost about 8 µs of CPU per request in the daemon (measured, see docs/design.md).
import { setup } from 'xstate';
import type { QueueRuntime, StopMode } from '../virtio-fs/queue-runtime';

export interface VirtqueueInput {
  runtime: QueueRuntime;
}

export type VirtqueueEvent =
  | { type: 'kicked' }
  | { type: 'stopRequested'; mode: StopMode }
  | { type: 'requestsSettled' };

export const virtqueueMachine = setup({
  types: {
    context: {} as { runtime: QueueRuntime; index: number },
    events: {} as VirtqueueEvent,
    input: {} as VirtqueueInput,
  },
  actions: {
    drainRing: ({ context }) => context.runtime.drain(),
    openRing: ({ context }) => context.runtime.setAcceptingKicks(true),
    closeRing: ({ context }) => context.runtime.setAcceptingKicks(false),
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
      entry: 'openRing',
      exit: 'closeRing',
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
