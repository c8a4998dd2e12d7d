// GETATTR (or READ of a 64 MiB file with --read SIZE) through the whole daemon (actors, passthrough,
// real syscalls) with pool sizes 0 (inline), 1, 4 and 16, at queue depth 1 and 64, then the C virtiofsd
// against the same front-end in the same run. The guest side runs in a child process.
//   node packages/cli/dist/bench/daemon-bench.js [--seconds 2] [--pools 0,1,4,16] [--depths 1,64]
//     [--read BYTES | --write BYTES] [--inline-below N] [--worker-depth N] [--spin-us N]   (pool options: the pool's defaults)
import { fork, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Logger, serve } from '@vfsd/vhost';
import { VirtioFsDevice } from '@vfsd/core';
import { type LoadResult, type LoadSpec } from '@vfsd/core/testing';
import { PassthroughFs } from '@vfsd/passthrough';

const quiet: Logger = { error: (m) => console.error(m), warn: () => undefined, info: () => undefined, debug: () => undefined };
const LOAD = require.resolve('@vfsd/core/dist/src/testing/getattr-load.js');

interface PoolTuning {
  inlineBelow?: number;
  workerDepth?: number;
  workerSpinUs?: number;
}

const READ_FILE = 'read-bench.bin';
const READ_FILE_SIZE = 64 << 20;
let readSpec: LoadSpec['read'];
let writeSpec: LoadSpec['write'];

async function measure(threadPoolSize: number, depth: number, seconds: number, share: string, pool: PoolTuning = {}): Promise<LoadResult & { cpuUsPerOp: number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vfsd-bench-'));
  const socketPath = path.join(dir, 's.sock');
  const server = serve({
    socketPath,
    logger: quiet,
    createDevice: () => new VirtioFsDevice({ fs: new PassthroughFs({ sharedDir: share, threadPoolSize, pool }), requestQueues: 1, logger: quiet }),
  });
  const child = fork(LOAD, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
  const cpu0 = process.cpuUsage();
  const result = new Promise<LoadResult>((resolve, reject) => {
    child.once('message', (r) => resolve(r as LoadResult));
    child.once('exit', (code) => code !== 0 && reject(new Error(`front-end exited ${code}`)));
  });
  const spec: LoadSpec = { socketPath, depth, warmupMs: 300, durationMs: seconds * 1000, fuse: true, read: readSpec, write: writeSpec };
  child.send(spec);
  const r = await result;
  const cpu = process.cpuUsage(cpu0);
  await server.done;
  fs.rmSync(dir, { recursive: true, force: true });
  // CPU of the daemon's main thread and its workers, per completed request (warm-up included in both).
  return { ...r, cpuUsPerOp: (cpu.user + cpu.system) / (r.completed * (1 + 300 / (seconds * 1000))) };
}

const PEER = '/usr/lib/qemu/virtiofsd';

/** The same load against the C virtiofsd that Debian ships (one daemon per run: it exits after its front-end). */
async function measurePeer(depth: number, seconds: number, share: string): Promise<LoadResult | null> {
  if (!fs.existsSync(PEER)) return null;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vfsd-peer-'));
  const socketPath = path.join(dir, 's.sock');
  const peer = spawn(PEER, [`--socket-path=${socketPath}`, '-o', `source=${share}`, '-o', 'cache=none'], { stdio: 'ignore' });
  for (let i = 0; i < 200 && !fs.existsSync(socketPath); i++) await new Promise((r) => setTimeout(r, 10));
  const child = fork(LOAD, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
  const r = await new Promise<LoadResult>((resolve, reject) => {
    child.once('message', (m) => resolve(m as LoadResult));
    child.once('exit', (code) => code !== 0 && reject(new Error(`front-end exited ${code}`)));
    child.send({ socketPath, depth, warmupMs: 300, durationMs: seconds * 1000, fuse: true, read: readSpec, write: writeSpec } satisfies LoadSpec);
  });
  peer.kill('SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
  return r;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const arg = (name: string): string | undefined => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
  const num = (name: string): number | undefined => (arg(name) === undefined ? undefined : Number(arg(name)));
  const list = (name: string, dflt: number[]): number[] => arg(name)?.split(',').map(Number) ?? dflt;
  const seconds = num('--seconds') || 2;
  const tuning: PoolTuning = { inlineBelow: num('--inline-below'), workerDepth: num('--worker-depth'), workerSpinUs: num('--spin-us') };
  const share = fs.mkdtempSync(path.join(os.tmpdir(), 'vfsd-share-'));
  const readSize = num('--read');
  if (readSize) {
    fs.writeFileSync(path.join(share, READ_FILE), Buffer.alloc(READ_FILE_SIZE, 0x5a));
    readSpec = { file: READ_FILE, readSize, fileSize: READ_FILE_SIZE };
  }
  const writeSize = num('--write');
  if (writeSize) {
    // The load's requests come from uid 1000.
    fs.writeFileSync(path.join(share, READ_FILE), Buffer.alloc(READ_FILE_SIZE, 0x5a));
    fs.chmodSync(path.join(share, READ_FILE), 0o666);
    writeSpec = { file: READ_FILE, writeSize, fileSize: READ_FILE_SIZE };
  }
  const what = readSize
    ? `READ of ${readSize} bytes (a 64 MiB file, in the page cache)`
    : writeSize
      ? `WRITE of ${writeSize} bytes (into a 64 MiB file, page cache)`
      : 'GETATTR of the shared root';
  console.log(`vfsd ${what} through the passthrough, ${seconds} s per case, pool options ${JSON.stringify(tuning)}`);
  console.log('pool  depth     ops/s   p50 µs   p99 µs  daemon CPU µs/op');
  for (const pool of list('--pools', [0, 1, 4, 16])) {
    for (const depth of list('--depths', [1, 64])) {
      const r = await measure(pool, depth, seconds, share, tuning);
      console.log(`${String(pool).padStart(4)}  ${String(depth).padStart(5)}  ${Math.round(r.opsPerSec).toString().padStart(8)}  ${r.p50.toFixed(1).padStart(7)}  ${r.p99.toFixed(1).padStart(7)}  ${r.cpuUsPerOp.toFixed(1).padStart(16)}`);
    }
  }
  for (const depth of [1, 64]) {
    const peer = await measurePeer(depth, seconds, share);
    if (!peer) break;
    const ours = await measure(0, depth, seconds, share);
    console.log(`C virtiofsd (${PEER}, cache=none, pool 0) depth ${depth}: ${Math.round(peer.opsPerSec)} ops/s, p50 ${peer.p50.toFixed(1)} µs; vfsd pool 0 in the same run: ${Math.round(ours.opsPerSec)} ops/s (ratio ${(ours.opsPerSec / peer.opsPerSec).toFixed(2)})`);
  }
  fs.rmSync(share, { recursive: true, force: true });
}

main().catch((e: Error) => {
  console.error(e.stack);
  process.exit(1);
});
