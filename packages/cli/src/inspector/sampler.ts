// The inspector's view of the daemon, built at a fixed pace whatever the load:
//  - `observe` takes every inspection event in O(1) (a slot in a ring; nothing is converted), so a
//    flood of events costs a store each and only the newest ones survive;
//  - `sample` reads the state as it is now: the device and queue actors' snapshots, the rings'
//    counters, the requests in flight, the pool workers' snapshots;
//  - `drainEvents` converts what the ring holds since the last call, up to a cap, and keeps the
//    last few events of each actor for the page's detail view.
import { FuseOpcode, requestLogic, type VirtioFsDevice } from '@vfsd/core';
import { currentCpu } from '@vfsd/vhost';
import type { ActorRefLike, InspectionEvent } from 'xstate';
import { actorKind, contextOf, stateOf, toRecord } from './records';
import type { DeviceView, EventRecord, InspectMode, QueueView, RequestView, Sample, WorkerView } from './protocol';

export interface SamplerOptions {
  getDevices: () => readonly VirtioFsDevice[];
  /** Ring of raw events between two drains (a power of two). Default 4096. */
  ringSize?: number;
  /** Most events converted per drain (the newest). Default 400. */
  maxEventsPerDrain?: number;
  /** Events kept per actor for the detail view. Default 30. */
  historyPerActor?: number;
  /** Most requests listed per sample (the oldest first). Default 300. */
  maxRequests?: number;
  now?: () => number;
}

interface Raw {
  e: InspectionEvent;
  t: number;
}

function push(map: Map<string, Raw[]>, id: string, raw: Raw, cap: number): void {
  let h = map.get(id);
  if (!h) map.set(id, (h = []));
  h.push(raw);
  if (h.length > cap) h.shift();
}

interface Known {
  ref: ActorRefLike;
  /** When it was last seen not active (a worker that exited), to forget it a little later. */
  goneAt: number;
}

const FORGET_AFTER_MS = 5_000;
const MAX_REQUEST_HISTORIES = 500;

export function opName(opcode: number | null): string {
  if (opcode === null) return 'UNDECODED';
  return (FuseOpcode[opcode] ?? `OPCODE_${opcode}`).replace(/^FUSE_/, '');
}

export class Sampler {
  private readonly ring: Array<InspectionEvent | undefined>;
  private readonly ringT: Float64Array;
  private readonly mask: number;
  private head = 0;
  private tail = 0;
  private readonly maxEvents: number;
  private readonly historyPerActor: number;
  private readonly maxRequests: number;
  private readonly now: () => number;
  private readonly workers = new Map<string, Known>();
  /** Long-lived actors' recent events, raw; and in-flight requests' (while they run as xstate actors). */
  private readonly histories = new Map<string, Raw[]>();
  private readonly requestHistories = new Map<string, Raw[]>();
  private lastCompleted = new WeakMap<VirtioFsDevice, number>();
  private lastSampleAt = 0;
  /** Set by the owner: how request actors are watched now. */
  mode: InspectMode = 'off';
  droppedTotal = 0;

  constructor(private readonly options: SamplerOptions) {
    const size = options.ringSize ?? 4096;
    if ((size & (size - 1)) !== 0) throw new RangeError('ringSize must be a power of two');
    this.ring = new Array(size).fill(undefined);
    this.ringT = new Float64Array(size);
    this.mask = size - 1;
    this.maxEvents = options.maxEventsPerDrain ?? 400;
    this.historyPerActor = options.historyPerActor ?? 30;
    this.maxRequests = options.maxRequests ?? 300;
    this.now = options.now ?? Date.now;
  }

  /** An inspection observer: one store, whatever the event. */
  readonly observe = (e: InspectionEvent): void => {
    if (e.type !== '@xstate.snapshot') return;
    const i = this.head++ & this.mask;
    this.ring[i] = e;
    this.ringT[i] = this.now();
  };

  /**
   * The events observed since the last drain: every one is filed under its actor (raw, converted only
   * when asked for), and the newest `maxEventsPerDrain` are returned as records for the live stream.
   */
  drainEvents(): { events: EventRecord[]; dropped: number } {
    const size = this.mask + 1;
    let from = this.tail;
    let dropped = 0;
    if (this.head - from > size) {
      dropped += this.head - from - size;
      from = this.head - size;
    }
    const sendFrom = Math.max(from, this.head - this.maxEvents);
    dropped += sendFrom - from;
    const events: EventRecord[] = [];
    for (let n = from; n < this.head; n++) {
      const i = n & this.mask;
      const e = this.ring[i]!;
      const t = this.ringT[i];
      this.ring[i] = undefined;
      this.file(e, t);
      if (n >= sendFrom) {
        const r = toRecord(e, t);
        if (r) events.push(r);
      }
    }
    for (let n = this.tail; n < from; n++) this.ring[n & this.mask] = undefined;
    this.tail = this.head;
    this.droppedTotal += dropped;
    return { events, dropped };
  }

  /** Keeps an event with its actor: long-lived actors' last few, and in-flight requests' (dropped once finished). */
  private file(e: InspectionEvent, t: number): void {
    const ref = e.actorRef;
    const id = ref.sessionId;
    if ((ref as { logic?: unknown }).logic === requestLogic) {
      if (e.type === '@xstate.snapshot' && (e.snapshot as { context?: { phase?: string } }).context?.phase === 'finished') {
        this.requestHistories.delete(id);
        return;
      }
      push(this.requestHistories, id, { e, t }, this.historyPerActor);
      if (this.requestHistories.size > MAX_REQUEST_HISTORIES) this.requestHistories.delete(this.requestHistories.keys().next().value!);
      return;
    }
    if (!this.histories.has(id) && !actorKind(ref)) return;
    this.noteActor(ref);
    push(this.histories, id, { e, t }, this.historyPerActor);
  }

  /** The last events of one actor (a long-lived one, or a request still in flight). */
  historyOf(id: string): EventRecord[] {
    const raw = this.histories.get(id) ?? this.requestHistories.get(id) ?? [];
    return raw.flatMap(({ e, t }) => toRecord(e, t) ?? []);
  }

  /** The last events of every actor still known (for a page that just connected). */
  history(): EventRecord[] {
    const all: EventRecord[] = [];
    for (const id of this.histories.keys()) all.push(...this.historyOf(id));
    for (const id of this.requestHistories.keys()) all.push(...this.historyOf(id));
    return all.sort((a, b) => a.t - b.t);
  }

  /** Pool workers are known from their events (the pool's `inspect` option). */
  private noteActor(ref: ActorRefLike): void {
    if (!this.workers.has(ref.sessionId) && actorKind(ref) === 'worker') this.workers.set(ref.sessionId, { ref, goneAt: 0 });
  }

  /** Also workers from a pool's public list (`pool.workers`), if the owner has it. */
  addWorkers(refs: Iterable<ActorRefLike>): void {
    for (const ref of refs) this.noteActor(ref);
  }

  /** The daemon as it is now. */
  sample(): Sample {
    const t = this.now();
    const perfNow = performance.now();
    const devices: DeviceView[] = [];
    const queues: QueueView[] = [];
    let requests: RequestView[] = [];
    let completedDelta = 0;
    this.options.getDevices().forEach((d, n) => {
      const snap = d.actor.getSnapshot();
      const ctx = contextOf('device', snap) ?? {};
      const qs = d.queueStats();
      const mainCpu = currentCpu();
      const completed = d.completedRequests;
      const faults = d.guestFaults;
      completedDelta += completed - (this.lastCompleted.get(d) ?? completed);
      this.lastCompleted.set(d, completed);
      devices.push({
        id: d.actor.sessionId,
        label: `device ${n + 1}`,
        state: stateOf('device', snap),
        features: String(ctx.features ?? '0x0'),
        regions: Number(ctx.regions ?? 0),
        queues: qs.length,
        completed,
        live: d.liveRequests,
        guestFaults: faults.total,
        guestFaultsByKind: Object.fromEntries(Object.entries(faults.byKind).filter(([, n]) => n > 0)),
      });
      for (const q of qs) {
        queues.push({
          id: q.actor?.sessionId ?? `${d.actor.sessionId}/q${q.index}`,
          device: d.actor.sessionId,
          index: q.index,
          state: q.actor ? stateOf('queue', q.actor.getSnapshot()) : '?',
          size: q.size,
          lastAvailIdx: q.lastAvailIdx,
          usedIdx: q.usedIdx,
          inFlight: q.inFlight,
          kicks: q.kicks,
          notifications: q.notifications,
          enabled: q.enabled,
          broken: q.broken,
          thread: q.thread
            ? { main: false, tid: q.thread.tid, cpu: q.thread.cpu, servedHere: q.thread.servedHere, forwarded: q.thread.forwarded }
            : { main: true, tid: process.pid, cpu: mainCpu, servedHere: null, forwarded: null },
        });
      }
      for (const r of d.inFlightRequests()) {
        const unique = r.unique === null ? null : r.unique.toString();
        requests.push({
          id: r.actorId ?? `q${r.queue}:${unique ?? `h${r.head}`}`,
          actor: r.actorId !== null,
          queue: r.queue,
          head: r.head,
          unique,
          opcode: r.opcode,
          op: opName(r.opcode),
          nodeid: r.nodeid === null ? null : r.nodeid.toString(),
          phase: r.phase,
          interrupted: r.interrupted,
          ageMs: perfNow - r.startedAt,
        });
      }
    });
    const requestsTotal = requests.length;
    requests.sort((a, b) => b.ageMs - a.ageMs);
    if (requests.length > this.maxRequests) requests = requests.slice(0, this.maxRequests);
    const workers: WorkerView[] = [];
    for (const [id, w] of this.workers) {
      const snap = w.ref.getSnapshot() as { status?: string };
      if (snap.status !== 'active') {
        w.goneAt ||= t;
        if (t - w.goneAt > FORGET_AFTER_MS) {
          this.workers.delete(id);
          this.histories.delete(id);
          continue;
        }
      }
      const c = contextOf('worker', snap) ?? {};
      workers.push({
        id,
        workerId: Number(c.workerId ?? 0),
        lane: String(c.lane ?? ''),
        tid: Number(c.tid ?? 0),
        state: snap.status === 'active' ? stateOf('worker', snap) : 'exited',
        unique: c.unique === null || c.unique === undefined ? null : String(c.unique),
        op: c.op === null || c.op === undefined ? null : String(c.op),
        sinceMs: typeof c.since === 'number' ? t - c.since : 0,
        completed: Number(c.completed ?? 0),
        inFlight: Number(c.inFlight ?? (c.unique === null || c.unique === undefined ? 0 : 1)),
      });
    }
    workers.sort((a, b) => a.workerId - b.workerId);
    const dt = this.lastSampleAt ? (t - this.lastSampleAt) / 1000 : 0;
    this.lastSampleAt = t;
    return { t, devices, queues, requests, requestsTotal, workers, rate: dt > 0 ? completedDelta / dt : 0, mode: this.mode };
  }
}
