// vhost-user framing over a non-blocking socket: a 12-byte header (the fds ride on its first byte),
// then the payload it announces. Reads what is there and keeps its place, so a message split across
// reads is finished on the next readiness signal.
import { EAGAIN, EINTR, SysError } from '../sys/libc';
import { ScmChannel } from '../sys/scm-rights';
import { HEADER_SIZE, MAX_PAYLOAD, decodeHeader } from '../protocol/messages';
import type { RawMessage } from './listener';

export type ReadOutcome =
  | { kind: 'message'; message: RawMessage }
  | { kind: 'wouldBlock' }
  | { kind: 'end'; reason: string; fds: number[] }
  | { kind: 'malformed'; reason: string; fds: number[] };

const WOULD_BLOCK: ReadOutcome = { kind: 'wouldBlock' };

export class MessageReader {
  private readonly header = Buffer.alloc(HEADER_SIZE);
  private payload: Buffer | null = null;
  /** Bytes of the current part (header, then payload) read so far. */
  private got = 0;
  private fds: number[] = [];
  private fdsTruncated = false;

  constructor(
    private readonly fd: number,
    private readonly scm: ScmChannel,
  ) {}

  /** The next whole message, or why there is none now. */
  next(): ReadOutcome {
    for (;;) {
      const part = this.payload ?? this.header;
      if (this.got === part.length) {
        if (!this.payload) {
          const size = this.header.readUInt32LE(8);
          if (size > MAX_PAYLOAD) {
            return this.fail('malformed', `payload size ${size} exceeds ${MAX_PAYLOAD} (request ${this.header.readUInt32LE(0)})`);
          }
          this.payload = Buffer.alloc(size);
          this.got = 0;
          continue;
        }
        return { kind: 'message', message: this.take() };
      }
      // fds come with the header's first byte: only that read collects them.
      const withFds = !this.payload && this.got === 0;
      let r;
      try {
        r = this.scm.receive(this.fd, part.length - this.got, withFds);
      } catch (e) {
        if (e instanceof SysError && (e.errno === EAGAIN || e.errno === EINTR)) return WOULD_BLOCK;
        return this.fail('end', (e as Error).message);
      }
      this.fds.push(...r.fds);
      this.fdsTruncated ||= r.truncatedFds;
      if (r.length === 0) {
        const inside = this.payload ? `end of stream inside a message (${this.payload.length}-byte payload expected)` : this.got > 0 ? 'end of stream inside a header' : 'front-end closed the connection';
        return this.fail('end', inside);
      }
      this.scm.data.copy(part, this.got, 0, r.length);
      this.got += r.length;
    }
  }

  private take(): RawMessage {
    const bytes = Buffer.concat([this.header, this.payload!]);
    const message: RawMessage = { header: decodeHeader(bytes), payload: bytes.subarray(HEADER_SIZE), fds: this.fds, fdsTruncated: this.fdsTruncated };
    this.payload = null;
    this.got = 0;
    this.fds = [];
    this.fdsTruncated = false;
    return message;
  }

  private fail(kind: 'end' | 'malformed', reason: string): ReadOutcome {
    const fds = this.fds;
    this.fds = [];
    return { kind, reason, fds };
  }
}
