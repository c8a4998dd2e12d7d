// getattr throughput through PassthroughFs with the pool inline (0) or 1/4/16 workers, at 1 and 64
// requests in flight. Run: node packages/passthrough/dist/bench/pool-bench.js [ms-per-case]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FuseOpcode, type GetattrRequest, type RequestContext } from '@vfsd/core';
import { PassthroughFs } from '../src';

const SIZES = [0, 1, 4, 16];
const DEPTHS = [1, 64];
const MS = Number(process.argv[2] ?? 1500);

function getattrReq(nodeid: bigint): GetattrRequest {
  return {
    opcode: FuseOpcode.FUSE_GETATTR,
    noReply: false,
    header: { len: 0, opcode: FuseOpcode.FUSE_GETATTR, unique: 1n, nodeid, uid: 0, gid: 0, pid: 0, total_extlen: 0 },
    ext: undefined,
    arg: { getattr_flags: 0, fh: 0n },
  };
}

async function runCase(dir: string, size: number, depth: number): Promise<{ opsPerSec: number; p50us: number }> {
  const pfs = new PassthroughFs({ sharedDir: dir, threadPoolSize: size, pool: { warmWaiters: 0 } });
  await pfs.pool.ready();
  const ctx: RequestContext = { unique: 1n, uid: 0, gid: 0, pid: 0, signal: new AbortController().signal };
  const node = (
    await pfs.lookup(ctx, { opcode: FuseOpcode.FUSE_LOOKUP, noReply: false, header: getattrReq(1n).header, ext: undefined, name: Buffer.from('f') })
  ).nodeid;
  const req = getattrReq(node);
  // Warm up the JIT and the threads.
  for (let i = 0; i < 2000; i++) await pfs.getattr(ctx, req);
  let ops = 0;
  const samples: number[] = [];
  const end = performance.now() + MS;
  const loop = async (): Promise<void> => {
    // One context per loop, as each request has its own (its AbortSignal gets one listener at a time).
    const ctx: RequestContext = { unique: 1n, uid: 0, gid: 0, pid: 0, signal: new AbortController().signal };
    while (performance.now() < end) {
      const t = performance.now();
      await pfs.getattr(ctx, req);
      if ((ops & 63) === 0) samples.push(performance.now() - t);
      ops++;
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: depth }, loop));
  const elapsed = performance.now() - t0;
  await pfs.shutdown();
  samples.sort((a, b) => a - b);
  return { opsPerSec: Math.round((ops * 1000) / elapsed), p50us: Math.round(samples[samples.length >> 1] * 1000) };
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vfsd-bench-'));
  fs.writeFileSync(path.join(dir, 'f'), 'x');
  console.log(`getattr through PassthroughFs, ${MS} ms per case, ${os.cpus().length} CPUs, Node ${process.version}`);
  console.log('pool size  in flight  ops/s     p50 latency (µs)');
  try {
    for (const size of SIZES) {
      for (const depth of DEPTHS) {
        const r = await runCase(dir, size, depth);
        const label = size === 0 ? '0 (inline)' : String(size);
        console.log(`${label.padEnd(11)}${String(depth).padEnd(11)}${String(r.opsPerSec).padEnd(10)}${r.p50us}`);
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

void main();
