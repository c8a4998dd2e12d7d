// What the inspector sends to its page (live, over server-sent events) and writes to a trace file
// (--record, JSON lines). Types only: the page (packages/cli/web) imports them too. Times are epoch
// milliseconds; 64-bit ids (FUSE unique, nodeid) are decimal strings.

/** One state chart, drawn by the page: states and transitions from the machine definition. */
export interface Chart {
  machine: string;
  initial: string;
  states: Array<{ id: string; final?: boolean }>;
  /** `from: '*'`: the transition is taken from any state (an event handled at the machine's root). */
  transitions: Array<{ from: string; to: string | null; event: string; guard?: string }>;
}

export type ActorKind = 'device' | 'queue' | 'request' | 'worker';

export type Scalar = string | number | boolean | null;

/** One thing an actor did: it was created, or an event moved it (possibly to the same state). */
export interface EventRecord {
  t: number;
  /** The xstate session id of the actor. */
  actor: string;
  actorKind: ActorKind;
  /** `xstate.init` when created, else the event's type. */
  event: string;
  /** The event's scalar fields (bigints as strings). */
  detail?: Record<string, Scalar>;
  /** The state after the event. */
  state: string;
  /** A short summary of the context after the event. */
  context?: Record<string, Scalar>;
}

export interface DeviceView {
  id: string;
  label: string;
  state: string;
  features: string;
  regions: number;
  queues: number;
  completed: number;
  live: number;
  /** Malformed requests, bad chains, a broken ring: what the guest got wrong since it connected. */
  guestFaults: number;
  /** The same by kind (only kinds seen). */
  guestFaultsByKind: Record<string, number>;
}

export interface QueueView {
  id: string;
  device: string;
  index: number;
  state: string;
  size: number;
  lastAvailIdx: number;
  usedIdx: number;
  inFlight: number;
  kicks: number;
  notifications: number;
  enabled: boolean;
  broken: string | null;
  /** The thread serving the ring: the main thread, or a request-queue thread (--queue-threads), with its CPU now. */
  thread: { main: boolean; tid: number; cpu: number; servedHere: number | null; forwarded: number | null };
}

export interface RequestView {
  /** The xstate actor's id while the request runs as one, else `q<queue>:<unique>`. */
  id: string;
  /** True when `id` names an xstate actor (its events can be shown). */
  actor: boolean;
  queue: number;
  head: number;
  unique: string | null;
  opcode: number | null;
  op: string;
  nodeid: string | null;
  phase: string;
  interrupted: boolean;
  ageMs: number;
}

export interface WorkerView {
  id: string;
  workerId: number;
  lane: string;
  tid: number;
  state: string;
  unique: string | null;
  op: string | null;
  /** How long the worker has been in its state. */
  sinceMs: number;
  completed: number;
  /** Jobs the worker holds (the running one included), when the pool reports it. */
  inFlight: number;
}

/** How the request actors are being watched: all of them, in short windows (full load), or not. */
export type InspectMode = 'full' | 'windows' | 'off';

export interface Sample {
  t: number;
  devices: DeviceView[];
  queues: QueueView[];
  /** In flight, oldest first (at most a few hundred; `requestsTotal` counts them all). */
  requests: RequestView[];
  requestsTotal: number;
  workers: WorkerView[];
  /** Requests answered per second since the previous sample. */
  rate: number;
  mode: InspectMode;
}

export interface Hello {
  kind: 'hello';
  charts: Record<ActorKind, Chart>;
  /** FUSE opcode names by number. */
  opcodes: Record<number, string>;
  longWaitMs: number;
  /** The recent events of every actor still known. */
  history: EventRecord[];
  /** Set when the daemon records a trace (the page can open it). */
  recording: string | null;
}

export interface Frame {
  kind: 'frame';
  sample: Sample;
  /** Events since the previous frame (the newest ones if there were too many). */
  events: EventRecord[];
  /** Events not sent (over the per-frame cap or overwritten in the ring). */
  dropped: number;
}

export type StreamMessage = Hello | Frame;

/** Lines of a trace file. */
export type TraceLine =
  | { kind: 'header'; version: 1; startedAt: number; charts: Record<ActorKind, Chart>; opcodes: Record<number, string>; longWaitMs: number }
  | ({ kind: 'event' } & EventRecord)
  | ({ kind: 'sample' } & Sample)
  | { kind: 'dropped'; t: number; count: number };
