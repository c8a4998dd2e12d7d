// npm run soak -- [--minutes N] [--depth D] [--queues Q] [--pool P] [--queue-threads]: one vfsd, driven for N minutes by
// the C load generator over its request queues (default 2 queues at QD 64 each) with every kind of
// request a guest keeps sending (GETATTR, LOOKUP, 4 KiB READ and WRITE, CREATE+RELEASE+UNLINK, SETLK
// and its unlock, READDIRPLUS of 1,000 entries with their FORGETs). Each minute it prints ops/s,
// errors and the daemon's resident size; at the end, whether RSS stayed flat and no error came.
// Exits 1 on an error, a malformed reply or the daemon's death.
import * as fs from 'fs';
import * as path from 'path';
import { buildLoadgen, cleanupAll, installCleanupHandlers, makeShare, makeTmpDir, rssKb, runLoadgen, servingPid, startDaemon } from './harness';

interface Options {
  minutes: number;
  depth: number;
  queues: number;
  /** Each request queue in a thread of its own (vfsd --queue-threads). */
  queueThreads: boolean;
  pool: number;
}

function parseArgs(argv: string[]): Options {
  const known = new Set(['--minutes', '--depth', '--queues', '--pool', '--queue-threads', '--help']);
  for (const a of argv) if (a.startsWith('--') && !known.has(a)) throw new Error(`unknown option ${a} (see --help)`);
  if (argv.includes('--help')) {
    console.log('npm run soak -- [--minutes N (10)] [--depth D per queue (64)] [--queues Q (2)] [--pool P (0)] [--queue-threads]');
    process.exit(0);
  }
  const val = (name: string, dflt: number): number => {
    const i = argv.indexOf(name);
    const v = i >= 0 ? Number(argv[i + 1]) : dflt;
    if (!(v > 0 || (name === '--pool' && v === 0))) throw new Error(`${name} needs a positive number`);
    return v;
  };
  return { minutes: val('--minutes', 10), depth: val('--depth', 64), queues: val('--queues', 2), pool: val('--pool', 0), queueThreads: argv.includes('--queue-threads') };
}

async function main(): Promise<number> {
  const o = parseArgs(process.argv.slice(2));
  installCleanupHandlers();
  const bin = buildLoadgen();
  const dir = makeTmpDir('vfsd-soak-');
  const share = path.join(dir, 'share');
  fs.mkdirSync(share);
  makeShare(share, { manyFiles: 0, dirEntries: 1000, fileSize: 64 << 20 });
  const daemon = await startDaemon({ key: 'vfsd', kind: 'vfsd', pool: o.pool, queues: o.queues, args: o.queueThreads ? ['--queue-threads'] : [] }, share, dir);
  const pid = servingPid(daemon);
  const mb = (): string => `${((rssKb(pid) ?? 0) / 1024).toFixed(1)} MB`;
  const rss: number[] = [rssKb(pid) ?? 0];
  console.log(`soak: vfsd (pool ${o.pool}, ${o.queues} request queues${o.queueThreads ? ' in threads of their own' : ''}, QD ${o.depth} each), ${o.minutes} min; resident at start ${mb()}`);
  console.log('minute   ops/s   errors   bad   resident');
  let last = { t: 0, ops: 0 };
  let failed = false;
  const results = await runLoadgen(bin, ['--socket', daemon.socket, '--workload', 'soak', '--depth', String(o.depth), '--queues', String(o.queues), '--seconds', String(o.minutes * 60), '--warmup', '1', '--report', '60'], (o.minutes * 60 + 120) * 1000, (l) => {
    if (typeof l.report !== 'number') return;
    const t = l.report;
    const ops = Number(l.ops);
    const errors = Number(l.errors);
    const bad = Number(l.bad);
    rss.push(rssKb(pid) ?? 0);
    console.log(`${String(Math.round(t / 60)).padStart(6)} ${String(Math.round((ops - last.ops) / (t - last.t))).padStart(7)} ${String(errors).padStart(8)} ${String(bad).padStart(5)}   ${mb()}`);
    if (errors || bad) failed = true;
    last = { t, ops };
  }).catch((e: Error) => {
    console.log(`soak: the load generator failed: ${e.message}`);
    failed = true;
    return [];
  });
  const r = results[results.length - 1];
  if (r) {
    console.log(`total: ${r.ops} requests in ${r.seconds.toFixed(0)} s (${Math.round(r.ops_per_sec)} ops/s), p50 ${r.p50_us} µs, p99 ${r.p99_us} µs, ${r.errors} errors${r.first_errno ? ` (first errno ${r.first_errno})` : ''}, ${r.bad} malformed replies${r.bad ? `: ${r.bad_reason}` : ''}`);
    if (r.errors || r.bad) failed = true;
  }
  // Flat: the last minutes within 16 MB of the first minute's (the heap settles in the first one).
  const first = rss[Math.min(1, rss.length - 1)];
  const end = rss[rss.length - 1];
  console.log(`resident: start ${(rss[0] / 1024).toFixed(1)} MB, after minute 1 ${(first / 1024).toFixed(1)} MB, end ${(end / 1024).toFixed(1)} MB (${end - first >= 0 ? '+' : ''}${((end - first) / 1024).toFixed(1)} MB since minute 1)`);
  if (daemon.child.exitCode !== null || daemon.child.signalCode !== null) {
    console.log('soak: the daemon died');
    failed = true;
  }
  cleanupAll();
  console.log(failed ? 'soak: FAILED' : 'soak: no error');
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: Error) => {
    console.error(`soak: ${e.stack ?? e.message}`);
    cleanupAll();
    process.exit(1);
  },
);
