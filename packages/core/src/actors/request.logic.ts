// One request's life, as a transition table: decoding -> awaitingFs -> writingReply -> finished.
// There is one request per descriptor chain, so its logic is a reducer (fromTransition) over the
// table below (also what the visualizer draws). While someone inspects, each request runs as an
// xstate actor of this logic; otherwise the same table is applied in place to a plain record
// (RequestRun), because creating an xstate actor costs more per request than the whole rest of the path.
import { fromTransition } from 'xstate';

export type RequestPhase = 'decoding' | 'awaitingFs' | 'writingReply' | 'finished';

export type RequestEvent =
  | { type: 'decoded'; unique: bigint; opcode: number; nodeid: bigint }
  | { type: 'decodeFailed'; errno: number }
  | { type: 'interrupted' }
  | { type: 'fsAnswered' }
  | { type: 'fsFailed'; errno: number }
  | { type: 'replyWritten'; len: number }
  | { type: 'noReplyNeeded' };

/** Where each event leads from each phase; events not listed are ignored. */
export const requestChart: Readonly<Record<RequestPhase, Partial<Record<RequestEvent['type'], RequestPhase>>>> = {
  decoding: { decoded: 'awaitingFs', decodeFailed: 'writingReply', noReplyNeeded: 'finished' },
  awaitingFs: { interrupted: 'awaitingFs', fsAnswered: 'writingReply', fsFailed: 'writingReply', noReplyNeeded: 'finished' },
  writingReply: { replyWritten: 'finished' },
  finished: {},
};

export interface RequestInput {
  queue: number;
  head: number;
}

export interface RequestState {
  phase: RequestPhase;
  queue: number;
  head: number;
  unique: bigint | null;
  opcode: number | null;
  nodeid: bigint | null;
  /** The errno answered, once known. */
  errno: number | null;
  interrupted: boolean;
  /** Bytes written to the chain. */
  len: number;
  startedAt: number;
}

/** Applies one event to `state` in place; false (and nothing changed) if the table ignores it. */
export function applyRequestEvent(state: RequestState, event: RequestEvent): boolean {
  const next = requestChart[state.phase][event.type];
  if (next === undefined) return false;
  state.phase = next;
  switch (event.type) {
    case 'decoded':
      state.unique = event.unique;
      state.opcode = event.opcode;
      state.nodeid = event.nodeid;
      break;
    case 'decodeFailed':
    case 'fsFailed':
      state.errno = event.errno;
      break;
    case 'interrupted':
      state.interrupted = true;
      break;
    case 'replyWritten':
      state.len = event.len;
      break;
  }
  return true;
}

/** The transition function, pure (for the xstate actor): a new state, or the same one if ignored. */
export function reduceRequest(state: RequestState, event: RequestEvent): RequestState {
  const next = { ...state };
  return applyRequestEvent(next, event) ? next : state;
}

export function initialRequestState(input: RequestInput): RequestState {
  return {
    phase: 'decoding',
    queue: input.queue,
    head: input.head,
    unique: null,
    opcode: null,
    nodeid: null,
    errno: null,
    interrupted: false,
    len: 0,
    startedAt: performance.now(),
  };
}

export const requestLogic = fromTransition<RequestState, RequestEvent, never, RequestInput>(reduceRequest, ({ input }) => initialRequestState(input));
