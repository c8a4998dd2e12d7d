// Small formatting helpers for the page.

export function fmtDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '–';
  if (ms < 1) return `${(ms * 1000).toFixed(0)} µs`;
  if (ms < 1000) return `${ms.toFixed(ms < 10 ? 1 : 0)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${String(Math.floor(s % 60)).padStart(2, '0')} s`;
}

export function fmtRate(perSec: number): string {
  if (perSec >= 10_000) return `${(perSec / 1000).toFixed(0)}k/s`;
  if (perSec >= 1000) return `${(perSec / 1000).toFixed(1)}k/s`;
  return `${perSec.toFixed(0)}/s`;
}

export function fmtCount(n: number): string {
  return n.toLocaleString('en-US');
}

export function fmtClock(t: number): string {
  const d = new Date(t);
  return `${d.toLocaleTimeString('en-GB', { hour12: false })}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

/** What a pool op does in the kernel, as the page names it. */
export const SYSCALLS: Record<string, string> = {
  ofdLock: 'fcntl(F_OFD_SETLKW)',
  flock: 'flock',
  lookupAt: 'openat + fstat',
  fstat: 'fstat',
  reopen: 'open',
  close: 'close',
  flushFd: 'close(dup(fd))',
};

export function syscallOf(op: string | null): string {
  return op ? (SYSCALLS[op] ?? op) : '';
}
