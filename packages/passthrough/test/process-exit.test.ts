// The C virtiofsd hung at shutdown with a pool thread stuck in F_OFD_SETLKW. Here a child process with
// blocked SETLKWs (inline mode and a pool) shuts down and must then exit on its own: no thread left.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tempDir } from './helpers';

const SCRIPT = `
const { PassthroughFs } = require(${JSON.stringify(path.join(__dirname, '..', 'src', 'index.js'))});
const { FuseOpcode } = require(${JSON.stringify(require.resolve('@vfsd/core'))});
const fs = require('node:fs');
const dir = process.argv[2];
fs.writeFileSync(dir + '/f', 'x');
const hdr = (opcode, nodeid) => ({ len: 0, opcode, unique: 1n, nodeid, uid: 0, gid: 0, pid: 1, total_extlen: 0 });
const ctx = () => ({ unique: 1n, uid: 0, gid: 0, pid: 1, signal: new AbortController().signal });
const lk = (opcode, nodeid, owner) => ({ opcode, noReply: false, header: hdr(opcode, nodeid), ext: undefined,
  arg: { fh: 0n, owner, lk: { start: 0n, end: 0x7fffffffffffffffn, type: 1, pid: 0 }, lk_flags: 0 } });
(async () => {
  const pfs = new PassthroughFs({ sharedDir: dir, threadPoolSize: Number(process.argv[3]) });
  const e = await pfs.lookup(ctx(), { opcode: 1, noReply: false, header: hdr(1, 1n), ext: undefined, name: Buffer.from('f') });
  await pfs.setlk(ctx(), lk(FuseOpcode.FUSE_SETLK, e.nodeid, 1n), false);
  const waits = [2n, 3n, 4n].map((o) => pfs.setlk(ctx(), lk(FuseOpcode.FUSE_SETLKW, e.nodeid, o), true).catch((err) => err.errno));
  await new Promise((r) => setTimeout(r, 100));
  const t0 = Date.now();
  const report = await pfs.shutdownWithReport();
  console.log(JSON.stringify({ ms: Date.now() - t0, report, errnos: await Promise.all(waits) }));
})();
`;

test.each([0, 2])('a process with blocked SETLKWs exits after shutdown (threadPoolSize %i)', (size) => {
  const dir = tempDir();
  try {
    const script = path.join(dir, 'child.js');
    fs.writeFileSync(script, SCRIPT);
    const r = spawnSync(process.execPath, [script, dir, String(size)], { timeout: 10_000, encoding: 'utf8', cwd: path.join(__dirname, '..') });
    expect(r.signal).toBeNull();
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout.trim()) as { ms: number; report: { stuckWorkers: number }; errnos: number[] };
    expect(out.report.stuckWorkers).toBe(0);
    expect(out.errnos).toEqual([4, 4, 4]);
    expect(out.ms).toBeLessThan(500);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// ffi-rs crashed the process (SIGSEGV) when a worker that had loaded it exited or was terminated while
// the main thread had not loaded it; the pool loaded libc in the main thread first to avoid that. With
// koffi no such workaround is kept: this child's main thread never loads libc.
const WORKERS = `
const { Worker } = require('node:worker_threads');
const libc = ${JSON.stringify(path.join(__dirname, '..', 'src', 'sys', 'libc.js'))};
const body = 'const { parentPort, workerData } = require("node:worker_threads");' +
  'const l = require(' + JSON.stringify(libc) + ');' +
  'parentPort.postMessage(l.gettid());' +
  'if (workerData === "spin") for (;;) l.gettid();' +
  'if (workerData === "exit") process.exit(0);';
(async () => {
  for (const mode of ['exit', 'spin', 'end', 'exit', 'spin']) {
    const w = new Worker(body, { eval: true, workerData: mode });
    await new Promise((r) => w.once('message', r));
    if (mode === 'spin') await w.terminate();
    else await new Promise((r) => w.once('exit', r));
  }
  const loaded = Object.keys(require.cache).some((k) => k.includes('koffi'));
  console.log(JSON.stringify({ loadedInMain: loaded }));
})();
`;

test('workers that loaded libc exit and are terminated without the main thread loading it', () => {
  const dir = tempDir();
  try {
    const script = path.join(dir, 'workers.js');
    fs.writeFileSync(script, WORKERS);
    const r = spawnSync(process.execPath, [script], { timeout: 10_000, encoding: 'utf8', cwd: path.join(__dirname, '..') });
    expect(r.signal).toBeNull();
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout.trim())).toEqual({ loadedInMain: false });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
