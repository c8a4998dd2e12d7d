// `npm run bench`: vfsd against Debian's C virtiofsd, side by side, driven over vhost-user by the C
// load generator (bench/loadgen), one fresh daemon per measured point, daemons alternating per point.
//   node packages/cli/dist/bench/compare.js [--seconds S] [--workloads a,b] [--depths 1,16,64]
//     [--daemons vfsd,c] [--pool N] [--quick] [--out DIR]
// Prints the generator's own ceiling, one table, CPU per request, the SETLKW ratio and resident
// sizes; writes DIR/latest.json and DIR/latest.svg (DIR: docs/bench, or .bench/quick with --quick).
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  CACHE_DIR,
  Daemon,
  DaemonConfig,
  LoadResult,
  PointError,
  REPO,
  ThreadCpu,
  buildLoadgen,
  cleanupAll,
  ensurePeer,
  installCleanupHandlers,
  makeShare,
  makeTmpDir,
  median,
  nofileHardLimit,
  processCpuUs,
  removeTmpDir,
  rssKb,
  runLoadgen,
  servingPid,
  sleep,
  startDaemon,
  startLoadgen,
  threadsCpu,
} from './harness';

const ALL_WORKLOADS = ['getattr', 'lookup', 'read4k', 'write4k', 'read1m', 'create', 'readdirplus', 'mix'];

interface Options {
  seconds: number;
  warmup: number;
  workloads: string[];
  depths: number[];
  daemons: ('vfsd' | 'c')[];
  pool: number;
  quick: boolean;
  out: string;
  manyFiles: number;
}

function parseArgs(argv: string[]): Options {
  const val = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const known = new Set(['--seconds', '--workloads', '--depths', '--daemons', '--pool', '--quick', '--out', '--help']);
  for (const a of argv) if (a.startsWith('--') && !known.has(a)) throw new Error(`unknown option ${a} (see --help)`);
  if (argv.includes('--help')) {
    console.log('npm run bench -- [--seconds S] [--workloads getattr,lookup,...] [--depths 1,16,64] [--daemons vfsd,c] [--pool N] [--quick] [--out DIR]');
    process.exit(0);
  }
  const quick = argv.includes('--quick');
  const workloads = val('--workloads')?.split(',') ?? ALL_WORKLOADS;
  for (const w of workloads) if (!ALL_WORKLOADS.includes(w)) throw new Error(`unknown workload ${w} (${ALL_WORKLOADS.join(', ')})`);
  const daemons = (val('--daemons')?.split(',') ?? ['vfsd', 'c']) as ('vfsd' | 'c')[];
  for (const d of daemons) if (d !== 'vfsd' && d !== 'c') throw new Error(`unknown daemon ${d} (vfsd, c)`);
  const depths = (val('--depths') ?? (quick ? '1,16' : '1,16,64')).split(',').map(Number);
  if (depths.some((d) => !(d >= 1 && d <= 126))) throw new Error('depths must be 1..126');
  return {
    // 2 s per point: the full matrix (about 120 points) plus the extras stays under 10 minutes on 2 cores.
    seconds: Number(val('--seconds') ?? (quick ? 0.3 : 2)),
    warmup: quick ? 0.1 : 0.3,
    workloads,
    depths,
    daemons,
    pool: Number(val('--pool') ?? 4),
    quick,
    out: val('--out') ?? (quick ? path.join(CACHE_DIR, 'quick') : path.join(REPO, 'docs', 'bench')),
    manyFiles: quick ? 2000 : 100_000,
  };
}

function configs(o: Options): DaemonConfig[] {
  // Interleaved so that the two daemons alternate at every point.
  const all: DaemonConfig[] = [
    { key: 'vfsd-p0', kind: 'vfsd', pool: 0, queues: 1 },
    { key: 'c-p0', kind: 'c', pool: 0, queues: 1 },
    { key: `vfsd-p${o.pool}`, kind: 'vfsd', pool: o.pool, queues: 1 },
    { key: `c-p${o.pool}`, kind: 'c', pool: o.pool, queues: 1 },
    { key: 'vfsd-2q', kind: 'vfsd', pool: 0, queues: 2 },
    QUEUE_THREADS,
  ];
  return all.filter((c, i) => o.daemons.includes(c.kind) && all.findIndex((x) => x.key === c.key) === i);
}

interface Point {
  workload: string;
  depth: number;
  config: string;
  result?: LoadResult;
  error?: string;
  daemonExit?: string;
}

interface CpuFigures {
  config: string;
  pid: number;
  ops: number;
  windowSeconds: number;
  mainUsPerOp: number | null;
  processUsPerOp: number | null;
  threads: { tid: number; comm: string; us: number; usPerOp: number; busyPct: number }[];
}

const anomalies: string[] = [];
function anomaly(msg: string): void {
  anomalies.push(msg);
  console.error(`  ! ${msg}`);
}

/** One point: a fresh daemon, one loadgen run, the daemon's exit checked. */
async function measurePoint(o: Options, bin: string, share: string, cfg: DaemonConfig, workload: string, depth: number, cpu?: (f: CpuFigures) => void): Promise<Point> {
  const point: Point = { workload, depth, config: cfg.key };
  const perQueue = cfg.queues > 1 ? Math.floor(depth / cfg.queues) : depth;
  const dir = makeTmpDir('vfsd-bench-sock-');
  let daemon: Daemon | undefined;
  try {
    daemon = await startDaemon(cfg, share, dir);
    const d = daemon;
    const args = ['--socket', d.socket, '--workload', workload, '--depth', String(perQueue), '--queues', String(cfg.queues), '--seconds', String(o.seconds), '--warmup', String(o.warmup)];
    let onLine: ((l: Record<string, unknown>) => void) | undefined;
    let before: { t: number; threads: ThreadCpu[]; proc: number | null; pid: number } | undefined;
    let after: typeof before;
    if (cpu) {
      args.push('--marks');
      const sample = (): NonNullable<typeof before> => {
        const pid = servingPid(d);
        return { t: Date.now(), threads: threadsCpu(pid), proc: processCpuUs(pid), pid };
      };
      onLine = (l) => {
        if (l.mark === 'start') before = sample();
        if (l.mark === 'end') after = sample();
      };
    }
    const run = runLoadgen(bin, args, (o.warmup + o.seconds) * 1000 + 30000, onLine);
    // A daemon that exits first: give the loadgen a moment, its own message says more (it exits
    // when the loadgen dies, too).
    const died = d.exited.then(async (s) => {
      await sleep(1500);
      throw new PointError(`${cfg.key} died during the run (${s}): ${d.stderr().trim().split('\n').slice(-3).join(' | ')}`);
    });
    const results = await Promise.race([run, died]);
    point.result = results[0];
    if (cpu && before && after && point.result) cpu(cpuFigures(cfg.key, before, after, point.result.ops));
    const r = point.result;
    if (r && (r.errors || r.bad)) anomaly(`${cfg.key} ${workload} QD${depth}: ${r.errors} error replies (first ${r.first_errno}), ${r.bad} bad replies ${r.bad_reason}`);
  } catch (e) {
    point.error = (e as Error).message;
  } finally {
    if (daemon) {
      const s = await daemon.stop(3000);
      point.daemonExit = s.status;
      if (point.error) {
        const tail = daemon.stderr().trim().split('\n').slice(-3).join(' | ');
        point.error += ` [daemon: ${s.ownExit ? s.status : 'still running, killed'}${tail ? `; stderr: ${tail}` : ''}]`;
        anomaly(`${cfg.key} ${workload} QD${depth}: ${point.error}`);
      }
      if (!s.ownExit) anomaly(`${cfg.key} ${workload} QD${depth}: did not exit within 3 s of its front-end's disconnect (killed)`);
      else if (!/exit 0/.test(s.status) && !point.error) anomaly(`${cfg.key} ${workload} QD${depth}: ended with ${s.status}`);
    } else if (point.error) anomaly(`${cfg.key} ${workload} QD${depth}: ${point.error}`);
    removeTmpDir(dir);
  }
  return point;
}

function cpuFigures(config: string, b: { t: number; threads: ThreadCpu[]; proc: number | null; pid: number }, a: typeof b, ops: number): CpuFigures {
  const secs = (a.t - b.t) / 1000;
  const threads = a.threads
    .map((t) => {
      const t0 = b.threads.find((x) => x.tid === t.tid);
      const us = t.us - (t0?.us ?? 0);
      return { tid: t.tid, comm: t.comm, us, usPerOp: ops ? us / ops : 0, busyPct: secs ? (100 * us) / (secs * 1e6) : 0 };
    })
    .filter((t) => t.us > 0)
    .sort((x, y) => y.us - x.us);
  const main = threads.find((t) => t.tid === a.pid);
  return {
    config,
    pid: a.pid,
    ops,
    windowSeconds: secs,
    mainUsPerOp: main ? main.usPerOp : 0,
    processUsPerOp: a.proc !== null && b.proc !== null && ops ? (a.proc - b.proc) / ops : null,
    threads,
  };
}

// ---------- formatting ----------

const fmtOps = (n: number): string => (n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e4 ? `${(n / 1e3).toFixed(0)}k` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : n.toFixed(0));
const fmtUs = (us: number): string => (us >= 1e4 ? `${(us / 1e3).toFixed(0)}ms` : us >= 1e3 ? `${(us / 1e3).toFixed(1)}ms` : us >= 10 ? `${us.toFixed(0)}µs` : `${us.toFixed(1)}µs`);

interface Row {
  workload: string;
  depth: number;
  cells: Record<string, { opsPerSec: number; p50: number; p99: number } | { error: string } | null>;
  vfsdBest: number | null;
  cBest: number | null;
  ratioBest: number | null;
  ratioP0: number | null;
}

function rowsOf(points: Point[], o: Options, cfgs: DaemonConfig[]): Row[] {
  const rows: Row[] = [];
  for (const workload of o.workloads)
    for (const depth of o.depths) {
      const cells: Row['cells'] = {};
      for (const c of cfgs) {
        const p = points.find((x) => x.workload === workload && x.depth === depth && x.config === c.key);
        cells[c.key] = !p ? null : p.result && !p.result.bad ? { opsPerSec: p.result.ops_per_sec, p50: p.result.p50_us, p99: p.result.p99_us } : { error: p.error ?? `bad replies: ${p.result?.bad_reason}` };
      }
      const ops = (k: string): number | null => {
        const c = cells[k];
        return c && 'opsPerSec' in c ? c.opsPerSec : null;
      };
      const best = (kind: string): number | null => {
        const v = cfgs.filter((c) => c.kind === kind && c.queues === 1).map((c) => ops(c.key)).filter((x): x is number => x !== null);
        return v.length ? Math.max(...v) : null;
      };
      const vb = best('vfsd');
      const cb = best('c');
      const v0 = ops('vfsd-p0');
      const c0 = ops('c-p0');
      rows.push({ workload, depth, cells, vfsdBest: vb, cBest: cb, ratioBest: vb !== null && cb ? vb / cb : null, ratioP0: v0 !== null && c0 ? v0 / c0 : null });
    }
  return rows;
}

function printTable(rows: Row[], cfgs: DaemonConfig[]): string {
  const label = (c: DaemonConfig): string => (c.queues > 1 ? `${c.key} (QD/2 per queue)` : c.key);
  const w = 22;
  const lines: string[] = [];
  lines.push(`${'workload'.padEnd(12)} ${'QD'.padStart(3)} | ${cfgs.map((c) => label(c).padEnd(w)).join(' | ')} | best/best p0/p0`);
  lines.push(`${''.padEnd(12)} ${''.padStart(3)} | ${cfgs.map(() => `${'ops/s'.padStart(6)} ${'p50'.padStart(6)} ${'p99'.padStart(6)} `.padEnd(w)).join(' | ')} |`);
  lines.push('-'.repeat(lines[0].length));
  for (const r of rows) {
    const cells = cfgs.map((c) => {
      const v = r.cells[c.key];
      if (v === null) return '—'.padEnd(w);
      if ('error' in v) return 'FAILED (see below)'.padEnd(w);
      return `${fmtOps(v.opsPerSec).padStart(6)} ${fmtUs(v.p50).padStart(6)} ${fmtUs(v.p99).padStart(6)} `.padEnd(w);
    });
    const ratio = (x: number | null): string => (x === null ? '—' : x.toFixed(2));
    lines.push(`${r.workload.padEnd(12)} ${String(r.depth).padStart(3)} | ${cells.join(' | ')} | ${ratio(r.ratioBest).padStart(9)} ${ratio(r.ratioP0).padStart(5)}`);
  }
  const text = lines.join('\n');
  console.log(text);
  return text;
}

// ---------- the chart ----------

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Grouped bars of vfsd-best / C-best per workload, one bar per queue depth, a line at parity. */
export function chartSvg(rows: Row[], depths: number[], pool: number, title: string, subtitle: string): string {
  const workloads = [...new Set(rows.map((r) => r.workload))];
  const W = 960;
  const H = 520;
  const m = { l: 78, r: 24, t: 96, b: 80 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const maxRatio = Math.max(1.2, ...rows.map((r) => Math.max(r.ratioBest ?? 0, r.ratioP0 ?? 0)));
  const step = maxRatio > 3 ? 1 : maxRatio > 1.6 ? 0.5 : 0.2;
  const yMax = Math.ceil((maxRatio * 1.08) / step) * step;
  const y = (v: number): number => m.t + ph - (v / yMax) * ph;
  const colors = ['#9ecae1', '#4292c6', '#08306b', '#6baed6', '#2171b5'];
  const gw = pw / workloads.length;
  const bw = Math.min(34, (gw * 0.75) / depths.length);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Arial, sans-serif">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="28" font-size="18" font-weight="bold" text-anchor="middle">${esc(title)}</text>`);
  subtitle.split('\n').forEach((line, i) => out.push(`<text x="${W / 2}" y="${48 + i * 15}" font-size="11.5" fill="#444" text-anchor="middle">${esc(line)}</text>`));
  for (let v = 0; v <= yMax + 1e-9; v += step) {
    out.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#e3e3e3"/>`);
    out.push(`<text x="${m.l - 8}" y="${(y(v) + 4).toFixed(1)}" font-size="12" text-anchor="end">${v.toFixed(1)}</text>`);
  }
  out.push(`<line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${m.t + ph}" stroke="#333"/>`);
  out.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${m.t + ph}" y2="${m.t + ph}" stroke="#333"/>`);
  workloads.forEach((wl, gi) => {
    const gx = m.l + gi * gw + (gw - bw * depths.length) / 2;
    depths.forEach((d, di) => {
      const r = rows.find((x) => x.workload === wl && x.depth === d);
      const x = gx + di * bw;
      if (!r || r.ratioBest === null) {
        out.push(`<text x="${(x + bw / 2).toFixed(1)}" y="${y(0) - 4}" font-size="10" text-anchor="middle" fill="#a00">n/a</text>`);
        return;
      }
      const top = y(r.ratioBest);
      out.push(`<rect x="${(x + 1).toFixed(1)}" y="${top.toFixed(1)}" width="${(bw - 2).toFixed(1)}" height="${(y(0) - top).toFixed(1)}" fill="${colors[di % colors.length]}"><title>${esc(`${wl} QD ${d}: vfsd best / C best = ${r.ratioBest.toFixed(2)}`)}</title></rect>`);
      // The value at the bar's foot, where the pool-0 marker seldom is; above the bar when it is too short.
      const inside = y(0) - top >= 16;
      out.push(`<text x="${(x + bw / 2).toFixed(1)}" y="${(inside ? y(0) - 5 : top - 4).toFixed(1)}" font-size="10" text-anchor="middle" fill="${inside && di % colors.length > 0 ? 'white' : 'black'}">${r.ratioBest.toFixed(2)}</text>`);
      if (r.ratioP0 !== null) out.push(`<line x1="${(x + 3).toFixed(1)}" x2="${(x + bw - 3).toFixed(1)}" y1="${y(r.ratioP0).toFixed(1)}" y2="${y(r.ratioP0).toFixed(1)}" stroke="#d95f02" stroke-width="2.5"/>`);
    });
    out.push(`<text x="${(m.l + gi * gw + gw / 2).toFixed(1)}" y="${m.t + ph + 20}" font-size="13" text-anchor="middle">${esc(wl)}</text>`);
  });
  out.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${y(1).toFixed(1)}" y2="${y(1).toFixed(1)}" stroke="#c00" stroke-width="1.5" stroke-dasharray="6 4"/>`);
  // The parity label sits above the plot, where no bar can cover it.
  out.push(`<line x1="${m.l + pw - 236}" x2="${m.l + pw - 212}" y1="${m.t - 10}" y2="${m.t - 10}" stroke="#c00" stroke-width="1.5" stroke-dasharray="6 4"/>`);
  out.push(`<text x="${m.l + pw}" y="${m.t - 6}" font-size="11.5" fill="#c00" text-anchor="end">1.0 = as fast as the C daemon</text>`);
  out.push(`<text transform="translate(20 ${m.t + ph / 2}) rotate(-90)" font-size="13" text-anchor="middle">ops/s ratio vfsd ÷ C virtiofsd (higher is better)</text>`);
  out.push(`<text x="${m.l + pw / 2}" y="${H - 36}" font-size="13" text-anchor="middle">workload</text>`);
  // Legend, one line under the axis label; text widths estimated at 0.6 em per character.
  let lx = m.l;
  const ly = H - 14;
  depths.forEach((d, di) => {
    out.push(`<rect x="${lx}" y="${ly - 10}" width="14" height="12" fill="${colors[di % colors.length]}"/>`);
    out.push(`<text x="${lx + 19}" y="${ly}" font-size="12">QD ${d}</text>`);
    lx += 19 + 7.2 * `QD ${d}`.length + 16;
  });
  out.push(`<text x="${lx}" y="${ly}" font-size="12">bars: best vfsd config ÷ best C config (pool 0 or ${pool}, one request queue)</text>`);
  lx += 7.2 * 62 + 16;
  out.push(`<line x1="${lx}" x2="${lx + 20}" y1="${ly - 4}" y2="${ly - 4}" stroke="#d95f02" stroke-width="2.5"/>`);
  out.push(`<text x="${lx + 25}" y="${ly}" font-size="12">pool 0 ÷ pool 0</text>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}

// ---------- the extras ----------

interface Ceiling {
  when: 'start' | 'end';
  depth: number;
  queues: number;
  opsPerSec: number;
  p50: number;
  p99: number;
  cpuUsPerOp: number;
  runs: number[];
}

async function ceilings(o: Options, bin: string, when: Ceiling['when']): Promise<Ceiling[]> {
  const out: Ceiling[] = [];
  console.log(`\nLoad generator ceiling at the ${when} (--self-echo: its own echo device on the same rings, GETATTR-sized replies):`);
  for (const depth of o.depths)
    for (const queues of depth >= 2 ? [1, 2] : [1]) {
      const per = Math.floor(depth / queues);
      try {
        // Best of three short runs: on a shared 2-core machine one run can lose a core to a neighbour.
        const runs: LoadResult[] = [];
        for (let i = 0; i < 3; i++)
          runs.push(...(await runLoadgen(bin, ['--self-echo', '--workload', 'getattr', '--depth', String(per), '--queues', String(queues), '--seconds', String(Math.min(0.5, o.seconds)), '--warmup', String(o.warmup)], 30000)));
        const r = runs.reduce((a, b) => (b.ops_per_sec > a.ops_per_sec ? b : a));
        out.push({ when, depth, queues, opsPerSec: r.ops_per_sec, p50: r.p50_us, p99: r.p99_us, cpuUsPerOp: r.loadgen_cpu_us_per_op, runs: runs.map((x) => x.ops_per_sec) });
        console.log(`  QD ${String(depth).padStart(3)}${queues > 1 ? ` (${queues} queues × ${per})` : '             '}: ${fmtOps(r.ops_per_sec).padStart(7)} ops/s, p50 ${fmtUs(r.p50_us)}, p99 ${fmtUs(r.p99_us)}, ${r.loadgen_cpu_us_per_op.toFixed(2)} µs loadgen CPU/op (echo device's polling included; runs ${runs.map((x) => fmtOps(x.ops_per_sec)).join(', ')})`);
      } catch (e) {
        anomaly(`self-echo QD${depth}: ${(e as Error).message}`);
      }
    }
  return out;
}

interface SetlkwFigures {
  config: string;
  depth: number;
  baseOpsPerSec: number[];
  lockedOpsPerSec: number[];
  ratio: number | null;
  setlkw: string[];
}

/**
 * GETATTR while one SETLKW waits on the same queue (a host process holds the lock), against without:
 * eight points in ABBA BAAB order, the ratio of the medians. Four points and a ratio of means read
 * 0.84-0.98 for one build within an hour (one slow point of four moved it by 0.1); half-length points
 * spread wider still (one-second GETATTR runs here read 200k-340k back to back).
 */
async function setlkwRatio(o: Options, bin: string, share: string, cfg: DaemonConfig, depth: number): Promise<SetlkwFigures> {
  const f: SetlkwFigures = { config: cfg.key, depth, baseOpsPerSec: [], lockedOpsPerSec: [], ratio: null, setlkw: [] };
  const order = cfg.kind === 'c' ? [true] : [false, true, true, false, true, false, false, true];
  for (const locked of order) {
    const holder = locked ? startLoadgen(bin, ['--hold-lock', path.join(share, 'lock.txt')]) : undefined;
    try {
      if (holder) {
        const first = await holder.lines.next();
        if (first.done || first.value.locked !== true) throw new Error(`lock holder: ${JSON.stringify(first.value)}`);
      }
      const p = await measurePoint(o, bin, share, cfg, locked ? 'setlkw-getattr' : 'getattr', depth);
      if (p.result) {
        (locked ? f.lockedOpsPerSec : f.baseOpsPerSec).push(p.result.ops_per_sec);
        if (locked) f.setlkw.push(p.result.setlkw);
      }
    } finally {
      holder?.kill();
      if (holder) await holder.done;
    }
  }
  if (f.baseOpsPerSec.length && f.lockedOpsPerSec.length) f.ratio = median(f.lockedOpsPerSec) / median(f.baseOpsPerSec);
  return f;
}

interface ScalingFigures {
  depth: number;
  /** GETATTR ops/s of each run, by config. */
  runs: Record<string, number[]>;
  /** median vfsd-2qt ÷ median vfsd-p0 */
  gain: number;
  vsC: number | null;
  setlkw: SetlkwFigures;
}

const QUEUE_THREADS: DaemonConfig = { key: 'vfsd-2qt', kind: 'vfsd', pool: 0, queues: 2, args: ['--queue-threads'] };

/** Issue 11's figure: one queue against two queue threads (and the C daemon's one), alternated. */
async function multiqueueScaling(o: Options, bin: string, share: string): Promise<ScalingFigures> {
  const depth = 32;
  const cfgs: DaemonConfig[] = [{ key: 'vfsd-p0', kind: 'vfsd', pool: 0, queues: 1 }, QUEUE_THREADS];
  if (o.daemons.includes('c')) cfgs.push({ key: 'c-p0', kind: 'c', pool: 0, queues: 1 });
  const runs: Record<string, number[]> = Object.fromEntries(cfgs.map((c) => [c.key, [] as number[]]));
  for (let round = 0; round < 3; round++)
    for (const c of round % 2 ? [...cfgs].reverse() : cfgs) {
      const p = await measurePoint(o, bin, share, c, 'getattr', depth);
      if (p.result) runs[c.key].push(p.result.ops_per_sec);
    }
  const m = (k: string): number => (runs[k]?.length ? median(runs[k]) : NaN);
  const vsC = runs['c-p0'] ? m('vfsd-2qt') / m('c-p0') : null;
  return { depth, runs, gain: m('vfsd-2qt') / m('vfsd-p0'), vsC, setlkw: await setlkwRatio(o, bin, share, QUEUE_THREADS, depth) };
}

interface MemoryFigures {
  config: string;
  pid: number;
  idleKb: number | null;
  afterLoadKb: number | null;
  afterLookupsKb: number | null;
  lookups: number;
  lookupErrors: number;
  firstErrno: number;
  treeNote?: string;
}

/** Resident size idle after INIT, right after a GETATTR load at QD 16, and with many known inodes. */
async function memory(o: Options, bin: string, share: string, cfg: DaemonConfig, lookups: number): Promise<MemoryFigures> {
  const f: MemoryFigures = { config: cfg.key, pid: 0, idleKb: null, afterLoadKb: null, afterLookupsKb: null, lookups, lookupErrors: 0, firstErrno: 0 };
  const dir = makeTmpDir('vfsd-bench-mem-');
  const daemon = await startDaemon(cfg, share, dir);
  try {
    const args = ['--socket', daemon.socket, '--workload', 'getattr,lookup-many', '--depth', '16', '--count', String(lookups), '--seconds', String(o.seconds), '--warmup', String(o.warmup), '--hold'];
    let phase = 0;
    const run = runLoadgen(bin, args, 120000 + o.seconds * 1000, async (l) => {
      const pid = servingPid(daemon);
      f.pid = pid;
      if (l.hold === 'ready') {
        await sleep(1000); // let start-up garbage settle, as a daemon waiting for its guest would
        f.idleKb = rssKb(pid);
      } else if ('ops' in l) {
        if (phase++ === 0) f.afterLoadKb = rssKb(pid);
        else f.afterLookupsKb = rssKb(pid);
      }
    });
    const res = await run;
    const lm = res.find((r) => r.workload === 'lookup-many');
    if (lm) {
      f.lookupErrors = lm.errors;
      f.firstErrno = lm.first_errno;
      if (lm.errors || lm.bad) anomaly(`${cfg.key} lookup-many: ${lm.errors} errors (first ${lm.first_errno}), ${lm.bad} bad`);
    }
    if (cfg.kind === 'c' && f.pid !== daemon.pid) f.treeNote = `serving process ${f.pid} (forked into its sandbox); its parent ${daemon.pid} holds ${rssKb(daemon.pid) ?? '?'} kB more`;
  } catch (e) {
    anomaly(`memory ${cfg.key}: ${(e as Error).message}`);
  } finally {
    await daemon.stop(3000);
    removeTmpDir(dir);
  }
  return f;
}

interface Machine {
  nproc: number;
  cpu: string;
  kernel: string;
  node: string;
  peer: string;
  loadavg: string;
}

function machine(): Machine {
  const cpu = /model name\s*:\s*(.*)/.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'));
  return { nproc: os.cpus().length, cpu: cpu ? cpu[1] : 'unknown', kernel: `${os.release()}`, node: process.version, peer: peerVersion(), loadavg: os.loadavg().map((x) => x.toFixed(2)).join(' ') };
}

function peerVersion(): string {
  const r = spawnSync('dpkg-query', ['-W', '-f', '${Version}', 'qemu-system-common'], { encoding: 'utf8' });
  return r.status === 0 ? `qemu-system-common ${r.stdout}` : 'unknown';
}

// ---------- main ----------

async function main(): Promise<void> {
  const t0 = Date.now();
  const o = parseArgs(process.argv.slice(2));
  const load0 = os.loadavg()[0];
  // Other work on the machine shows in every figure: say so up front.
  if (load0 > 0.5) console.log(`note: load average ${load0.toFixed(2)} before the run: the machine is not quiet`);
  installCleanupHandlers();
  if (o.daemons.includes('c')) ensurePeer();
  const bin = buildLoadgen();
  const share = makeTmpDir('vfsd-bench-share-');
  const ts = Date.now();
  makeShare(share, { manyFiles: o.manyFiles, dirEntries: 1000, fileSize: 64 << 20 });
  console.log(`share made in ${((Date.now() - ts) / 1000).toFixed(1)} s (${share}); ${o.seconds} s per point after ${o.warmup} s warm-up; cache=never / cache=none; one fresh daemon per point`);
  const cfgs = configs(o);

  const ceil = await ceilings(o, bin, 'start');

  const points: Point[] = [];
  const cpu: CpuFigures[] = [];
  const cpuDepth = Math.max(...o.depths);
  console.log(`\nMeasuring ${o.workloads.length} workloads × QD ${o.depths.join('/')} × ${cfgs.map((c) => c.key).join(', ')} ...`);
  for (const workload of o.workloads)
    for (const depth of o.depths) {
      const line: string[] = [];
      for (const c of cfgs) {
        if (c.queues > 1 && depth < c.queues) continue;
        const withCpu = workload === 'getattr' && depth === cpuDepth ? (f: CpuFigures) => cpu.push(f) : undefined;
        const p = await measurePoint(o, bin, share, c, workload, depth, withCpu);
        points.push(p);
        line.push(`${c.key} ${p.result ? fmtOps(p.result.ops_per_sec) : 'FAILED'}`);
      }
      console.log(`  ${workload} QD${depth}: ${line.join(', ')}`);
    }

  // Once more at the end: a busy minute on a shared machine lowers the echo ceiling as well.
  ceil.push(...(await ceilings(o, bin, 'end')));

  const setlkwDepth = o.depths.includes(16) ? 16 : Math.max(...o.depths);
  const setlkw: SetlkwFigures[] = [];
  if (o.workloads.includes('getattr'))
    for (const c of cfgs.filter((x) => x.queues === 1 && (x.kind === 'vfsd' || x.pool === 0))) setlkw.push(await setlkwRatio(o, bin, share, c, setlkwDepth));

  const scaling = o.workloads.includes('getattr') && o.daemons.includes('vfsd') ? await multiqueueScaling(o, bin, share) : null;

  const mem: MemoryFigures[] = [];
  // Both daemons hold an O_PATH fd per known inode: under a lower open-file hard limit (it cannot be
  // raised without CAP_SYS_RESOURCE) they get EMFILE, so fd-bound configs look up what fits, and vfsd
  // also runs with file handles (--inode-file-handles prefer: a bounded fd cache) for the full count.
  const hard = nofileHardLimit();
  const fdBound = Math.min(o.manyFiles, hard - 1000);
  if (fdBound < o.manyFiles) console.log(`\nnote: open-file hard limit ${hard}: the fd-per-inode configs look up ${fdBound.toLocaleString('en')} files, not ${o.manyFiles.toLocaleString('en')}`);
  if (o.workloads.includes('getattr')) {
    for (const c of cfgs.filter((x) => x.queues === 1 && x.pool === 0)) mem.push(await memory(o, bin, share, c, fdBound));
    if (o.daemons.includes('vfsd')) mem.push(await memory(o, bin, share, { key: 'vfsd-p0-fh', kind: 'vfsd', pool: 0, queues: 1, args: ['--inode-file-handles', 'prefer'] }, o.manyFiles));
  }
  removeTmpDir(share);

  // ---------- the report ----------
  const date = new Date().toISOString().slice(0, 10);
  const mach = { ...machine(), loadavgBefore: load0.toFixed(2) };
  console.log(`\nvfsd vs C virtiofsd (${mach.peer}), ${date}, ${mach.nproc} cores ${mach.cpu}, kernel ${mach.kernel}, node ${mach.node}; load average ${mach.loadavgBefore} before, ${mach.loadavg} after`);
  console.log(`cache=never (vfsd) / cache=none (C); ${o.seconds} s per point; ops/s, p50, p99 latency per request (create: of the CREATE+RELEASE+UNLINK triple; readdirplus: of a whole 1,000-entry listing).`);
  console.log(`best/best: the faster single-queue vfsd config ÷ the faster C config; p0/p0: pool 0 each. vfsd-2q: 2 request queues, QD/2 in flight on each (same total), both on the main thread; vfsd-2qt: the same with --queue-threads (a thread per request queue); the C daemon cannot serve 2.\n`);
  const rows = rowsOf(points, o, cfgs);
  const table = printTable(rows, cfgs);

  console.log('\nLoad generator ceiling vs the fastest daemon at each depth:');
  for (const d of o.depths) {
    const cs = ceil.filter((x) => x.depth === d && x.queues === 1);
    const fastest = Math.max(0, ...points.filter((p) => p.depth === d && p.result).map((p) => p.result!.ops_per_sec));
    if (!cs.length) continue;
    const c = cs.reduce((a, b) => (b.opsPerSec > a.opsPerSec ? b : a));
    const ok = c.opsPerSec >= 2 * fastest;
    console.log(`  QD ${d}: ceiling ${fmtOps(c.opsPerSec)} ops/s (best of start ${cs.map((x) => fmtOps(x.opsPerSec)).join(' / end ')}), fastest daemon ${fmtOps(fastest)} (${(c.opsPerSec / Math.max(1, fastest)).toFixed(1)}×)${ok ? '' : '  ! the generator is within 2× of a daemon: its figures may be capped'}`);
    if (!ok) anomalies.push(`ceiling at QD ${d} is under 2× the fastest daemon`);
  }

  if (cpu.length) {
    console.log(`\nCPU per GETATTR at QD ${cpuDepth} (from /proc/PID/task/TID/stat over the timed window, ${1e6 / (Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100) / 1000} ms ticks):`);
    for (const f of cpu) {
      // The C daemon serves from a queue thread, its main thread only waits on the socket.
      const main = f.config.startsWith('c-') ? '' : `main thread ${f.mainUsPerOp?.toFixed(2)} µs/op, `;
      console.log(`  ${f.config}: ${fmtOps(f.ops / f.windowSeconds)} ops/s; ${main}whole process ${f.processUsPerOp?.toFixed(2) ?? '?'} µs/op`);
      console.log(`    threads: ${f.threads.map((t) => `${t.comm}[${t.tid}${t.tid === f.pid ? ' main' : ''}] ${t.usPerOp.toFixed(2)} µs/op ${t.busyPct.toFixed(0)}%`).join(', ') || '(none busy)'}`);
    }
  }

  if (setlkw.length) {
    console.log(`\nGETATTR at QD ${setlkwDepth} while one SETLKW waits on the same queue (a host process holds a conflicting POSIX lock), vs without:`);
    for (const f of setlkw) {
      const fmt = (a: number[]): string => a.map(fmtOps).join(', ');
      if (f.config.startsWith('c-')) console.log(`  ${f.config}: SETLKW answered "${f.setlkw.join(', ')}" (the C daemon does not wait on locks); GETATTR ${fmt(f.lockedOpsPerSec)}`);
      else console.log(`  ${f.config}: ratio ${f.ratio?.toFixed(2) ?? '—'} (with the wait ${fmt(f.lockedOpsPerSec)}; without ${fmt(f.baseOpsPerSec)} ops/s; SETLKW ${f.setlkw.join(', ')})`);
    }
  }

  if (scaling) {
    const fmt = (a: number[]): string => a.map(fmtOps).join(', ');
    console.log(`\nMultiqueue: GETATTR at a total QD ${scaling.depth} (QD ${scaling.depth / 2} on each of 2 queues, a load-generator thread each), medians of ${scaling.runs['vfsd-p0'].length} runs alternated:`);
    for (const [key, runs] of Object.entries(scaling.runs)) console.log(`  ${key.padEnd(9)} ${fmtOps(median(runs)).padStart(6)} ops/s (${fmt(runs)})`);
    console.log(`  vfsd-2qt / vfsd-p0 (1 queue): ${scaling.gain.toFixed(2)}×${scaling.vsC === null ? '' : `; vfsd-2qt / c-p0: ${scaling.vsC.toFixed(2)}×`}`);
    const s = scaling.setlkw;
    console.log(`  vfsd-2qt GETATTR on both queues while a SETLKW waits on queue 1, vs without: ratio ${s.ratio?.toFixed(2) ?? '—'} (with ${fmt(s.lockedOpsPerSec)}; without ${fmt(s.baseOpsPerSec)}; SETLKW ${s.setlkw.join(', ')})`);
  }

  if (mem.length) {
    console.log(`\nResident size (VmRSS): idle after start + INIT, right after ${o.seconds} s of GETATTR at QD 16, after LOOKUP of N distinct files:`);
    const mb = (k: number | null): string => (k === null ? '?' : `${(k / 1024).toFixed(1)} MB`);
    for (const f of mem) {
      const errs = f.lookupErrors ? ` (${f.lookupErrors} LOOKUPs failed, first errno ${f.firstErrno})` : '';
      console.log(`  ${f.config.padEnd(10)}: idle ${mb(f.idleKb)}, after load ${mb(f.afterLoadKb)}, N=${f.lookups.toLocaleString('en')} inodes ${mb(f.afterLookupsKb)}${errs}${f.treeNote ? ` (${f.treeNote})` : ''}`);
    }
  }

  // Issue 15's acceptance figures, as this run saw them.
  const met = (ok: boolean): string => (ok ? 'met' : 'NOT met');
  const deep = rows.filter((r) => r.depth >= 16 && r.ratioBest !== null);
  const qd1 = rows.filter((r) => r.depth === 1 && r.ratioBest !== null);
  const goals: string[] = [];
  if (deep.length) goals.push(`vfsd/C ≥ 1.0 at QD ≥ 16: ${deep.filter((r) => r.ratioBest! >= 1).length} of ${deep.length} points (lowest ${Math.min(...deep.map((r) => r.ratioBest!)).toFixed(2)})`);
  if (qd1.length) goals.push(`vfsd/C ≥ 0.8 at QD 1: ${qd1.filter((r) => r.ratioBest! >= 0.8).length} of ${qd1.length} (lowest ${Math.min(...qd1.map((r) => r.ratioBest!)).toFixed(2)})`);
  const v0 = cpu.find((f) => f.config === 'vfsd-p0');
  if (v0 && v0.mainUsPerOp !== null) goals.push(`main-thread CPU per GETATTR at QD ${cpuDepth} ≤ 3 µs: ${v0.mainUsPerOp.toFixed(2)} µs, ${met(v0.mainUsPerOp <= 3)}`);
  for (const f of setlkw.filter((x) => x.config.startsWith('vfsd') && x.ratio !== null)) goals.push(`${f.config} GETATTR with a SETLKW waiting ≥ 0.9×: ${f.ratio!.toFixed(2)}, ${met(f.ratio! >= 0.9)}`);
  const m0 = mem.find((f) => f.config === 'vfsd-p0');
  if (m0 && m0.idleKb !== null && m0.afterLoadKb !== null)
    goals.push(`RSS ≤ 50 MB idle: ${(m0.idleKb / 1024).toFixed(1)} MB, ${met(m0.idleKb <= 50 * 1024)}; ≤ idle + 16 MB under load: +${((m0.afterLoadKb - m0.idleKb) / 1024).toFixed(1)} MB, ${met(m0.afterLoadKb - m0.idleKb <= 16 * 1024)}`);
  if (scaling) {
    goals.push(`2 queue threads ≥ 1.3× 1 queue (GETATTR, total QD ${scaling.depth}): ${scaling.gain.toFixed(2)}×, ${met(scaling.gain >= 1.3)}`);
    if (scaling.vsC !== null) goals.push(`2 queue threads ≥ 1.0× the C daemon: ${scaling.vsC.toFixed(2)}×, ${met(scaling.vsC >= 1)}`);
    if (scaling.setlkw.ratio !== null) goals.push(`a SETLKW waiting on queue 1 leaves GETATTR ≥ 0.9×: ${scaling.setlkw.ratio.toFixed(2)}, ${met(scaling.setlkw.ratio >= 0.9)}`);
  }
  if (goals.length) console.log(`\nIssue 15 and 11 targets in this run:\n${goals.map((g) => `  - ${g}`).join('\n')}`);

  const wall = (Date.now() - t0) / 1000;
  if (anomalies.length) console.log(`\nAnomalies (${anomalies.length}):\n${anomalies.map((a) => `  - ${a}`).join('\n')}`);
  console.log(`\nTotal wall time ${wall.toFixed(0)} s.`);

  fs.mkdirSync(o.out, { recursive: true });
  const report = { date: new Date().toISOString(), machine: mach, options: { ...o, out: undefined }, ceilings: ceil, rows, points, cpu, setlkw, scaling, memory: mem, targets: goals, anomalies, table, wallSeconds: wall };
  fs.writeFileSync(path.join(o.out, 'latest.json'), JSON.stringify(report, null, 2) + '\n');
  fs.writeFileSync(
    path.join(o.out, 'latest.svg'),
    chartSvg(rows, o.depths, o.pool, `vfsd ÷ C virtiofsd throughput, cache=never, ${date}`, `${mach.nproc} cores ${mach.cpu}, Linux ${mach.kernel}, node ${mach.node}, C daemon from ${mach.peer}\n${o.seconds} s per point, one fresh daemon each, C load generator over vhost-user; load average ${mach.loadavgBefore} at start`),
  );
  console.log(`wrote ${path.relative(process.cwd(), path.join(o.out, 'latest.json'))} and latest.svg`);
}

if (require.main === module) {
  main()
    .then(() => {
      cleanupAll();
      process.exit(0);
    })
    .catch((e: Error) => {
      console.error(e.stack ?? String(e));
      cleanupAll();
      process.exit(1);
    });
}
