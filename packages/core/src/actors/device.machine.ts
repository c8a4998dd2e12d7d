// The vhost-user session of one front-end: connected -> negotiated (features) -> memoryMapped
// (memory table) -> running (rings started) -> stopping (front-end gone) -> stopped. Each started
// ring is a child virtqueue actor. A live migration moves the session's state with the rings
// stopped: savingState on the source, loadingState on the destination, then back to memoryMapped
// until rings start again.
import { assign, enqueueActions, setup, type ActorRefFrom } from 'xstate';
import { virtqueueMachine, type RingControl } from './virtqueue.machine';

export type DeviceEvent =
  | { type: 'featuresNegotiated'; features: bigint }
  | { type: 'memoryMapped'; regions: number }
  | { type: 'queueStarted'; runtime: RingControl }
  | { type: 'savingStarted' }
  | { type: 'loadingStarted' }
  | { type: 'migrationEnded' }
  | { type: 'disconnected' }
  | { type: 'queuesSettled' };

export const queueActorId = (index: number): string => `queue-${index}`;

export const deviceMachine = setup({
  types: {
    context: {} as { features: bigint; regions: number; queues: Record<number, ActorRefFrom<typeof virtqueueMachine>> },
    events: {} as DeviceEvent,
  },
  actors: { virtqueue: virtqueueMachine },
  actions: {
    recordFeatures: assign({ features: ({ event }) => (event.type === 'featuresNegotiated' ? event.features : 0n) }),
    recordMemory: assign({ regions: ({ event }) => (event.type === 'memoryMapped' ? event.regions : 0) }),
    /** Spawns the ring's virtqueue actor; a ring restarted after GET_VRING_BASE replaces its stopped one. */
    startQueue: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'queueStarted') return;
      const { runtime } = event;
      const old = context.queues[runtime.index];
      if (old) enqueue.stopChild(old);
      enqueue.assign({
        queues: ({ spawn }) => ({ ...context.queues, [runtime.index]: spawn('virtqueue', { id: queueActorId(runtime.index), input: { runtime } }) }),
      });
    }),
  },
}).createMachine({
  id: 'device',
  context: { features: 0n, regions: 0, queues: {} },
  initial: 'connected',
  on: {
    disconnected: '.stopping',
  },
  states: {
    connected: {
      on: {
        featuresNegotiated: { target: 'negotiated', actions: 'recordFeatures' },
        memoryMapped: { target: 'memoryMapped', actions: 'recordMemory' },
      },
    },
    negotiated: {
      on: {
        featuresNegotiated: { actions: 'recordFeatures' },
        memoryMapped: { target: 'memoryMapped', actions: 'recordMemory' },
      },
    },
    memoryMapped: {
      on: {
        featuresNegotiated: { actions: 'recordFeatures' },
        memoryMapped: { actions: 'recordMemory' },
        queueStarted: { target: 'running', actions: 'startQueue' },
        savingStarted: 'savingState',
        loadingStarted: 'loadingState',
      },
    },
    running: {
      on: {
        featuresNegotiated: { actions: 'recordFeatures' },
        memoryMapped: { actions: 'recordMemory' },
        queueStarted: { actions: 'startQueue' },
        // The front-end has stopped every ring first (GET_VRING_BASE); the back-end checks.
        savingStarted: 'savingState',
        loadingStarted: 'loadingState',
      },
    },
    savingState: {
      on: { migrationEnded: 'memoryMapped', featuresNegotiated: { actions: 'recordFeatures' } },
    },
    loadingState: {
      on: { migrationEnded: 'memoryMapped', featuresNegotiated: { actions: 'recordFeatures' } },
    },
    stopping: {
      on: { queuesSettled: 'stopped' },
    },
    stopped: { type: 'final' },
  },
});
