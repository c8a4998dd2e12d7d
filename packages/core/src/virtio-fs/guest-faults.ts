// What a guest got wrong (malformed requests, bad chains, a broken ring), counted by kind. A guest's
// mistakes are not the host operator's errors, and a guest must not be able to fill a disk or a
// syslog with them: each is logged at debug, and above debug at most one warn line per interval
// says how many came and what the last one was.
import type { Logger } from '@vfsd/vhost';
import type { DecodeFailure } from '../fuse/decode-error';

export type GuestFaultKind = DecodeFailure | 'bad chain' | 'broken ring';

export const GUEST_FAULT_KINDS: readonly GuestFaultKind[] = ['short header', 'bad header', 'unknown opcode', 'bad arguments', 'bad chain', 'broken ring'];

/** Counts by kind since the front-end connected. */
export type GuestFaultCounts = Record<GuestFaultKind, number>;

/** How often a flood of guest faults may write a line above debug (ms). */
export const GUEST_FAULT_LOG_INTERVAL_MS = 10_000;

function zeroCounts(): GuestFaultCounts {
  return { 'short header': 0, 'bad header': 0, 'unknown opcode': 0, 'bad arguments': 0, 'bad chain': 0, 'broken ring': 0 };
}

export class GuestFaults {
  readonly counts: GuestFaultCounts = zeroCounts();
  total = 0;
  /** Faults since the last warn line, not yet summarised. */
  private unreported: GuestFaultCounts = zeroCounts();
  private unreportedTotal = 0;
  private last = '';
  /** performance.now() of the last warn line. */
  private reportedAt = 0;
  /** Set while a warn line was written less than an interval ago: faults are only counted. */
  private timer: NodeJS.Timeout | null = null;
  private readonly summarise = (): void => {
    this.timer = null;
    if (this.unreportedTotal === 0) return; // quiet: the next fault is told at once
    this.report();
    this.timer = setTimeout(this.summarise, this.intervalMs).unref();
  };

  constructor(
    private readonly log: Logger,
    private readonly intervalMs = GUEST_FAULT_LOG_INTERVAL_MS,
  ) {}

  record(kind: GuestFaultKind, detail: string): void {
    this.counts[kind]++;
    this.total++;
    this.log.debug(`guest fault (${kind}): ${detail}`);
    if (this.timer === null) {
      this.log.warn(`guest fault (${kind}): ${detail}; more are counted, and summarised at most every ${this.intervalMs / 1000} s`);
      this.reportedAt = performance.now();
      this.timer = setTimeout(this.summarise, this.intervalMs).unref();
      return;
    }
    this.unreported[kind]++;
    this.unreportedTotal++;
    this.last = detail;
  }

  /** The front-end is gone: what was not summarised yet is, now. */
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.unreportedTotal > 0) this.report();
  }

  private report(): void {
    const byKind = GUEST_FAULT_KINDS.filter((k) => this.unreported[k] > 0)
      .map((k) => `${k} ${this.unreported[k]}`)
      .join(', ');
    const now = performance.now();
    const seconds = Math.max(1, Math.round((now - this.reportedAt) / 1000));
    this.log.warn(`guest faults: and ${this.unreportedTotal} more in the last ${seconds} s (${byKind}); the last: ${this.last}`);
    this.reportedAt = now;
    this.unreported = zeroCounts();
    this.unreportedTotal = 0;
  }
}
