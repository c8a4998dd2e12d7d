// The data path of one virtqueue actor: pops chains, runs one request actor per chain through
// decode -> dispatch -> await the filesystem -> write the reply -> push and notify. Nothing here
// waits: a request that blocks only holds its own chain.
import type { ActorRefFrom } from 'xstate';
import type { DescriptorChain, Logger, Virtqueue } from '@vfsd/vhost';
import { EIO, FuseDecodeError, FuseOpcode, OUT_HEADER_SIZE, decodeRequestSegments, type DecodedRequest } from '../fuse';
import { RequestRun } from '../actors/request-run';
import type { RequestState } from '../actors/request.logic';
import type { virtqueueMachine } from '../actors/virtqueue.machine';
import type { Inspection } from '../actors/inspection';
import { FuseServer, Reply, errorReply } from '../server/fuse-server';
import { RequestHandle } from './request-context';

/** `drain`: the ring stops (GET_VRING_BASE): requests finish, waits are cancelled. `cancelAll`: the front-end is gone. */
export type StopMode = 'drain' | 'cancelAll';

/** One finished request, for the debug log (queue, unique id, opcode, result, latency). */
export interface RequestLogEntry {
  queue: number;
  unique: bigint | null;
  opcode: number | null;
  /** 0 on success, else the errno answered. */
  errno: number;
  /** Bytes written to the chain. */
  len: number;
  latencyUs: number;
}

/** A read-only view of one ring, for the visualizer (the counters as they are now). */
export interface QueueStats {
  index: number;
  size: number;
  /** Next available entry we will pop / next used entry we will fill (16-bit ring indices). */
  lastAvailIdx: number;
  usedIdx: number;
  /** Chains popped and not yet pushed back. */
  inFlight: number;
  kicks: number;
  notifications: number;
  enabled: boolean;
  broken: string | null;
  stopping: boolean;
}

/** A read-only view of one request in flight, for the visualizer. */
export interface InFlightRequest {
  queue: number;
  head: number;
  unique: bigint | null;
  opcode: number | null;
  nodeid: bigint | null;
  phase: RequestState['phase'];
  interrupted: boolean;
  /** performance.now() when the chain was popped. */
  startedAt: number;
  /** The xstate actor's session id while the request runs as one (someone inspects). */
  actorId: string | null;
}

/** What all queues of one session share: the FUSE server and the requests that INTERRUPT can reach. */
export class FuseSession {
  /** Set to receive every finished request (costs a little per request: only at debug level). */
  onRequestDone: ((entry: RequestLogEntry) => void) | null = null;
  readonly byUnique = new Map<bigint, { handle: RequestHandle; actor: RequestRun }>();
  /** Request actors alive now (a leak shows here). */
  liveRequests = 0;
  completed = 0;

  constructor(
    readonly server: FuseServer,
    readonly log: Logger,
    readonly inspection: Inspection,
  ) {}

  /** The requests in flight now (decoded, not yet answered), for the visualizer. */
  inFlightRequests(): InFlightRequest[] {
    const out: InFlightRequest[] = [];
    for (const { actor } of this.byUnique.values()) {
      const st = actor.snapshot;
      out.push({
        queue: st.queue,
        head: st.head,
        unique: st.unique,
        opcode: st.opcode,
        nodeid: st.nodeid,
        phase: st.phase,
        interrupted: st.interrupted,
        startedAt: st.startedAt,
        actorId: actor.actorRef?.sessionId ?? null,
      });
    }
    return out;
  }

  /** FUSE_INTERRUPT: a request still waiting gives up with EINTR. */
  interrupt(unique: bigint): boolean {
    const r = this.byUnique.get(unique);
    if (!r) return false;
    r.actor.send({ type: 'interrupted' });
    r.handle.abort('interrupted');
    return true;
  }
}

export class QueueRuntime {
  readonly index: number;
  actor: ActorRefFrom<typeof virtqueueMachine> | null = null;
  private readonly handles = new Set<RequestHandle>();
  private stopping = false;
  /** True while the queue actor is in waitingForKick. */
  acceptingKicks = false;
  private notifyScheduled = false;
  private resolveStopped!: () => void;
  /** Resolves when the queue actor reached `stopped`. */
  readonly whenStopped: Promise<void>;

  constructor(
    readonly vq: Virtqueue,
    private readonly session: FuseSession,
  ) {
    this.index = vq.index;
    this.whenStopped = new Promise((r) => (this.resolveStopped = r));
    vq.onSettled = () => {
      if (this.stopping) this.actor?.send({ type: 'requestsSettled' });
    };
  }

  get inFlight(): number {
    return this.vq.inFlight;
  }

  /** The ring's indices and counters now (read-only). */
  stats(): QueueStats {
    const vq = this.vq;
    return {
      index: this.index,
      size: vq.size,
      lastAvailIdx: vq.lastAvailIdx,
      usedIdx: vq.usedIdx,
      inFlight: vq.inFlight,
      kicks: vq.kicks,
      notifications: vq.notifications,
      enabled: vq.enabled,
      broken: vq.broken,
      stopping: this.stopping,
    };
  }

  drain(): void {
    if (this.stopping) return;
    this.vq.drain(
      (chain) => this.start(chain),
      (err) => this.session.log.error(err.message),
    );
    this.scheduleNotify();
  }

  setAcceptingKicks(on: boolean): void {
    this.acceptingKicks = on;
  }

  /** A kick: through the queue actor while someone inspects, else straight to its action. */
  kicked(): void {
    if (this.session.inspection.active) this.actor?.send({ type: 'kicked' });
    else if (this.acceptingKicks) this.drain();
  }

  beginStop(mode: StopMode): void {
    this.stopping = true;
    for (const h of this.handles) {
      if (mode === 'cancelAll' || h.mayWaitIndefinitely) h.abort(mode === 'cancelAll' ? 'front-end disconnected' : 'ring stopped');
    }
  }

  stopped(): void {
    this.resolveStopped();
  }

  private scheduleNotify(): void {
    if (this.notifyScheduled) return;
    this.notifyScheduled = true;
    queueMicrotask(() => {
      this.notifyScheduled = false;
      this.vq.notify();
    });
  }

  private start(chain: DescriptorChain): void {
    const session = this.session;
    const actor = new RequestRun({ queue: this.index, head: chain.head }, session.inspection.requestInspect);
    session.liveRequests++;
    let req: DecodedRequest;
    try {
      req = decodeRequestSegments(chain.readable, session.server.options);
    } catch (e) {
      if (!(e instanceof FuseDecodeError)) throw e;
      session.log.error(`queue ${this.index} head ${chain.head}: ${e.message}`);
      if (e.noReply) return this.finish(actor, chain, null, null);
      actor.send({ type: 'decodeFailed', errno: e.errno });
      return this.finish(actor, chain, errorReply(e.unique ?? 0n, e.errno), null);
    }
    if (req.opcode === FuseOpcode.FUSE_INTERRUPT) {
      session.interrupt(req.arg.unique);
      return this.finish(actor, chain, null, null);
    }
    const handle = new RequestHandle(req.header, req.opcode === FuseOpcode.FUSE_SETLKW);
    actor.send({ type: 'decoded', unique: req.header.unique, opcode: req.opcode, nodeid: req.header.nodeid });
    this.handles.add(handle);
    session.byUnique.set(handle.unique, { handle, actor });
    session.server.dispatch(handle, req, chain.writable).then(
      (reply) => {
        if (reply) actor.send({ type: 'poolReplied' });
        this.finish(actor, chain, reply, handle);
      },
      (err: Error) => {
        session.log.error(`queue ${this.index} unique ${handle.unique}: ${FuseOpcode[req.opcode]} failed: ${err.stack ?? err.message}`);
        actor.send({ type: 'poolFailed', errno: EIO });
        this.finish(actor, chain, errorReply(handle.unique, EIO), handle);
      },
    );
  }

  /** Writes the reply (if any), returns the chain to the driver and ends the request actor. */
  private finish(actor: RequestRun, chain: DescriptorChain, reply: Reply | null, handle: RequestHandle | null): void {
    let len = 0;
    if (reply) {
      len = writeReply(chain, reply, handle?.unique ?? 0n);
      actor.send({ type: 'replyWritten', len });
    } else {
      actor.send({ type: 'noReplyNeeded' });
    }
    if (handle) {
      this.handles.delete(handle);
      this.session.byUnique.delete(handle.unique);
    }
    const log = this.session.onRequestDone;
    if (log) {
      const st = actor.snapshot;
      const errno = reply?.errno ?? 0;
      log({ queue: this.index, unique: st.unique, opcode: st.opcode, errno, len, latencyUs: (performance.now() - st.startedAt) * 1000 });
    }
    actor.stop();
    this.session.liveRequests--;
    this.session.completed++;
    this.vq.push(chain.head, len);
    this.scheduleNotify();
  }
}

/** Encodes straight into guest memory when the writable part is one segment, else through a copy. */
function writeReply(chain: DescriptorChain, reply: Reply, unique: bigint): number {
  if (reply.size > chain.writableLength) {
    // The driver sizes the buffer for the request it sent: answer EIO rather than truncate.
    if (chain.writableLength < 16) return 0;
    reply = errorReply(unique, EIO);
  }
  if (chain.writable.length === 1) return reply.write(chain.writable[0], 0);
  if (reply.bodyInPlace) {
    const header = Buffer.allocUnsafe(OUT_HEADER_SIZE);
    reply.write(header, 0);
    chain.write(header);
    return reply.size;
  }
  const tmp = Buffer.allocUnsafe(reply.size);
  const n = reply.write(tmp, 0);
  return chain.write(tmp.subarray(0, n));
}
