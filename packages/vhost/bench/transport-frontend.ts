// The front-end side of the transport benchmark: connects a SimulatedFrontend to the socket and runs
// closed-loop workloads (a fixed number of requests always in flight). It runs either in-process
// (runCase is imported by transport-bench.ts), in a worker thread, or as a forked child process, so
// that the back-end's event loop can have its thread to itself.
import { performance } from 'perf_hooks';
import { isMainThread, parentPort, workerData } from 'worker_threads';
import { SimulatedFrontend } from '../src/frontend/simulated-frontend';
import { LatencySummary, summarize } from './bench-util';

export interface CaseSpec {
  name: string;
  /** Sizes of the readable buffers of each request. */
  readable: number[];
  /** Sizes of the writable buffers of each request. */
  writable: number[];
  /** Requests kept in flight. */
  depth: number;
  queue: number;
  warmupMs: number;
  durationMs: number;
}

export interface CaseResult {
  /** Completions inside the measured window, per second. */
  rtPerSec: number;
  /** Latency of each request from submit() to its promise resolving, in µs. */
  latencyUs: LatencySummary;
  /** Completions over the whole case, warm-up included (to divide CPU time by). */
  totalCompleted: number;
  /** CPU time of the front-end's process (user+system, all threads) over the whole case, µs. */
  frontendCpuUs: number;
  wallMs: number;
  errors: number;
}

export const NEGOTIATE = { numQueues: 2, queueSize: 1024, eventIdx: true, indirect: true };

const MAX_SAMPLES = 4_000_000;
let samples: Float64Array | null = null;

export function runCase(fe: SimulatedFrontend, spec: CaseSpec): Promise<CaseResult> {
  samples ??= new Float64Array(MAX_SAMPLES);
  const lat = samples;
  const readable = spec.readable.map((n, i) => Buffer.alloc(n, 0x41 + i));
  const expectLen = Math.min(
    spec.readable.reduce((a, b) => a + b, 0),
    spec.writable.reduce((a, b) => a + b, 0),
  );
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const measureFrom = t0 + spec.warmupMs;
  const stopAt = measureFrom + spec.durationMs;
  let measuredEnd = 0;
  let n = 0;
  let inWindow = 0;
  let total = 0;
  let errors = 0;
  let active = 0;
  let stopping = false;

  return new Promise((resolve, reject) => {
    const finish = (): void => {
      const cpu = process.cpuUsage(cpu0);
      const wall = performance.now() - t0;
      const windowMs = (measuredEnd || stopAt) - measureFrom;
      resolve({
        rtPerSec: inWindow / (windowMs / 1000),
        latencyUs: summarize(lat, n),
        totalCompleted: total,
        frontendCpuUs: cpu.user + cpu.system,
        wallMs: wall,
        errors,
      });
    };
    const issue = (): void => {
      active++;
      const start = performance.now();
      fe.submit(spec.queue, readable, spec.writable).then(
        (r) => {
          const end = performance.now();
          active--;
          total++;
          if (r.len !== expectLen) errors++;
          if (start >= measureFrom && end <= stopAt) {
            if (n < MAX_SAMPLES) lat[n++] = (end - start) * 1000;
            inWindow++;
          }
          if (end >= stopAt) {
            if (!stopping) {
              stopping = true;
              measuredEnd = stopAt;
            }
          }
          if (!stopping) issue();
          else if (active === 0) finish();
        },
        (err) => {
          reject(err);
        },
      );
    };
    for (let i = 0; i < spec.depth; i++) issue();
  });
}

/** Commands from the back-end side, and answers. */
export type FrontendCommand = { type: 'run'; spec: CaseSpec } | { type: 'exit' };
export type FrontendEvent =
  | { type: 'ready' }
  | { type: 'result'; name: string; result: CaseResult }
  | { type: 'error'; message: string };

interface Channel {
  send(e: FrontendEvent): void;
  onCommand(f: (c: FrontendCommand) => void): void;
  close(): void;
}

async function childMain(socketPath: string, ch: Channel): Promise<void> {
  let fe: SimulatedFrontend;
  try {
    fe = await SimulatedFrontend.connect(socketPath);
    await fe.negotiate(NEGOTIATE);
  } catch (e) {
    ch.send({ type: 'error', message: (e as Error).stack ?? String(e) });
    ch.close();
    return;
  }
  let busy: Promise<void> = Promise.resolve();
  ch.onCommand((c) => {
    busy = busy.then(async () => {
      if (c.type === 'exit') {
        fe.close();
        ch.close();
        return;
      }
      try {
        const result = await runCase(fe, c.spec);
        ch.send({ type: 'result', name: c.spec.name, result });
      } catch (e) {
        ch.send({ type: 'error', message: (e as Error).stack ?? String(e) });
      }
    });
  });
  ch.send({ type: 'ready' });
}

if (require.main === module && process.send) {
  // Forked child process: argv[2] is the socket path.
  const send = process.send.bind(process);
  void childMain(process.argv[2], {
    send: (e) => void send(e),
    onCommand: (f) => process.on('message', (m) => f(m as FrontendCommand)),
    close: () => process.disconnect(),
  });
} else if (!isMainThread && parentPort && (workerData as { role?: string } | null)?.role === 'transport-frontend') {
  const port = parentPort;
  void childMain((workerData as { socketPath: string }).socketPath, {
    send: (e) => port.postMessage(e),
    onCommand: (f) => port.on('message', f),
    close: () => port.close(),
  });
}
