// Inspection events to EventRecords: which kind of actor, which event, which state after. Only
// `@xstate.snapshot` (an event was processed, `xstate.init` when the actor started) is kept: the
// others repeat it.
import { requestLogic } from '@vfsd/core';
import type { ActorRefLike, InspectionEvent } from 'xstate';
import type { ActorKind, EventRecord, Scalar } from './protocol';

const MACHINE_KINDS: Record<string, ActorKind> = { device: 'device', virtqueue: 'queue', poolWorker: 'worker' };

export function actorKind(ref: ActorRefLike): ActorKind | null {
  const logic = (ref as { logic?: unknown }).logic;
  if (logic === requestLogic) return 'request';
  const id = (logic as { id?: unknown } | undefined)?.id;
  return typeof id === 'string' ? (MACHINE_KINDS[id] ?? null) : null;
}

export function scalar(v: unknown): Scalar | undefined {
  switch (typeof v) {
    case 'string':
    case 'number':
    case 'boolean':
      return v;
    case 'bigint':
      return v.toString();
    default:
      return v === null ? null : undefined;
  }
}

/** The scalar fields of an object (nested objects such as a queue runtime are left out). */
export function scalars(o: object | undefined, skip?: string): Record<string, Scalar> | undefined {
  if (!o) return undefined;
  let out: Record<string, Scalar> | undefined;
  for (const [k, v] of Object.entries(o)) {
    if (k === skip) continue;
    const s = scalar(v);
    if (s === undefined) continue;
    (out ??= {})[k] = s;
  }
  return out;
}

export function stateOf(kind: ActorKind, snapshot: unknown): string {
  const s = snapshot as { value?: unknown; context?: { phase?: unknown } } | undefined;
  if (kind === 'request') return String(s?.context?.phase ?? '?');
  const v = s?.value;
  return typeof v === 'string' ? v : JSON.stringify(v ?? null);
}

export function contextOf(kind: ActorKind, snapshot: unknown): Record<string, Scalar> | undefined {
  const ctx = (snapshot as { context?: Record<string, unknown> } | undefined)?.context;
  if (!ctx) return undefined;
  switch (kind) {
    case 'request':
      return scalars({ queue: ctx.queue, head: ctx.head, unique: ctx.unique, opcode: ctx.opcode, nodeid: ctx.nodeid, errno: ctx.errno, interrupted: ctx.interrupted });
    case 'worker':
      return scalars({ workerId: ctx.workerId, lane: ctx.lane, tid: ctx.tid, unique: ctx.unique ?? null, op: ctx.op ?? null, since: ctx.since, completed: ctx.completed, inFlight: ctx.inFlight ?? null });
    case 'device':
      return { features: typeof ctx.features === 'bigint' ? `0x${ctx.features.toString(16)}` : null, regions: scalar(ctx.regions) ?? null };
    case 'queue':
      return { index: scalar(ctx.index) ?? null };
  }
}

/** The record of one inspection event, or null for those not kept (or from actors not ours). */
export function toRecord(e: InspectionEvent, t: number): EventRecord | null {
  if (e.type !== '@xstate.snapshot') return null;
  const kind = actorKind(e.actorRef);
  if (!kind) return null;
  const { snapshot, event } = e;
  const rec: EventRecord = { t, actor: e.actorRef.sessionId, actorKind: kind, event: event.type, state: stateOf(kind, snapshot) };
  const detail = scalars(event, 'type');
  if (detail) rec.detail = detail;
  const context = contextOf(kind, snapshot);
  if (context) rec.context = context;
  return rec;
}
