// --record FILE: every actor event as a JSON line, plus a sample of the whole daemon (rings, requests
// in flight, workers) at the inspector's pace, so that the page can replay the run. Events are kept
// raw and converted in batches; if the file cannot keep up, whole batches are dropped and a
// `dropped` line says how many events were lost, rather than letting memory grow.
import * as fs from 'node:fs';
import type { InspectionEvent } from 'xstate';
import { toRecord } from './records';
import type { ActorKind, Chart, Sample, TraceLine } from './protocol';

export interface RecorderOptions {
  file: string;
  charts: Record<ActorKind, Chart>;
  opcodes: Record<number, string>;
  longWaitMs: number;
  /** Flush period. Default 100 ms. */
  flushMs?: number;
  /** Most events held between two flushes. Default 200,000. */
  maxPending?: number;
  /** Bytes the file may lag behind before batches are dropped. Default 64 MiB. */
  maxBacklogBytes?: number;
  now?: () => number;
}

const stringify = (line: TraceLine): string => JSON.stringify(line);

export class TraceRecorder {
  private readonly out: fs.WriteStream;
  private pending: InspectionEvent[] = [];
  private pendingT: number[] = [];
  private lines: string[] = [];
  private droppedSince = 0;
  private timer: NodeJS.Timeout;
  private closed = false;
  private readonly maxPending: number;
  private readonly maxBacklog: number;
  private readonly now: () => number;
  events = 0;
  dropped = 0;

  constructor(options: RecorderOptions) {
    this.now = options.now ?? Date.now;
    this.maxPending = options.maxPending ?? 200_000;
    this.maxBacklog = options.maxBacklogBytes ?? 64 << 20;
    this.out = fs.createWriteStream(options.file, { flags: 'w' });
    this.out.on('error', () => undefined);
    this.lines.push(stringify({ kind: 'header', version: 1, startedAt: this.now(), charts: options.charts, opcodes: options.opcodes, longWaitMs: options.longWaitMs }));
    this.timer = setInterval(() => this.flush(), options.flushMs ?? 100);
    this.timer.unref();
  }

  /** An inspection observer (subscribed to every event while recording). */
  readonly observe = (e: InspectionEvent): void => {
    if (e.type !== '@xstate.snapshot') return;
    if (this.pending.length >= this.maxPending) {
      this.droppedSince++;
      return;
    }
    this.pending.push(e);
    this.pendingT.push(this.now());
  };

  /** A sample of the whole daemon, written after the events observed so far. */
  sample(s: Sample): void {
    this.convert();
    this.lines.push(stringify({ kind: 'sample', ...s }));
  }

  private convert(): void {
    const pending = this.pending;
    const times = this.pendingT;
    this.pending = [];
    this.pendingT = [];
    for (let i = 0; i < pending.length; i++) {
      const r = toRecord(pending[i], times[i]);
      if (r) {
        this.lines.push(stringify({ kind: 'event', ...r }));
        this.events++;
      }
    }
  }

  flush(): void {
    if (this.closed) return;
    this.convert();
    if (this.droppedSince > 0) {
      this.lines.push(stringify({ kind: 'dropped', t: this.now(), count: this.droppedSince }));
      this.dropped += this.droppedSince;
      this.droppedSince = 0;
    }
    if (this.lines.length === 0) return;
    const chunk = `${this.lines.join('\n')}\n`;
    this.lines = [];
    if (this.out.writableLength > this.maxBacklog) {
      // The disk is behind: count this batch's events as lost (the next flush reports them).
      this.droppedSince += chunk.split('\n').length - 1;
      return;
    }
    this.out.write(chunk);
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.flush();
    this.closed = true;
    clearInterval(this.timer);
    return new Promise((resolve) => this.out.end(() => resolve()));
  }
}
