// One request's life, as a transition table: decoding -> awaitingPool -> writingReply -> finished.
// There is one request per descriptor chain, so its logic is a reducer (fromTransition) over the
// table below (also what the visualizer draws). While someone inspects, each request runs as an
// xstate actor of this logic; otherwise the same reducer runs on a plain record (RequestRun),
// because creating an xstate actor costs more per request than the whole rest of the path.
import { fromTransition } from 'xstate';

export type RequestPhase = 'decoding' | 'awaitingPool' | 'writingReply' | 'finished';

export type RequestEvent =
  | { type: 'decoded'; unique: bigint; opcode: number; nodeid: bigint }
  | { type: 'decodeFailed'; errno: number }
  | { type: 'interrupted' }
  | { type: 'poolReplied' }
  | { type: 'poolFailed'; errno: number }
  | { type: 'replyWritten'; len: number }
  | { type: 'noReplyNeeded' };

/** Where each event leads from each phase; events not listed are ignored. */
export const requestChart: Readonly<Record<RequestPhase, Partial<Record<RequestEvent['type'], RequestPhase>>>> = {
  decoding: { decoded: 'awaitingPool', decodeFailed: 'writingReply', noReplyNeeded: 'finished' },
  awaitingPool: { interrupted: 'awaitingPool', poolReplied: 'writingReply', poolFailed: 'writingReply', noReplyNeeded: 'finished' },
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

/** The transition function, pure: used by the xstate actor and by an unobserved request alike. */
export function reduceRequest(state: RequestState, event: RequestEvent): RequestState {
    const next = requestChart[state.phase][event.type];
    if (next === undefined) return state;
    switch (event.type) {
      case 'decoded':
        return { ...state, phase: next, unique: event.unique, opcode: event.opcode, nodeid: event.nodeid };
      case 'decodeFailed':
      case 'poolFailed':
        return { ...state, phase: next, errno: event.errno };
      case 'interrupted':
        return { ...state, interrupted: true };
      case 'replyWritten':
        return { ...state, phase: next, len: event.len };
      default:
        return { ...state, phase: next };
    }
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
