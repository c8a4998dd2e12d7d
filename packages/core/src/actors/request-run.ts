// A request actor: one descriptor chain's FUSE request, from decode to the used ring. It owns its
// steps (decode, hand to the FUSE server, reply, give the chain back) and records each phase by the
// table of request.logic.ts. While someone inspects it also runs as an xstate actor of that logic,
// so inspection sees every request; otherwise the record is all there is (measured in the daemon:
// an xstate actor per request cost about 8 µs of CPU and most of the garbage, the record well under 1).
import { createActor, type Actor, type InspectionEvent } from 'xstate';
import type { DescriptorChain, Logger } from '@vfsd/vhost';
import { FuseDecodeError, type DecodeFailure } from '../fuse/decode-error';
import { EIO } from '../fuse/errno';
import { ServeElsewhere } from '../filesystem';
import { FuseOpcode } from '../fuse/opcodes';
import { decodeRequestSegments, type DecodedRequest } from '../fuse/request';
import type { FuseServer } from '../server/fuse-server';
import { ReplyWriter } from '../server/reply-writer';
import { RequestHandle } from '../virtio-fs/request-context';
import { RequestEvent, RequestState, applyRequestEvent, initialRequestState, requestLogic } from './request.logic';

/** What a request needs from the queue that popped it. */
export interface RequestQueue {
  readonly index: number;
  readonly server: FuseServer;
  readonly log: Logger;
  /** Reused for every small reply of this queue (a reply is written without yielding). */
  readonly scratch: Uint8Array;
  /** Set while someone inspects: each request then runs as an xstate actor too. */
  readonly inspect: ((e: InspectionEvent) => void) | undefined;
  /** A request the guest got wrong: counted, and logged as guest faults are (rate-limited). */
  guestFault(kind: DecodeFailure, detail: string): void;
  /** FUSE_INTERRUPT for the request with this unique. */
  interrupt(unique: bigint): void;
  /** The request waits for its filesystem: interrupts and ring stops can reach it until it finishes. */
  waiting(run: RequestRun): void;
  /** The request is done: its chain goes back to the driver with `len` bytes written (errno: 0, or answered). */
  finished(run: RequestRun, len: number, errno: number): void;
  /**
   * In a request-queue thread: the opcodes its filesystem answers there (before INIT none), and where
   * every other request goes (the main thread), as does one its filesystem throws ServeElsewhere for.
   */
  readonly servedHere?: ReadonlySet<number> | null;
  elsewhere?(run: RequestRun): void;
}

/** fuse_in_header.opcode (little-endian u32 at byte 4) of a chain's first segment, -1 if it is shorter. */
function opcodeOf(first: Uint8Array | undefined): number {
  if (!first || first.length < 8) return -1;
  return (first[4] | (first[5] << 8) | (first[6] << 16) | (first[7] << 24)) >>> 0;
}

export class RequestRun {
  private readonly state: RequestState | null;
  private readonly actor: Actor<typeof requestLogic> | null;
  /** The request's identity and cancellation, once decoded. */
  handle: RequestHandle | null = null;

  constructor(
    private readonly queue: RequestQueue,
    readonly chain: DescriptorChain,
  ) {
    const input = { queue: queue.index, head: chain.head };
    if (queue.inspect) {
      this.actor = createActor(requestLogic, { input, inspect: queue.inspect });
      this.actor.start();
      this.state = null;
    } else {
      this.actor = null;
      this.state = initialRequestState(input);
    }
  }

  /** Decodes the chain's request and serves it; the reply is written now, or when the filesystem answers. */
  run(): void {
    const q = this.queue;
    const chain = this.chain;
    // In a request-queue thread, what it does not answer goes on undecoded (the main thread decodes it).
    const here = q.servedHere;
    if (here !== undefined && (here === null || !here.has(opcodeOf(chain.readable[0])) || !q.server.initialized)) return q.elsewhere!(this);
    const out = new ReplyWriter(chain.writable, chain.writableLength, q.scratch);
    let req: DecodedRequest;
    try {
      req = decodeRequestSegments(chain.readable, q.server.options);
    } catch (e) {
      if (!(e instanceof FuseDecodeError)) {
        // A bug of ours, not the guest's: logged, and the chain goes back unanswered (no unique is
        // known to answer), rather than the exception ending the daemon.
        q.log.error(`queue ${q.index} head ${chain.head}: decoding failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
        return this.done(out);
      }
      q.guestFault(e.kind, `queue ${q.index} head ${chain.head}: ${e.message}`);
      // No unique, no reply: one with unique 0 could not be matched to anything by the driver.
      if (e.noReply || e.unique === undefined) return this.done(out);
      this.send({ type: 'decodeFailed', errno: e.errno });
      out.error(e.unique, e.errno);
      return this.done(out);
    }
    if (req.opcode === FuseOpcode.FUSE_INTERRUPT) {
      q.interrupt(req.arg.unique);
      return this.done(out);
    }
    const handle = new RequestHandle(req.header, req.opcode === FuseOpcode.FUSE_SETLKW);
    this.handle = handle;
    this.send({ type: 'decoded', unique: handle.unique, opcode: req.opcode, nodeid: req.header.nodeid });
    let served;
    try {
      served = q.server.serve(handle, req, out);
    } catch (e) {
      if (e instanceof ServeElsewhere && q.elsewhere) return q.elsewhere(this);
      this.failed(e, req, out);
      return this.done(out);
    }
    if (served === undefined) return this.done(out);
    q.waiting(this);
    served.then(
      () => this.done(out),
      (e: unknown) => {
        this.failed(e, req, out);
        this.done(out);
      },
    );
  }

  /** FUSE_INTERRUPT reached it while it waits: the filesystem's call gives up with EINTR. */
  interrupt(): void {
    this.send({ type: 'interrupted' });
    this.handle?.abort('interrupted');
  }

  get snapshot(): RequestState {
    return this.actor ? this.actor.getSnapshot().context : this.state!;
  }

  /** The xstate actor behind this request, when it has one. */
  get actorRef(): Actor<typeof requestLogic> | null {
    return this.actor;
  }

  /** A bug in the server or the filesystem (not a FsError): logged, answered EIO. */
  private failed(e: unknown, req: DecodedRequest, out: ReplyWriter): void {
    const err = e instanceof Error ? e : new Error(String(e));
    this.queue.log.error(`queue ${this.queue.index} unique ${req.header.unique}: ${FuseOpcode[req.opcode]} failed: ${err.stack ?? err.message}`);
    this.send({ type: 'fsFailed', errno: EIO });
    if (!req.noReply) out.error(req.header.unique, EIO);
  }

  private done(out: ReplyWriter): void {
    if (out.length > 0) {
      this.send({ type: 'fsAnswered' });
      this.send({ type: 'replyWritten', len: out.length });
    } else {
      this.send({ type: 'noReplyNeeded' });
    }
    this.actor?.stop();
    this.queue.finished(this, out.length, out.errno);
  }

  private send(event: RequestEvent): void {
    if (this.actor) this.actor.send(event);
    else applyRequestEvent(this.state!, event);
  }
}
