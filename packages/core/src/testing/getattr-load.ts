// The guest side of the actor benchmark, run as a child process so the daemon's event loop has its
// thread to itself: connects, negotiates, sends FUSE_INIT, then keeps `depth` GETATTRs in flight for
// a fixed time and reports completions per second and latency percentiles (µs).
import { performance } from 'perf_hooks';
import { SimulatedFrontend } from '@vfsd/vhost';
import { FuseClient } from './fuse-client';

export interface LoadSpec {
  socketPath: string;
  depth: number;
  warmupMs: number;
  durationMs: number;
  /** Send FUSE_INIT first (not for the echo device). */
  fuse: boolean;
}

export interface LoadResult {
  opsPerSec: number;
  p50: number;
  p99: number;
  completed: number;
}

export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const fe = await SimulatedFrontend.connect(spec.socketPath);
  await fe.negotiate({ numQueues: 2, queueSize: 1024 });
  const c = new FuseClient(fe, 1);
  if (spec.fuse) await c.init();
  const req = c.encode(3 /* FUSE_GETATTR */, 1n, [Buffer.alloc(16)]);
  const lat: number[] = [];
  const t0 = performance.now();
  const from = t0 + spec.warmupMs;
  const until = from + spec.durationMs;
  let inWindow = 0;
  await Promise.all(
    Array.from({ length: spec.depth }, async () => {
      for (;;) {
        const s = performance.now();
        if (s >= until) return;
        await fe.submit(1, [req], [16 + 104]);
        const e = performance.now();
        if (s >= from && e <= until) {
          inWindow++;
          if (lat.length < 2_000_000) lat.push((e - s) * 1000);
        }
      }
    }),
  );
  fe.close();
  lat.sort((a, b) => a - b);
  return { opsPerSec: inWindow / (spec.durationMs / 1000), p50: lat[Math.floor(lat.length / 2)] ?? NaN, p99: lat[Math.floor(lat.length * 0.99)] ?? NaN, completed: inWindow };
}

if (require.main === module) {
  process.once('message', (spec: LoadSpec) => {
    runLoad(spec).then(
      (r) => process.send!(r, () => process.exit(0)),
      (e: Error) => {
        console.error(e.stack);
        process.exit(1);
      },
    );
  });
}
