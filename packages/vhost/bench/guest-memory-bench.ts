// Guest memory access options on a memfd, in ns per operation:
//   (a) mmap through koffi + koffi.view (src/sys/libc.ts mmap): a 16-byte descriptor read
//       through a DataView, copies of 4 KiB and 1 MiB in and out of the mapping;
//   (b) fs.readSync / fs.writeSync with a position (pread/pwrite) on the memfd;
//   (c) memcpy called through koffi (declared once).
// Each operation runs for a fixed time in several rounds; the table shows the median round and the
// spread (min-max) of the rounds.
//
//   npx tsc -b packages/vhost && node packages/vhost/dist/bench/guest-memory-bench.js [--round-ms MS] [--rounds N] [--json FILE]
import * as fs from 'fs';
import koffi from 'koffi';
import { MAP_SHARED, MFD_CLOEXEC, PROT_READ, PROT_WRITE, memfdCreate, mmap, munmap } from '../src/sys/libc';
import { type Op, type OpResult, emitJson, machine, measure, numArg, parseArgs, table } from './bench-util';

const KiB = 1024;
const MiB = 1024 * KiB;
const SIZE = 8 * MiB;

function main(): void {
  const args = parseArgs(process.argv.slice(2));
  const roundMs = numArg(args, 'round-ms', 120);
  const rounds = numArg(args, 'rounds', 5);

  const fd = memfdCreate('vfsd-bench-guest', MFD_CLOEXEC);
  fs.ftruncateSync(fd, SIZE);
  const map = mmap(SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  const guest = map.buffer;
  // Pre-fault every page so no op pays for first-touch faults.
  guest.fill(0x5a);

  // A descriptor table of 256 entries at offset 0, as a ring's would be.
  const descTable = new DataView(guest.buffer, guest.byteOffset, 256 * 16);
  for (let i = 0; i < 256; i++) {
    descTable.setUint32(i * 16, 0x10000 + i * 64, true);
    descTable.setUint32(i * 16 + 4, 0, true);
    descTable.setUint32(i * 16 + 8, 64, true);
    descTable.setUint16(i * 16 + 12, 1, true);
    descTable.setUint16(i * 16 + 14, (i + 1) & 255, true);
  }

  const src4k = Buffer.alloc(4 * KiB, 1);
  const dst4k = Buffer.alloc(4 * KiB);
  const src1m = Buffer.alloc(MiB, 2);
  const dst1m = Buffer.alloc(MiB);
  const dst16 = Buffer.alloc(16);
  // Guest buffers: 4 KiB at 1 MiB, 1 MiB at 4 MiB (page aligned, as guest pages are).
  const G4K = 1 * MiB;
  const G1M = 4 * MiB;
  const gView4k = guest.subarray(G4K, G4K + 4 * KiB);
  const gView1m = guest.subarray(G1M, G1M + MiB);

  let sink = 0;
  const ops: { op: Op; bytes: number | null }[] = [];
  const add = (group: string, name: string, bytes: number | null, run: (n: number) => number): void => {
    ops.push({ op: { group, name, run }, bytes });
  };

  // (a) mmap + external Buffer
  add('mmap', 'descriptor read (DataView, 5 fields)', null, (n) => {
    let s = 0;
    for (let k = 0; k < n; k++) {
      const off = (k & 255) * 16;
      s += descTable.getUint32(off, true) + descTable.getUint32(off + 4, true) + descTable.getUint32(off + 8, true);
      s += descTable.getUint16(off + 12, true) + descTable.getUint16(off + 14, true);
    }
    return s;
  });
  add('mmap', 'copy 4 KiB in (view.set)', 4 * KiB, (n) => {
    for (let k = 0; k < n; k++) gView4k.set(src4k);
    return gView4k[0];
  });
  add('mmap', 'copy 4 KiB out (set from view)', 4 * KiB, (n) => {
    for (let k = 0; k < n; k++) dst4k.set(gView4k);
    return dst4k[0];
  });
  add('mmap', 'copy 4 KiB out, new subarray each time', 4 * KiB, (n) => {
    for (let k = 0; k < n; k++) dst4k.set(guest.subarray(G4K, G4K + 4 * KiB));
    return dst4k[0];
  });
  add('mmap', 'copy 4 KiB out (Buffer.copy)', 4 * KiB, (n) => {
    for (let k = 0; k < n; k++) guest.copy(dst4k, 0, G4K, G4K + 4 * KiB);
    return dst4k[0];
  });
  add('mmap', 'copy 1 MiB in (view.set)', MiB, (n) => {
    for (let k = 0; k < n; k++) gView1m.set(src1m);
    return gView1m[0];
  });
  add('mmap', 'copy 1 MiB out (set from view)', MiB, (n) => {
    for (let k = 0; k < n; k++) dst1m.set(gView1m);
    return dst1m[0];
  });

  // (b) pread/pwrite on the memfd
  add('pread/pwrite', 'pread 16 B (descriptor)', 16, (n) => {
    let s = 0;
    for (let k = 0; k < n; k++) s += fs.readSync(fd, dst16, 0, 16, (k & 255) * 16);
    return s;
  });
  add('pread/pwrite', 'pwrite 4 KiB', 4 * KiB, (n) => {
    let s = 0;
    for (let k = 0; k < n; k++) s += fs.writeSync(fd, src4k, 0, 4 * KiB, G4K);
    return s;
  });
  add('pread/pwrite', 'pread 4 KiB', 4 * KiB, (n) => {
    let s = 0;
    for (let k = 0; k < n; k++) s += fs.readSync(fd, dst4k, 0, 4 * KiB, G4K);
    return s;
  });
  add('pread/pwrite', 'pwrite 1 MiB', MiB, (n) => {
    let s = 0;
    for (let k = 0; k < n; k++) s += fs.writeSync(fd, src1m, 0, MiB, G1M);
    return s;
  });
  add('pread/pwrite', 'pread 1 MiB', MiB, (n) => {
    let s = 0;
    for (let k = 0; k < n; k++) s += fs.readSync(fd, dst1m, 0, MiB, G1M);
    return s;
  });

  // (c) memcpy through koffi. Buffers go as pointers to their bytes (in place, no copy).
  const memcpyFn = koffi.load('libc.so.6').func('void *memcpy(void *dst, const void *src, size_t n)') as (dst: Buffer, src: Buffer, n: number) => bigint;
  const memcpy = (dst: Buffer, src: Buffer, len: number): number => Number(memcpyFn(dst, src, len) & 1n);
  const gView16 = guest.subarray(0, 16);
  add('ffi memcpy', 'koffi: 16 B out', 16, (n) => {
    for (let k = 0; k < n; k++) memcpy(dst16, gView16, 16);
    return dst16[0];
  });
  add('ffi memcpy', 'koffi: 4 KiB in', 4 * KiB, (n) => {
    for (let k = 0; k < n; k++) memcpy(gView4k, src4k, 4 * KiB);
    return gView4k[0];
  });
  add('ffi memcpy', 'koffi: 4 KiB out', 4 * KiB, (n) => {
    for (let k = 0; k < n; k++) memcpy(dst4k, gView4k, 4 * KiB);
    return dst4k[0];
  });
  add('ffi memcpy', 'koffi: 1 MiB out', MiB, (n) => {
    for (let k = 0; k < n; k++) memcpy(dst1m, gView1m, MiB);
    return dst1m[0];
  });

  // Sanity: each path really moves the bytes (koffi must pass Buffers in place for memcpy to work).
  const checks: string[] = [];
  const pattern = Buffer.alloc(4 * KiB);
  for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 7 + 3) & 255;
  gView4k.fill(0);
  memcpy(gView4k, pattern, pattern.length);
  if (!gView4k.equals(pattern)) checks.push('ffi memcpy into the mapping did not land (Buffer argument copied?)');
  dst4k.fill(0);
  fs.readSync(fd, dst4k, 0, 4 * KiB, G4K);
  if (!dst4k.equals(pattern)) checks.push('pread did not see the mapping\'s bytes');
  dst4k.fill(0);
  memcpy(dst4k, gView4k, 4 * KiB);
  if (!dst4k.equals(pattern)) checks.push('ffi memcpy out of the mapping did not land');

  const results: OpResult[] = [];
  for (const { op, bytes } of ops) {
    const r = measure(op, roundMs, rounds, bytes);
    sink += op.run(1);
    results.push(r);
  }
  munmap(map);
  fs.closeSync(fd);

  console.log(`guest memory access on an 8 MiB memfd (${rounds} rounds of ${roundMs} ms per op; median, and min-max of the rounds)`);
  console.log(
    table(
      ['option', 'operation', 'ns/op', 'min', 'max', 'GB/s'],
      results.map((r) => [r.group, r.name, r.nsPerOp, r.minNs, r.maxNs, r.gbPerSec === null ? '-' : r.gbPerSec.toFixed(2)]),
    ),
  );
  if (checks.length) console.log(`CHECKS FAILED:\n  ${checks.join('\n  ')}`);
  else console.log('checks: memcpy through koffi and pread see the same bytes as the mapping (Buffers passed in place)');
  emitJson(args, { bench: 'guest-memory', machine: machine(), roundMs, rounds, results, checksFailed: checks, sink: sink & 1 });
}

main();
