// The page's model of the daemon, the same live and in replay: hello/frame messages (live) and trace
// lines (replay) are applied to it in order. Samples say what is in flight and how the rings stand;
// events say what each actor went through (and, between two samples, its latest state).
import type { ActorKind, Chart, EventRecord, Frame, Hello, QueueView, RequestView, Sample, TraceLine, WorkerView, DeviceView } from '../../src/inspector/protocol';

export const HISTORY_PER_ACTOR = 30;
const MAX_REQUEST_ACTORS = 500;

export interface PageState {
  charts: Record<ActorKind, Chart> | null;
  opcodes: Record<number, string>;
  longWaitMs: number;
  /** The time shown (latest sample or event applied). */
  t: number;
  sample: Sample | null;
  /** Per actor: its last events, oldest first. */
  histories: Map<string, EventRecord[]>;
  /** Per actor: its latest event (state and context after it). */
  latest: Map<string, EventRecord>;
  /** Request actors seen through events: first event time, to show them between samples. */
  requestStart: Map<string, number>;
  /**
   * Actors with an event applied after the current sample, in stream order: their latest event is
   * newer than what the sample says, even when both carry the same millisecond (under load a request
   * can finish within the millisecond its last sample was taken).
   */
  afterSample: Set<string>;
  dropped: number;
  recording: string | null;
}

export function emptyState(): PageState {
  return { charts: null, opcodes: {}, longWaitMs: 1000, t: 0, sample: null, histories: new Map(), latest: new Map(), requestStart: new Map(), afterSample: new Set(), dropped: 0, recording: null };
}

export function cloneState(s: PageState): PageState {
  return {
    ...s,
    histories: new Map([...s.histories].map(([k, v]) => [k, v.slice()])),
    latest: new Map(s.latest),
    requestStart: new Map(s.requestStart),
    afterSample: new Set(s.afterSample),
  };
}

export function applyEvent(s: PageState, r: EventRecord): void {
  let h = s.histories.get(r.actor);
  if (!h) {
    h = [];
    s.histories.set(r.actor, h);
  }
  h.push(r);
  if (h.length > HISTORY_PER_ACTOR) h.shift();
  s.latest.set(r.actor, r);
  s.afterSample.add(r.actor);
  if (r.actorKind === 'request') {
    if (r.state === 'finished') s.requestStart.delete(r.actor);
    else if (!s.requestStart.has(r.actor)) {
      s.requestStart.set(r.actor, r.t);
      if (s.requestStart.size > MAX_REQUEST_ACTORS) s.requestStart.delete(s.requestStart.keys().next().value!);
    }
  }
  if (r.t > s.t) s.t = r.t;
}

export function applySample(s: PageState, sample: Sample): void {
  s.sample = sample;
  s.afterSample.clear();
  // The sample lists what is in flight: request actors it does not list have finished.
  const listed = new Set(sample.requests.map((r) => r.id));
  for (const id of s.requestStart.keys()) if (!listed.has(id) && (s.latest.get(id)?.t ?? 0) <= sample.t) s.requestStart.delete(id);
  if (sample.t > s.t) s.t = sample.t;
  // Forget request histories beyond the cap (oldest first).
  let extra = 0;
  for (const h of s.histories.values()) if (h[0]?.actorKind === 'request') extra++;
  extra -= MAX_REQUEST_ACTORS;
  if (extra > 0) {
    for (const [id, h] of s.histories) {
      if (extra <= 0) break;
      if (h[0]?.actorKind === 'request' && !listed.has(id)) {
        s.histories.delete(id);
        s.latest.delete(id);
        extra--;
      }
    }
  }
}

export function applyHello(s: PageState, m: Hello): void {
  s.charts = m.charts;
  s.opcodes = m.opcodes;
  s.longWaitMs = m.longWaitMs;
  s.recording = m.recording;
  for (const r of m.history) applyEvent(s, r);
}

export function applyFrame(s: PageState, m: Frame): void {
  for (const r of m.events) applyEvent(s, r);
  s.dropped += m.dropped;
  applySample(s, m.sample);
}

export function applyLine(s: PageState, line: TraceLine): void {
  switch (line.kind) {
    case 'header':
      s.charts = line.charts;
      s.opcodes = line.opcodes ?? {};
      s.longWaitMs = line.longWaitMs;
      if (line.startedAt > s.t) s.t = line.startedAt;
      return;
    case 'event': {
      const { kind: _k, ...r } = line;
      applyEvent(s, r);
      return;
    }
    case 'sample': {
      const { kind: _k, ...sample } = line;
      applySample(s, sample);
      return;
    }
    case 'dropped':
      s.dropped += line.count;
      return;
  }
}

// What the page shows: the sample, brought up to date with the events applied after it.

export interface Views {
  devices: DeviceView[];
  queues: QueueView[];
  requests: RequestView[];
  requestsTotal: number;
  workers: WorkerView[];
}

function newer(s: PageState, id: string): EventRecord | undefined {
  const r = s.latest.get(id);
  return r && s.sample && s.afterSample.has(id) ? r : undefined;
}

export function views(s: PageState): Views {
  const sample = s.sample;
  const dt = sample ? Math.max(0, s.t - sample.t) : 0;
  const devices = (sample?.devices ?? []).map((d) => {
    const r = newer(s, d.id);
    return r ? { ...d, state: r.state } : d;
  });
  const queues = (sample?.queues ?? []).map((q) => {
    const r = newer(s, q.id);
    return r ? { ...q, state: r.state } : q;
  });
  const requests: RequestView[] = [];
  const listed = new Set<string>();
  for (const q of sample?.requests ?? []) {
    listed.add(q.id);
    const r = newer(s, q.id);
    if (r?.state === 'finished') continue;
    requests.push({ ...q, ageMs: q.ageMs + dt, phase: r?.state ?? q.phase });
  }
  // Requests that started after the sample (seen through their events).
  for (const [id, start] of s.requestStart) {
    if (listed.has(id)) continue;
    const r = s.latest.get(id);
    if (!r || r.state === 'finished' || (sample && start <= sample.t)) continue;
    const c = r.context ?? {};
    const opcode = typeof c.opcode === 'number' ? c.opcode : null;
    requests.push({
      id,
      actor: true,
      queue: Number(c.queue ?? 0),
      head: Number(c.head ?? 0),
      unique: c.unique === null || c.unique === undefined ? null : String(c.unique),
      opcode,
      op: opcode === null ? 'UNDECODED' : (s.opcodes[opcode] ?? `OPCODE_${opcode}`),
      nodeid: c.nodeid === null || c.nodeid === undefined ? null : String(c.nodeid),
      phase: r.state,
      interrupted: c.interrupted === true,
      ageMs: s.t - start,
    });
  }
  requests.sort((a, b) => b.ageMs - a.ageMs);
  const workers = (sample?.workers ?? []).map((w) => {
    const r = newer(s, w.id);
    if (!r) return { ...w, sinceMs: w.sinceMs + dt };
    const c = r.context ?? {};
    return {
      ...w,
      state: r.state,
      unique: c.unique === null || c.unique === undefined ? null : String(c.unique),
      op: c.op === null || c.op === undefined ? null : String(c.op),
      sinceMs: typeof c.since === 'number' ? s.t - c.since : w.sinceMs + dt,
      completed: typeof c.completed === 'number' ? c.completed : w.completed,
    };
  });
  const extra = requests.length - (sample?.requests.length ?? 0);
  return { devices, queues, requests, requestsTotal: (sample?.requestsTotal ?? 0) + Math.max(0, extra), workers };
}

/** Parses a trace file (JSON lines); bad lines are skipped and counted. */
export function parseTrace(text: string): { lines: TraceLine[]; bad: number } {
  const lines: TraceLine[] = [];
  let bad = 0;
  for (const raw of text.split('\n')) {
    if (!raw.trim()) continue;
    try {
      lines.push(JSON.parse(raw) as TraceLine);
    } catch {
      bad++;
    }
  }
  return { lines, bad };
}

/** Steps through a trace: the state after line i, rebuilt from the nearest checkpoint. */
export class Replay {
  private readonly checkpoints = new Map<number, PageState>();
  private static readonly EVERY = 256;

  constructor(readonly lines: TraceLine[]) {}

  /** The state after applying lines [0, i] (i = -1: before the first line). */
  stateAt(i: number): PageState {
    const every = Replay.EVERY;
    let base = Math.floor((i + 1) / every) * every - 1;
    while (base >= 0 && !this.checkpoints.has(base)) base -= every;
    const s = base >= 0 ? cloneState(this.checkpoints.get(base)!) : emptyState();
    for (let n = base + 1; n <= i; n++) {
      applyLine(s, this.lines[n]);
      if ((n + 1) % every === 0 && !this.checkpoints.has(n)) this.checkpoints.set(n, cloneState(s));
    }
    return s;
  }
}
