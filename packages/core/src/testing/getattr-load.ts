// The guest side of the actor and daemon benchmarks, run as a child process so the daemon's event loop
// has its thread to itself: connects, negotiates, sends FUSE_INIT, then keeps `depth` GETATTRs (or
// READs of one file, the data in its own descriptor as the Linux driver sends it) in flight for a fixed
// time and reports completions per second and latency percentiles (µs).
import { performance } from 'perf_hooks';
import { SimulatedFrontend } from '@vfsd/vhost/testing';
import { FuseClient } from './fuse-client';
import { fuse_open_in, fuse_open_out, fuse_read_in, fuse_write_in } from '../fuse/structs';
import { FuseOpcode } from '../fuse/opcodes';

export interface LoadSpec {
  socketPath: string;
  depth: number;
  warmupMs: number;
  durationMs: number;
  /** Send FUSE_INIT first (not for the echo device). */
  fuse: boolean;
  /** READ `readSize` bytes of `file` (in the shared root) at successive offsets instead of GETATTR. */
  read?: { file: string; readSize: number; fileSize: number };
  /** Or WRITE `writeSize` bytes (in descriptors of their own, after the header's) the same way. */
  write?: { file: string; writeSize: number; fileSize: number };
}

export interface LoadResult {
  opsPerSec: number;
  p50: number;
  p99: number;
  completed: number;
}

export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  // Guest RAM for every request in flight (a READ's data included), rounded up to 2 MiB.
  const ioSize = spec.read?.readSize ?? spec.write?.writeSize ?? 0;
  const ram = ioSize ? Math.ceil((spec.depth * (ioSize + 8192) + (32 << 20)) / (2 << 20)) * (2 << 20) : 64 << 20;
  const fe = await SimulatedFrontend.connect(spec.socketPath, Math.max(ram, 64 << 20));
  await fe.negotiate({ numQueues: 2, queueSize: 1024 });
  const c = new FuseClient(fe, 1);
  if (spec.fuse) await c.init();
  let next: () => [Buffer[], number[]];
  const open = async (file: string, flags: number): Promise<[bigint, bigint]> => {
    const found = await c.lookup(1n, file);
    if (found.error !== 0) throw new Error(`lookup ${file}: ${found.error}`);
    const nodeid = found.body.readBigUInt64LE(0);
    const opened = await c.request(FuseOpcode.FUSE_OPEN, nodeid, [c.struct(fuse_open_in, { flags, open_flags: 0 })], 16 + fuse_open_out.size);
    if (opened.error !== 0) throw new Error(`open ${file}: ${opened.error}`);
    return [nodeid, opened.body.readBigUInt64LE(0)];
  };
  let offset = 0;
  if (spec.read) {
    const { file, readSize, fileSize } = spec.read;
    const [nodeid, fh] = await open(file, 0);
    next = () => {
      const req = c.encode(FuseOpcode.FUSE_READ, nodeid, [c.struct(fuse_read_in, { fh, offset: BigInt(offset), size: readSize, read_flags: 0, lock_owner: 0n, flags: 0 })]);
      offset = (offset + readSize) % (fileSize - readSize + 1);
      return [[req], [16, readSize]];
    };
  } else if (spec.write) {
    const { file, writeSize, fileSize } = spec.write;
    const [nodeid, fh] = await open(file, 2 /* O_RDWR */);
    const data = Buffer.alloc(writeSize, 0x77);
    next = () => {
      const head = c.encode(FuseOpcode.FUSE_WRITE, nodeid, [c.struct(fuse_write_in, { fh, offset: BigInt(offset), size: writeSize, write_flags: 0, lock_owner: 0n, flags: 0 })]);
      head.writeUInt32LE(head.length + writeSize, 0);
      offset = (offset + writeSize) % (fileSize - writeSize + 1);
      return [[head.subarray(0, 40), head.subarray(40), data], [16 + 8]];
    };
  } else {
    const req = c.encode(3 /* FUSE_GETATTR */, 1n, [Buffer.alloc(16)]);
    next = () => [[req], [16 + 104]];
  }
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
        const [req, out] = next();
        const r = await fe.submit(1, req, out);
        if (spec.read && r.len !== 16 + spec.read.readSize) throw new Error(`READ answered ${r.len} bytes`);
        if (spec.write && (r.len !== 24 || r.data.readUInt32LE(16) !== spec.write.writeSize)) throw new Error(`WRITE answered ${r.len} bytes`);
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
