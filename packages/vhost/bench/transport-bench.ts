// Transport benchmark: round trips per second and latency through the vhost-user back-end with the
// echo device (no file system work), at several queue depths, for a small request (like a FUSE
// getattr: 40 readable bytes, 16+80 writable) and a 4 KiB one.
//
// The back-end always runs in this process's main thread. The front-end runs
//   fork:   in a child process (the headline: the back-end's event loop alone on its thread),
//   worker: in a worker thread of this process,
//   inproc: in this main thread too (both sides' costs on one thread).
//
//   npx tsc -b packages/vhost && node packages/vhost/dist/bench/transport-bench.js \
//     [--modes fork,worker,inproc] [--depths 1,16,64] [--duration MS] [--warmup MS] [--json FILE]
import { ChildProcess, execFileSync, fork } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { performance } from 'perf_hooks';
import { Worker } from 'worker_threads';
import { serve, Server } from '../src/backend/serve';
import { EchoDevice } from '../src/devices/echo-device';
import { consoleLogger } from '../src/backend/device';
import { SimulatedFrontend } from '../src/frontend/simulated-frontend';
import { CaseResult, CaseSpec, FrontendCommand, FrontendEvent, NEGOTIATE, runCase } from './transport-frontend';
import { emitJson, fmt, machine, numArg, parseArgs, table } from './bench-util';

/**
 * fork: child process, placed by the scheduler; fork-split: back-end pinned to CPU 0, child to CPU 1;
 * fork-same: both pinned to CPU 0. worker/inproc are placed by the scheduler.
 */
type Mode = 'fork' | 'fork-split' | 'fork-same' | 'worker' | 'inproc';
const MODES: Mode[] = ['fork', 'fork-split', 'fork-same', 'worker', 'inproc'];

interface Row {
  mode: Mode;
  size: string;
  depth: number;
  rtPerSec: number;
  p50Us: number;
  p99Us: number;
  p999Us: number;
  /** Back-end process CPU (all threads) per request, µs. In inproc mode: both sides. */
  backendCpuUsPerReq: number;
  /** Front-end CPU per request, µs (fork only: in worker/inproc it is the same process). */
  frontendCpuUsPerReq: number | null;
  /** Event-loop utilization of the back-end's main thread over the case. */
  backendElu: number;
  errors: number;
}

const SIZES: Record<string, { readable: number[]; writable: number[] }> = {
  // FUSE getattr: in_header(40) in; out_header(16) + attr_out(88)... 16+80 as the brief says.
  small: { readable: [40], writable: [16, 80] },
  // 4 KiB each way: the echo copies 4096 bytes from the readable buffer into 16+4096 writable.
  '4k': { readable: [4096], writable: [16, 4096] },
};

/** Runs one case on a front-end somewhere; resolves with its result. */
type Runner = (spec: CaseSpec) => Promise<CaseResult>;

interface FrontendHost {
  run: Runner;
  close(): Promise<void>;
}

function remoteHost(post: (c: FrontendCommand) => void, on: (f: (e: FrontendEvent) => void) => void, exited: Promise<void>): Promise<FrontendHost> {
  return new Promise((resolve, reject) => {
    let pending: { resolve: (r: CaseResult) => void; reject: (e: Error) => void } | null = null;
    on((e) => {
      if (e.type === 'ready') {
        resolve({
          run: (spec) =>
            new Promise((res, rej) => {
              pending = { resolve: res, reject: rej };
              post({ type: 'run', spec });
            }),
          close: async () => {
            post({ type: 'exit' });
            await exited;
          },
        });
      } else if (e.type === 'result') {
        pending?.resolve(e.result);
        pending = null;
      } else {
        const err = new Error(`front-end: ${e.message}`);
        if (pending) pending.reject(err);
        else reject(err);
        pending = null;
      }
    });
    void exited.then(() => {
      const err = new Error('front-end exited');
      pending?.reject(err);
      reject(err); // no-op once ready
    });
  });
}

let allCpus: string | null = null;
const children: ChildProcess[] = [];
/** Extra node options for a forked front-end (--fe-node-args). */
let feNodeArgs: string[] = [];

/** Pins every thread of this process to `cpu`, or back to every CPU with null. */
function pinSelf(cpu: number | null): void {
  allCpus ??= execFileSync('taskset', ['-c', '-p', String(process.pid)]).toString().trim().split(': ').pop()!;
  execFileSync('taskset', ['-a', '-c', '-p', cpu === null ? allCpus : String(cpu), String(process.pid)], { stdio: 'ignore' });
}

async function startFrontend(mode: Mode, socketPath: string): Promise<FrontendHost> {
  const script = path.join(__dirname, 'transport-frontend.js');
  if (mode === 'fork' || mode === 'fork-split' || mode === 'fork-same') {
    const cpu = mode === 'fork-split' ? 1 : 0;
    // taskset execs node with the affinity set before any thread starts; the IPC fd goes through.
    const nodeArgs = [...process.execArgv, ...feNodeArgs];
    const pinned = mode === 'fork' ? { execArgv: nodeArgs } : { execPath: 'taskset', execArgv: ['-c', String(cpu), process.execPath, ...nodeArgs] };
    pinSelf(mode === 'fork' ? null : 0);
    const child = fork(script, [socketPath], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], ...pinned });
    children.push(child);
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    return remoteHost(
      (c) => child.send(c),
      (f) => child.on('message', (m) => f(m as FrontendEvent)),
      exited,
    );
  }
  pinSelf(null);
  if (mode === 'worker') {
    const w = new Worker(script, { workerData: { role: 'transport-frontend', socketPath } });
    const exited = new Promise<void>((r) => w.once('exit', () => r()));
    w.on('error', (e) => console.error(`front-end worker: ${e.stack ?? e}`));
    return remoteHost(
      (c) => w.postMessage(c),
      (f) => w.on('message', f),
      exited,
    );
  }
  const fe = await SimulatedFrontend.connect(socketPath);
  await fe.negotiate(NEGOTIATE);
  return {
    run: (spec) => runCase(fe, spec),
    close: async () => fe.close(),
  };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const modes = (args.get('modes') ?? MODES.join(',')).split(',') as Mode[];
  feNodeArgs = (args.get('fe-node-args') ?? '').split(' ').filter((a) => a);
  const depths = (args.get('depths') ?? '1,16,64').split(',').map(Number);
  const sizes = (args.get('sizes') ?? 'small,4k').split(',');
  const forkDuration = numArg(args, 'duration', 1200);
  const otherDuration = numArg(args, 'other-duration', Math.min(forkDuration, 500));
  const warmupMs = numArg(args, 'warmup', 250);
  for (const m of modes) if (!MODES.includes(m)) throw new Error(`unknown mode ${m}`);
  for (const s of sizes) if (!SIZES[s]) throw new Error(`unknown size ${s}`);

  // Bounded: whatever happens, stop after a while.
  const budgetMs = 20_000 + modes.length * sizes.length * depths.length * (forkDuration + warmupMs + 500);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vfsd-bench-'));
  const socketPath = path.join(dir, 'vhost.sock');
  const watchdog = setTimeout(() => {
    console.error(`transport-bench: still running after ${budgetMs} ms, giving up`);
    for (const c of children) c.kill('SIGKILL');
    // process.exit() waits for worker threads: the listener's reader must be woken from accept4/recvmsg.
    server.listener.stop();
    fs.rmSync(dir, { recursive: true, force: true });
    process.exit(2);
  }, budgetMs);
  watchdog.unref();

  const server: Server = serve({
    socketPath,
    reconnect: true,
    logger: consoleLogger,
    createDevice: () => new EchoDevice({ numQueues: 2, logger: consoleLogger }),
  });

  const rows: Row[] = [];
  const loadStart = os.loadavg().map((l) => l.toFixed(2)).join(' ');
  try {
    for (const mode of modes) {
      const host = await startFrontend(mode, socketPath);
      for (const size of sizes) {
        for (const depth of depths) {
          const spec: CaseSpec = {
            name: `${mode}/${size}/qd${depth}`,
            ...SIZES[size],
            depth,
            queue: 1,
            warmupMs,
            durationMs: mode === 'fork' ? forkDuration : otherDuration,
          };
          const cpu0 = process.cpuUsage();
          const elu0 = performance.eventLoopUtilization();
          const r = await host.run(spec);
          const elu = performance.eventLoopUtilization(elu0);
          const cpu = process.cpuUsage(cpu0);
          const cpuUs = cpu.user + cpu.system;
          rows.push({
            mode,
            size,
            depth,
            rtPerSec: r.rtPerSec,
            p50Us: r.latencyUs.p50,
            p99Us: r.latencyUs.p99,
            p999Us: r.latencyUs.p999,
            backendCpuUsPerReq: cpuUs / r.totalCompleted,
            frontendCpuUsPerReq: mode.startsWith('fork') ? r.frontendCpuUs / r.totalCompleted : null,
            backendElu: elu.utilization,
            errors: r.errors,
          });
          const last = rows[rows.length - 1];
          console.error(`  ${spec.name}: ${fmt(last.rtPerSec)} rt/s, p50 ${fmt(last.p50Us)} µs, p99 ${fmt(last.p99Us)} µs`);
        }
      }
      await host.close();
    }
  } finally {
    pinSelf(null);
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }

  console.log('\nvhost-user transport, echo device (queue size 1024, EVENT_IDX, indirect descriptors)');
  console.log('  fork = front-end in a child process, placed by the scheduler (headline); fork-split = back-end on CPU 0, front-end on CPU 1;');
  console.log('  fork-same = both on CPU 0; worker = front-end in a worker thread; inproc = front-end in the back-end\'s thread');
  console.log('  cpu/req: CPU time (user+sys, all threads) per round trip; be = back-end process, fe = front-end process');
  console.log('  be loop util: share of wall time the back-end\'s event loop was busy; be cap = rt/s / loop util, what the back-end thread');
  console.log('  could sustain if the front-end kept up (at qd 16/64 the simulated front-end, not the back-end, is the bottleneck)');
  console.log(`  load average at start: ${loadStart}, at end: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} (other jobs on the machine skew figures)`);
  console.log(
    table(
      ['mode', 'size', 'qd', 'rt/s', 'p50 µs', 'p99 µs', 'p99.9 µs', 'be cpu/req µs', 'fe cpu/req µs', 'be loop util', 'be cap rt/s'],
      rows.map((r) => [
        r.mode,
        r.size,
        String(r.depth),
        r.rtPerSec,
        r.p50Us,
        r.p99Us,
        r.p999Us,
        r.backendCpuUsPerReq,
        r.frontendCpuUsPerReq ?? '-',
        r.backendElu.toFixed(2),
        r.mode === 'inproc' ? '-' : r.rtPerSec / r.backendElu,
      ]),
    ),
  );
  const errors = rows.reduce((a, r) => a + r.errors, 0);
  if (errors) console.log(`WARNING: ${errors} echoed replies had an unexpected length`);
  emitJson(args, { bench: 'transport', machine: machine(), forkDurationMs: forkDuration, otherDurationMs: otherDuration, warmupMs, rows });
  clearTimeout(watchdog);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
