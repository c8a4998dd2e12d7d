// State charts for the page, read from the machine definitions (device, virtqueue, pool worker) and
// from the request actors' transition table.
import { FuseOpcode, deviceMachine, requestChart, virtqueueMachine } from '@vfsd/core';
import { poolWorkerMachine } from '@vfsd/passthrough';
import type { AnyStateMachine } from 'xstate';
import type { ActorKind, Chart } from './protocol';

interface TransitionLike {
  target?: ReadonlyArray<{ key: string }>;
  guard?: unknown;
}

function guardName(guard: unknown): string | undefined {
  if (!guard) return undefined;
  if (typeof guard === 'string') return guard;
  if (typeof guard === 'object' && guard !== null && 'type' in guard) return String((guard as { type: unknown }).type);
  return 'guard';
}

function edges(from: string, on: Record<string, readonly TransitionLike[]>, out: Chart['transitions']): void {
  for (const [event, ts] of Object.entries(on)) {
    for (const t of ts) {
      const to = t.target && t.target.length > 0 ? t.target[0].key : null;
      out.push({ from, to, event, guard: guardName(t.guard) });
    }
  }
}

/** A flat machine's states and transitions (the vfsd machines have no nested states). */
export function machineChart(machine: AnyStateMachine): Chart {
  const root = machine.root;
  const transitions: Chart['transitions'] = [];
  edges('*', root.on as Record<string, readonly TransitionLike[]>, transitions);
  const states: Chart['states'] = [];
  for (const [key, node] of Object.entries(root.states)) {
    states.push(node.type === 'final' ? { id: key, final: true } : { id: key });
    edges(key, node.on as Record<string, readonly TransitionLike[]>, transitions);
    for (const t of (node.always ?? []) as readonly TransitionLike[]) {
      transitions.push({ from: key, to: t.target?.[0]?.key ?? null, event: '(always)', guard: guardName(t.guard) });
    }
  }
  return { machine: machine.id, initial: root.initial?.target[0]?.key ?? states[0]?.id ?? '', states, transitions };
}

export function requestLogicChart(): Chart {
  const transitions: Chart['transitions'] = [];
  for (const [from, on] of Object.entries(requestChart)) {
    for (const [event, to] of Object.entries(on)) transitions.push({ from, to: to === from ? null : (to as string), event });
  }
  return {
    machine: 'request',
    initial: 'decoding',
    states: Object.keys(requestChart).map((id) => (id === 'finished' ? { id, final: true } : { id })),
    transitions,
  };
}

let cached: Record<ActorKind, Chart> | undefined;

export function allCharts(): Record<ActorKind, Chart> {
  cached ??= {
    device: machineChart(deviceMachine),
    queue: machineChart(virtqueueMachine),
    request: requestLogicChart(),
    worker: machineChart(poolWorkerMachine),
  };
  return cached;
}

/** FUSE opcode names by number (FUSE_ prefix dropped), for the page. */
export function opcodeNames(): Record<number, string> {
  const out: Record<number, string> = {};
  for (const [k, v] of Object.entries(FuseOpcode)) if (typeof v === 'number') out[v] = k.replace(/^FUSE_/, '');
  return out;
}
