// Kick latency: from an eventfd write in the guest's stand-in (another process) to the back-end's
// JavaScript seeing it, for the ways a kick can reach the main event loop:
//   pipe_wrap:      the eventfd opened in a libuv pipe_wrap handle (what src/sys/eventfd.ts does):
//                   epoll in the main loop, the 'data' callback;
//   worker-post:    a worker thread blocked in read(2) on the eventfd, then postMessage to the main thread;
//   worker-waitAsync: the same worker, waking the main thread with Atomics.notify, the main thread
//                   awaiting Atomics.waitAsync;
//   same-thread:    write and watch in the main thread of one process (a lower bound, not a real path).
// One-way latency = (back-end callback time) - (kick time in the child), both CLOCK_MONOTONIC.
// Each placement: scheduler's choice, split (back-end on CPU 0, guest on CPU 1), same (both on CPU 0).
//
//   npx tsc -b packages/vhost && node packages/vhost/dist/bench/kick-latency.js [--rounds N] [--gap-us US] [--json FILE]
import { ChildProcess, execFileSync, fork } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { Worker } from 'worker_threads';
import { EventFdWatcher, createEventFd, signalEventFd } from '../src/sys/eventfd';
import { EFD_CLOEXEC, eventfd } from '../src/sys/libc';
import { LatencySummary, emitJson, machine, monoNs, numArg, parseArgs, summarize, table } from './bench-util';

type Path = 'pipe_wrap' | 'worker-post' | 'worker-waitAsync';
type Placement = 'sched' | 'split' | 'same';

interface Result {
  path: Path | 'same-thread';
  placement: Placement | '-';
  oneWayUs: LatencySummary;
  roundTripUs: LatencySummary | null;
  /** Back-end process CPU time per kick (all threads), µs. */
  backendCpuUsPerKick: number;
}

let allCpus: string | null = null;
function pinSelf(cpu: number | null): void {
  allCpus ??= execFileSync('taskset', ['-c', '-p', String(process.pid)]).toString().trim().split(': ').pop()!;
  execFileSync('taskset', ['-a', '-c', '-p', cpu === null ? allCpus : String(cpu), String(process.pid)], { stdio: 'ignore' });
}

const WORKER_SRC = `
const { workerData, parentPort } = require('worker_threads');
const fs = require('fs');
const { fd, ctl, post } = workerData;
const flag = new Int32Array(ctl);
const b = Buffer.alloc(8);
for (;;) {
  fs.readSync(fd, b, 0, 8, null); // blocks this thread only
  if (Atomics.load(flag, 0) === 1) break;
  if (post) parentPort.postMessage(0);
  else { Atomics.add(flag, 1, 1); Atomics.notify(flag, 1); }
}
`;

/** Watches `kickFd` along `p`; calls onKick in the main thread for each kick. Returns a stopper. */
function watch(p: Path, kickFd: number, onKick: () => void): () => Promise<void> {
  if (p === 'pipe_wrap') {
    const w = new EventFdWatcher(kickFd, onKick);
    return async () => w.close();
  }
  const ctl = new SharedArrayBuffer(8);
  const flag = new Int32Array(ctl);
  const worker = new Worker(WORKER_SRC, { eval: true, workerData: { fd: kickFd, ctl, post: p === 'worker-post' } });
  const exited = new Promise<void>((r) => worker.once('exit', () => r()));
  let stopped = false;
  if (p === 'worker-post') {
    worker.on('message', onKick);
  } else {
    let seen = 0;
    const wait = (): void => {
      if (stopped) return;
      const r = (Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number): { async: boolean; value: Promise<string> | string } }).waitAsync(flag, 1, seen);
      if (r.async) (r.value as Promise<string>).then(woke);
      else woke();
    };
    const woke = (): void => {
      if (stopped) return;
      const now = Atomics.load(flag, 1);
      for (; seen !== now; seen++) onKick();
      wait();
    };
    wait();
  }
  return async () => {
    stopped = true;
    Atomics.store(flag, 0, 1);
    signalEventFd(kickFd); // wakes the blocked read
    Atomics.notify(flag, 1);
    await exited;
    fs.closeSync(kickFd);
  };
}

async function runForked(p: Path, placement: Placement, rounds: number, warmup: number, gapUs: number): Promise<Result> {
  // pipe_wrap needs a non-blocking fd (libuv sets O_NONBLOCK anyway); the worker reads block.
  const kick = p === 'pipe_wrap' ? createEventFd() : eventfd(0, EFD_CLOEXEC);
  const ack = eventfd(0, EFD_CLOEXEC); // blocking: the child sleeps in read(2)
  const seenAt = new Float64Array(warmup + rounds);
  let seen = 0;
  const stop = watch(p, kick, () => {
    if (seen < seenAt.length) seenAt[seen] = monoNs();
    seen++;
    signalEventFd(ack);
  });
  pinSelf(placement === 'sched' ? null : 0);
  const script = path.join(__dirname, 'kick-client.js');
  const args = [String(rounds), String(warmup), String(gapUs)];
  const stdio: ('ignore' | 'inherit' | 'ipc' | number)[] = ['ignore', 'inherit', 'inherit', 'ipc', kick, ack];
  const child: ChildProcess =
    placement === 'sched'
      ? fork(script, args, { stdio })
      : fork(script, args, { stdio, execPath: 'taskset', execArgv: ['-c', placement === 'split' ? '1' : '0', process.execPath] });
  const cpu0 = process.cpuUsage();
  const msg = await new Promise<{ kickAt: number[]; roundTrip: number[] }>((resolve, reject) => {
    child.once('message', (m) => resolve(m as { kickAt: number[]; roundTrip: number[] }));
    child.once('exit', (code) => reject(new Error(`kick client exited (${code}) before reporting`)));
  });
  const cpu = process.cpuUsage(cpu0);
  await new Promise<void>((r) => (child.exitCode !== null ? r() : child.once('exit', () => r())));
  await stop();
  fs.closeSync(ack);
  pinSelf(null);
  if (seen !== warmup + rounds) throw new Error(`${p}: ${seen} kicks seen, ${warmup + rounds} sent`);
  const oneWay = new Float64Array(rounds);
  for (let i = 0; i < rounds; i++) oneWay[i] = (seenAt[warmup + i] - msg.kickAt[i]) / 1000;
  const rt = Float64Array.from(msg.roundTrip, (x) => x / 1000);
  return {
    path: p,
    placement,
    oneWayUs: summarize(oneWay, rounds),
    roundTripUs: summarize(rt, rounds),
    backendCpuUsPerKick: (cpu.user + cpu.system) / (warmup + rounds),
  };
}

/** Kick and watch in this main thread: the write, epoll, and the callback, without a second thread. */
async function runSameThread(rounds: number, warmup: number): Promise<Result> {
  const kick = createEventFd();
  const lat = new Float64Array(rounds);
  let i = 0;
  let t0 = 0;
  const cpu0 = process.cpuUsage();
  await new Promise<void>((resolve) => {
    const w = new EventFdWatcher(kick, () => {
      const t1 = monoNs();
      if (i >= warmup) lat[i - warmup] = (t1 - t0) / 1000;
      i++;
      if (i === warmup + rounds) {
        w.close();
        resolve();
      } else {
        setImmediate(fire);
      }
    });
    const fire = (): void => {
      t0 = monoNs();
      signalEventFd(kick);
    };
    fire();
  });
  const cpu = process.cpuUsage(cpu0);
  return { path: 'same-thread', placement: '-', oneWayUs: summarize(lat, rounds), roundTripUs: null, backendCpuUsPerKick: (cpu.user + cpu.system) / (warmup + rounds) };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const rounds = numArg(args, 'rounds', 15000);
  const warmup = numArg(args, 'warmup', 500);
  const gapUs = numArg(args, 'gap-us', 0);
  const paths = (args.get('paths') ?? 'pipe_wrap,worker-post,worker-waitAsync').split(',') as Path[];
  const placements = (args.get('placements') ?? 'sched,split,same').split(',') as Placement[];
  const watchdog = setTimeout(() => {
    console.error('kick-latency: still running after 90 s, giving up');
    process.exit(2);
  }, 90_000);
  watchdog.unref();

  const results: Result[] = [];
  results.push(await runSameThread(rounds, warmup));
  for (const placement of placements) {
    for (const p of paths) {
      const r = await runForked(p, placement, rounds, warmup, gapUs);
      results.push(r);
      console.error(`  ${p}/${placement}: one-way p50 ${r.oneWayUs.p50.toFixed(1)} µs`);
    }
  }
  console.log(`\nkick latency: eventfd write in a child process -> back-end JavaScript callback (${rounds} kicks each, ${gapUs} µs gap)`);
  console.log('  placement: sched = scheduler\'s choice; split = back-end CPU 0, kicker CPU 1; same = both on CPU 0');
  console.log('  rt = kick, callback, ack eventfd, kicker wakes from read(2); cpu/kick = back-end process CPU (all threads)');
  console.log(
    table(
      ['path', 'placement', 'p50 µs', 'p90 µs', 'p99 µs', 'p99.9 µs', 'rt p50 µs', 'rt p99 µs', 'be cpu/kick µs'],
      results.map((r) => [
        r.path,
        r.placement,
        r.oneWayUs.p50,
        r.oneWayUs.p90,
        r.oneWayUs.p99,
        r.oneWayUs.p999,
        r.roundTripUs?.p50 ?? NaN,
        r.roundTripUs?.p99 ?? NaN,
        r.backendCpuUsPerKick,
      ]),
    ),
  );
  emitJson(args, { bench: 'kick-latency', machine: machine(), rounds, warmup, gapUs, results });
  clearTimeout(watchdog);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
