// Per-call cost of the FFI libraries, in ns per call, in a tight loop: koffi (the project's FFI) against
// ffi-rs `load()` / `define()` (what the project used before), and Node's fs.fstatSync for reference.
// Calls: getpid (the bare call cost), fstat into a reused 144-byte Buffer, fstatat of a name in a
// directory fd into the same Buffer. This is the measurement that moved the project to koffi (see
// docs/design.md, "FFI library").
//
// ffi-rs is no longer a dependency: to compare again, `npm i --no-save ffi-rs@1.3.7` first; without it
// those rows are skipped.
//
//   npx tsc -b packages/vhost && node packages/vhost/dist/bench/ffi-bench.js [--round-ms MS] [--rounds N] [--json FILE]
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import koffi from 'koffi';
import { type Op, type OpResult, emitJson, machine, measure, numArg, parseArgs, table } from './bench-util';

/** The part of ffi-rs's API this bench uses (its typings are not installed any more). */
interface FfiRs {
  DataType: { I32: number; U8Array: number; String: number };
  open(o: { library: string; path: string }): void;
  load(o: { library: string; funcName: string; retType: number; paramsType: number[]; paramsValue: unknown[]; errno?: boolean }): unknown;
  define(o: Record<string, { library: string; retType: number; paramsType: number[] }>): Record<string, (args: unknown[]) => unknown>;
}

function loadFfiRs(): FfiRs | null {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('ffi-rs') as FfiRs;
  } catch {
    return null;
  }
}

function main(): void {
  const args = parseArgs(process.argv.slice(2));
  const roundMs = numArg(args, 'round-ms', 150);
  const rounds = numArg(args, 'rounds', 5);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vfsd-ffi-bench-'));
  fs.writeFileSync(path.join(dir, 'f'), 'x');
  const dirFd = fs.openSync(dir, 'r');
  const fileFd = fs.openSync(path.join(dir, 'f'), 'r');
  const name = Buffer.from('f\0');
  const st = Buffer.alloc(144); // struct stat, x86-64
  const ops: Op[] = [];

  const libc = koffi.load('libc.so.6');
  const kGetpid = libc.func('int getpid(void)') as () => number;
  const kFstat = libc.func('int fstat(int fd, void *st)') as (fd: number, st: Buffer) => number;
  const kFstatat = libc.func('int fstatat(int dirfd, const char *name, void *st, int flags)') as (d: number, n: Buffer, st: Buffer, f: number) => number;
  ops.push({ group: 'koffi', name: 'getpid', run: (n) => { let s = 0; for (let i = 0; i < n; i++) s += kGetpid(); return s; } });
  ops.push({ group: 'koffi', name: 'fstat into a reused Buffer', run: (n) => { let s = 0; for (let i = 0; i < n; i++) s += kFstat(fileFd, st); return s; } });
  ops.push({ group: 'koffi', name: 'fstatat into a reused Buffer', run: (n) => { let s = 0; for (let i = 0; i < n; i++) s += kFstatat(dirFd, name, st, 0x100); return s; } });
  ops.push({ group: 'koffi', name: 'getpid + koffi.errno()', run: (n) => { let s = 0; for (let i = 0; i < n; i++) s += kGetpid() + koffi.errno(); return s; } });

  const ffi = loadFfiRs();
  if (ffi) {
    const { DataType: T } = ffi;
    ffi.open({ library: 'libc', path: 'libc.so.6' });
    const lib = 'libc';
    ops.push({ group: 'ffi-rs load()', name: 'getpid', run: (n) => { let s = 0; for (let i = 0; i < n; i++) s += ffi.load({ library: lib, funcName: 'getpid', retType: T.I32, paramsType: [], paramsValue: [] }) as number; return s; } });
    ops.push({ group: 'ffi-rs load()', name: 'fstat into a reused Buffer', run: (n) => { let s = 0; for (let i = 0; i < n; i++) s += ffi.load({ library: lib, funcName: 'fstat', retType: T.I32, paramsType: [T.I32, T.U8Array], paramsValue: [fileFd, st] }) as number; return s; } });
    ops.push({ group: 'ffi-rs load()', name: 'fstatat into a reused Buffer', run: (n) => { let s = 0; for (let i = 0; i < n; i++) s += ffi.load({ library: lib, funcName: 'fstatat', retType: T.I32, paramsType: [T.I32, T.U8Array, T.U8Array, T.I32], paramsValue: [dirFd, name, st, 0x100] }) as number; return s; } });
    const defined = ffi.define({ getpid: { library: lib, retType: T.I32, paramsType: [] }, fstat: { library: lib, retType: T.I32, paramsType: [T.I32, T.U8Array] } });
    ops.push({ group: 'ffi-rs define()', name: 'getpid', run: (n) => { let s = 0; for (let i = 0; i < n; i++) s += defined.getpid([]) as number; return s; } });
    ops.push({ group: 'ffi-rs define()', name: 'fstat into a reused Buffer', run: (n) => { let s = 0; for (let i = 0; i < n; i++) s += defined.fstat([fileFd, st]) as number; return s; } });
  }
  ops.push({ group: 'node fs', name: 'fstatSync', run: (n) => { let s = 0; for (let i = 0; i < n; i++) s += fs.fstatSync(fileFd).size; return s; } });
  ops.push({ group: 'node fs', name: 'fstatSync bigint', run: (n) => { let s = 0; for (let i = 0; i < n; i++) s += Number(fs.fstatSync(fileFd, { bigint: true }).size); return s; } });

  // Sanity: the koffi fstat wrote the inode number into the caller's Buffer (passed in place, no copy).
  const checks: string[] = [];
  st.fill(0);
  kFstat(fileFd, st);
  if (st.readBigUInt64LE(8) !== fs.fstatSync(fileFd, { bigint: true }).ino) checks.push('koffi fstat did not fill the Buffer');

  const results: OpResult[] = ops.map((op) => measure(op, roundMs, rounds, null));
  fs.closeSync(fileFd);
  fs.closeSync(dirFd);
  fs.rmSync(dir, { recursive: true });

  console.log(`FFI per-call cost (${rounds} rounds of ${roundMs} ms per call; median, and min-max of the rounds)${ffi ? '' : '; ffi-rs not installed: its rows skipped'}`);
  console.log(table(['library', 'call', 'ns/call', 'min', 'max'], results.map((r) => [r.group, r.name, r.nsPerOp, r.minNs, r.maxNs])));
  if (checks.length) console.log(`CHECKS FAILED:\n  ${checks.join('\n  ')}`);
  emitJson(args, { bench: 'ffi', machine: machine(), koffi: koffi.version, roundMs, rounds, results, checksFailed: checks });
}

main();
