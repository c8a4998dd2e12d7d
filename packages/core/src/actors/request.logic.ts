// One request's life, as a transition table: decoding -> awaitingPool -> writingReply -> finished.
// A request actor is created per descriptor chain, so its logic is a reducer (fromTransition),
// about 3-5 µs for a whole life here against about 20 µs for a full machine; the table below is
// also what the visualizer draws.
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

export const requestLogic = fromTransition<RequestState, RequestEvent, never, RequestInput>(
  (state, event) => {
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
  },
  ({ input }) => ({
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
  }),
);
