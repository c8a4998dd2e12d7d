// The cost of the actor path per request: GETATTR through the whole daemon (request actors, FUSE
// codec, an in-memory filesystem that answers at once) against the bare transport (the echo device
// on the same requests), at queue depth 1 and 64. The guest side runs in a child process.
//   node packages/core/dist/bench/actor-bench.js [--seconds 2] [--json FILE]
import { fork } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Logger, VhostUserDevice, serve } from '@vfsd/vhost';
import { EchoDevice } from '@vfsd/vhost/testing';
import { Inspection, VirtioFsDevice } from '../src';
import { MemoryFs } from '../test/memory-fs';
import type { LoadResult, LoadSpec } from '../src/testing/getattr-load';

const quiet: Logger = { error: (m) => console.error(m), warn: () => undefined, info: () => undefined, debug: () => undefined };

async function measure(createDevice: () => VhostUserDevice, depth: number, fuse: boolean, seconds: number): Promise<LoadResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vfsd-bench-'));
  const socketPath = path.join(dir, 's.sock');
  const server = serve({ socketPath, logger: quiet, createDevice });
  const child = fork(path.join(__dirname, '..', 'src', 'testing', 'getattr-load.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const result = new Promise<LoadResult>((resolve, reject) => {
    child.once('message', (r) => resolve(r as LoadResult));
    child.once('exit', (code) => code !== 0 && reject(new Error(`front-end exited ${code}`)));
  });
  const spec: LoadSpec = { socketPath, depth, warmupMs: 300, durationMs: seconds * 1000, fuse };
  child.send(spec);
  const r = await result;
  await server.done;
  fs.rmSync(dir, { recursive: true, force: true });
  return r;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const seconds = Number(args[args.indexOf('--seconds') + 1] || 2) || 2;
  const jsonAt = args.indexOf('--json');
  const rows: Record<string, unknown>[] = [];
  const inspectRun = args.includes('--inspect');
  for (const depth of [1, 64]) {
    const echo = await measure(() => new EchoDevice({ numQueues: 2, logger: quiet }), depth, false, seconds);
    const inspection = new Inspection();
    if (inspectRun) inspection.subscribe(() => undefined);
    const actors = await measure(() => new VirtioFsDevice({ fs: new MemoryFs(), requestQueues: 1, logger: quiet, inspection }), depth, true, seconds);
    // Per-request cost from throughput: at depth 64 the daemon's thread is the bottleneck.
    const addedUs = 1e6 / actors.opsPerSec - 1e6 / echo.opsPerSec;
    rows.push({ depth, echoOps: Math.round(echo.opsPerSec), actorOps: Math.round(actors.opsPerSec), echoP50: echo.p50, actorP50: actors.p50, echoP99: echo.p99, actorP99: actors.p99, addedUsPerRequest: addedUs });
  }
  console.log(`actor path vs bare transport, GETATTR, ${seconds} s per case${inspectRun ? ', inspector attached' : ''}`);
  console.log('depth  transport ops/s  actors ops/s  transport p50/p99 µs  actors p50/p99 µs  added µs/request');
  for (const r of rows) {
    const f = (n: unknown): string => (typeof n === 'number' ? (n >= 100 ? n.toFixed(0) : n.toFixed(1)) : String(n));
    console.log(`${String(r.depth).padStart(5)}  ${f(r.echoOps).padStart(15)}  ${f(r.actorOps).padStart(12)}  ${`${f(r.echoP50)}/${f(r.echoP99)}`.padStart(20)}  ${`${f(r.actorP50)}/${f(r.actorP99)}`.padStart(17)}  ${f(r.addedUsPerRequest).padStart(16)}`);
  }
  if (jsonAt >= 0) fs.writeFileSync(args[jsonAt + 1], JSON.stringify(rows, null, 2));
}

main().catch((e: Error) => {
  console.error(e.stack);
  process.exit(1);
});
