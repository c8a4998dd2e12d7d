// Small helpers shared by the benchmarks: percentiles, argument parsing, tables, JSON output.
import * as fs from 'fs';
import * as os from 'os';

export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  mean: number;
  min: number;
  max: number;
}

/** Percentiles of the first `n` samples (sorted in place on a copy). Units are the samples'. */
export function summarize(samples: Float64Array, n: number): LatencySummary {
  if (n === 0) return { count: 0, p50: NaN, p90: NaN, p99: NaN, p999: NaN, mean: NaN, min: NaN, max: NaN };
  const s = samples.slice(0, n).sort();
  const at = (q: number): number => s[Math.min(n - 1, Math.floor(q * n))];
  let sum = 0;
  for (let i = 0; i < n; i++) sum += s[i];
  return { count: n, p50: at(0.5), p90: at(0.9), p99: at(0.99), p999: at(0.999), mean: sum / n, min: s[0], max: s[n - 1] };
}

/** `--name value` options and `--flag` switches. */
export function parseArgs(argv: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) continue;
    const eq = a.indexOf('=');
    if (eq > 0) out.set(a.slice(2, eq), a.slice(eq + 1));
    else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) out.set(a.slice(2), argv[++i]);
    else out.set(a.slice(2), 'true');
  }
  return out;
}

export function numArg(args: Map<string, string>, name: string, dflt: number): number {
  const v = args.get(name);
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`--${name}: not a number: ${v}`);
  return n;
}

/** A fixed-width text table. */
export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => (typeof c === 'number' ? fmt(c) : c)))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => String(r[i] ?? '').length)));
  const line = (r: (string | number)[]): string => r.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ');
  return [line(cells[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

export function fmt(n: number): string {
  if (!Number.isFinite(n)) return '-';
  if (Math.abs(n) >= 1000) return Math.round(n).toString();
  if (Math.abs(n) >= 100) return n.toFixed(0);
  if (Math.abs(n) >= 10) return n.toFixed(1);
  return n.toFixed(2);
}

export function machine(): Record<string, unknown> {
  return {
    date: new Date().toISOString(),
    node: process.version,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    platform: `${os.type()} ${os.release()}`,
    loadavg: os.loadavg(),
  };
}

/** Writes `data` as JSON to `--json FILE` when given, else as stdout's last line. */
export function emitJson(args: Map<string, string>, data: unknown): void {
  const file = args.get('json');
  const text = JSON.stringify(data);
  if (file && file !== 'true') {
    fs.writeFileSync(file, text + '\n');
    console.log(`JSON written to ${file}`);
  } else {
    console.log(text);
  }
}

/** Monotonic nanoseconds as a double (exact for ~100 days of uptime); shared by every process. */
export function monoNs(): number {
  return Number(process.hrtime.bigint());
}

/** One operation of an ns/op benchmark. */
export interface Op {
  group: string;
  name: string;
  /** Runs the operation `n` times; returns something so the work is not optimized away. */
  run(n: number): number;
}

export interface OpResult {
  group: string;
  name: string;
  nsPerOp: number;
  minNs: number;
  maxNs: number;
  /** Throughput for copies, GB/s at the median. */
  gbPerSec: number | null;
}

/** ns per operation: calibrated batches for `rounds` rounds of `roundMs`; the median round and the spread. */
export function measure(op: Op, roundMs: number, rounds: number, bytes: number | null): OpResult {
  // Calibrate: find n so that one batch takes about 1/10 of a round.
  let n = 1;
  for (;;) {
    const t0 = process.hrtime.bigint();
    op.run(n);
    const dt = Number(process.hrtime.bigint() - t0) / 1e6;
    if (dt > roundMs / 10 || n > 1e8) break;
    n *= dt < roundMs / 100 ? 10 : 2;
  }
  const perRound: number[] = [];
  for (let r = 0; r < rounds; r++) {
    let ops = 0;
    const t0 = process.hrtime.bigint();
    let elapsed = 0;
    while (elapsed < roundMs * 1e6) {
      op.run(n);
      ops += n;
      elapsed = Number(process.hrtime.bigint() - t0);
    }
    perRound.push(elapsed / ops);
  }
  perRound.sort((a, b) => a - b);
  const med = perRound[Math.floor(perRound.length / 2)];
  return { group: op.group, name: op.name, nsPerOp: med, minNs: perRound[0], maxNs: perRound[perRound.length - 1], gbPerSec: bytes ? bytes / med : null };
}
