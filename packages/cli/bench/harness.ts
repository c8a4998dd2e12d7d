// The comparative bench's moving parts: the C load generator (built on demand), the two daemons as
// child processes, the share layout, and /proc readings. compare.ts strings them together; the unit
// test uses them for one short point.
import { ChildProcess, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as readline from 'readline';

export const REPO = path.resolve(__dirname, '..', '..', '..', '..');
export const LOADGEN_SRC = path.join(REPO, 'packages', 'cli', 'bench', 'loadgen');
export const CACHE_DIR = path.join(REPO, '.bench');
export const PEER = '/usr/lib/qemu/virtiofsd';
const VFSD_BIN = path.join(REPO, 'packages', 'cli', 'bin', 'vfsd');
/** The node options the vfsd command runs with (its #! line), for starting it as `node OPTIONS vfsd`. */
const VFSD_NODE_OPTIONS = fs.readFileSync(VFSD_BIN, 'utf8').split('\n')[0].split(/\s+/).filter((a) => a.startsWith('--'));

// ---------- children and tmp dirs, cleaned up whatever happens ----------

const children = new Set<ChildProcess>();
const tmpDirs = new Set<string>();

/** Kills every child we started (their process groups: the C daemon forks its sandboxed server) and removes tmp dirs. */
export function cleanupAll(): void {
  for (const c of children) killTree(c, 'SIGKILL');
  children.clear();
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
  tmpDirs.clear();
}

function killTree(c: ChildProcess, sig: NodeJS.Signals): void {
  if (c.pid === undefined || c.exitCode !== null || c.signalCode !== null) {
    // The leader is gone, its group may not be (the C daemon's forked server).
    if (c.pid !== undefined) tryKill(-c.pid, sig);
    return;
  }
  tryKill(-c.pid, sig);
  tryKill(c.pid, sig);
}

function tryKill(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

export function makeTmpDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tmpDirs.add(d);
  return d;
}

export function removeTmpDir(d: string): void {
  fs.rmSync(d, { recursive: true, force: true });
  tmpDirs.delete(d);
}

let handlersInstalled = false;
/** Ctrl-C, SIGTERM and crashes still clean up. */
export function installCleanupHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', cleanupAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      console.error(`\n${sig}: stopping every child and removing tmp dirs`);
      cleanupAll();
      process.exit(130);
    });
  }
}

// ---------- packages and the build ----------

function has(cmd: string, args: string[]): boolean {
  return spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
}

/** apt-get install as root (CI machines start fresh), once more after apt-get update if it fails. */
export function aptInstall(pkgs: string[]): void {
  if (process.getuid?.() !== 0) throw new Error(`missing ${pkgs.join(' ')}: install them (not root, so not doing it here)`);
  // Another process may be installing packages right now: wait for dpkg's lock instead of failing.
  const args = ['-o', 'DPkg::Lock::Timeout=600', 'install', '-y', '--no-install-recommends', ...pkgs];
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  console.error(`installing ${pkgs.join(' ')} ...`);
  if (spawnSync('apt-get', args, { stdio: ['ignore', 'ignore', 'inherit'], env }).status === 0) return;
  spawnSync('apt-get', ['-o', 'DPkg::Lock::Timeout=600', 'update'], { stdio: ['ignore', 'ignore', 'inherit'], env });
  if (spawnSync('apt-get', args, { stdio: ['ignore', 'ignore', 'inherit'], env }).status !== 0) throw new Error(`apt-get install ${pkgs.join(' ')} failed`);
}

export function ensurePeer(): void {
  if (!fs.existsSync(PEER)) aptInstall(['qemu-system-common']);
  if (!fs.existsSync(PEER)) throw new Error(`${PEER} still missing after installing qemu-system-common`);
}

export function ensureGcc(): void {
  if (!has('gcc', ['--version']) || !fs.existsSync('/usr/include/stdio.h')) aptInstall(['gcc', 'libc6-dev']);
}

/** Builds the loadgen with gcc -O2 into .bench/ when a source file is newer than the binary. */
export function buildLoadgen(): string {
  const out = path.join(CACHE_DIR, 'loadgen');
  const sources = fs.readdirSync(LOADGEN_SRC).filter((f) => /\.[ch]$/.test(f));
  const newest = Math.max(...sources.map((f) => fs.statSync(path.join(LOADGEN_SRC, f)).mtimeMs));
  if (fs.existsSync(out) && fs.statSync(out).mtimeMs >= newest) return out;
  ensureGcc();
  fs.mkdirSync(CACHE_DIR, { recursive: true });
  const tmp = `${out}.${process.pid}`;
  const cfiles = sources.filter((f) => f.endsWith('.c')).map((f) => path.join(LOADGEN_SRC, f));
  const r = spawnSync('gcc', ['-O2', '-std=c11', '-Wall', '-Wextra', '-pthread', '-o', tmp, ...cfiles], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`gcc failed:\n${r.stderr}`);
  fs.renameSync(tmp, out); // atomic: a parallel run never sees half a binary
  return out;
}

// ---------- the share ----------

export interface ShareOptions {
  /** Files in many/ for the lookup-many memory figure (0: none). */
  manyFiles: number;
  /** Entries of dir1000/. */
  dirEntries: number;
  /** Size of data.bin and wdata.bin. */
  fileSize: number;
}

/** The layout the loadgen expects (see loadgen.c's header). */
export function makeShare(dir: string, o: ShareOptions): void {
  fs.writeFileSync(path.join(dir, 'file.txt'), 'getattr and lookup target\n');
  fs.writeFileSync(path.join(dir, 'lock.txt'), 'lock\n');
  fs.mkdirSync(path.join(dir, 'cr'));
  const chunk = Buffer.alloc(1 << 20);
  for (let i = 0; i < chunk.length; i += 8) chunk.writeUInt32LE(i * 2654435761 >>> 0, i);
  for (const name of ['data.bin', 'wdata.bin']) {
    const fd = fs.openSync(path.join(dir, name), 'w');
    for (let off = 0; off < o.fileSize; off += chunk.length) fs.writeSync(fd, chunk, 0, Math.min(chunk.length, o.fileSize - off), off);
    fs.closeSync(fd);
  }
  // Read back once, so data.bin is in the page cache for the read workloads.
  const fd = fs.openSync(path.join(dir, 'data.bin'), 'r');
  for (let off = 0; off < o.fileSize; off += chunk.length) fs.readSync(fd, chunk, 0, chunk.length, off);
  fs.closeSync(fd);
  const d = path.join(dir, 'dir1000');
  fs.mkdirSync(d);
  for (let i = 0; i < o.dirEntries; i++) fs.closeSync(fs.openSync(path.join(d, `entry-${String(i).padStart(4, '0')}`), 'w'));
  const m = path.join(dir, 'many');
  fs.mkdirSync(m);
  // touch through xargs: about 1.6× faster than a loop of openSync/closeSync (ext4 creates dominate).
  const r = o.manyFiles ? spawnSync('sh', ['-c', `seq -f 'f%06g' 0 ${o.manyFiles - 1} | xargs touch`], { cwd: m, stdio: 'ignore' }) : { status: 0 };
  if (r.status !== 0 || fs.readdirSync(m).length !== o.manyFiles)
    for (let i = 0; i < o.manyFiles; i++) fs.closeSync(fs.openSync(path.join(m, `f${String(i).padStart(6, '0')}`), 'w'));
}

// ---------- daemons ----------

export interface DaemonConfig {
  /** Column key, e.g. vfsd-p0. */
  key: string;
  kind: 'vfsd' | 'c';
  pool: number;
  queues: number;
  /** More daemon options (e.g. vfsd's --inode-file-handles). */
  args?: string[];
}

export interface Daemon {
  cfg: DaemonConfig;
  socket: string;
  child: ChildProcess;
  pid: number;
  /** Its last stderr lines. */
  stderr(): string;
  /** Null while it runs. */
  exitStatus(): string | null;
  exited: Promise<string>;
  /** Waits for it to exit on its own (it does when its front-end disconnects); kills it after `ms`. */
  stop(ms?: number): Promise<{ ownExit: boolean; status: string }>;
}

export async function startDaemon(cfg: DaemonConfig, share: string, dir: string): Promise<Daemon> {
  const socket = path.join(dir, `${cfg.key}.sock`);
  const [cmd, args, env] =
    cfg.kind === 'vfsd'
      ? [process.execPath, [...VFSD_NODE_OPTIONS, VFSD_BIN, '--socket-path', socket, '--shared-dir', share, '--cache', 'never', '--thread-pool-size', String(cfg.pool), '--request-queues', String(cfg.queues), '--log-level', 'warn', ...(cfg.args ?? [])], process.env]
      : // With a pool the C daemon's seccomp filter kills it (SIGSYS) unless malloc keeps few arenas.
        [PEER, [`--socket-path=${socket}`, '-o', `source=${share}`, '-o', 'cache=none', `--thread-pool-size=${cfg.pool}`, ...(cfg.args ?? [])], cfg.pool > 0 ? { ...process.env, MALLOC_ARENA_MAX: '4' } : process.env];
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env, detached: true });
  children.add(child);
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-4000);
  });
  let status: string | null = null;
  const exited = new Promise<string>((res) =>
    child.once('exit', (code, sig) => {
      status = sig ? `killed by ${sig}` : `exit ${code}`;
      res(status);
    }),
  );
  const t0 = Date.now();
  while (!fs.existsSync(socket)) {
    if (status !== null) throw new Error(`${cfg.key} exited before listening (${status}): ${err.trim()}`);
    if (Date.now() - t0 > 15000) {
      killTree(child, 'SIGKILL');
      throw new Error(`${cfg.key} did not listen within 15 s: ${err.trim()}`);
    }
    await sleep(10);
  }
  const d: Daemon = {
    cfg,
    socket,
    child,
    pid: child.pid!,
    stderr: () => err,
    exitStatus: () => status,
    exited,
    async stop(ms = 3000) {
      const own = await settlesWithin(exited, ms);
      if (!own) {
        killTree(child, 'SIGTERM');
        if (!(await settlesWithin(exited, 1000))) killTree(child, 'SIGKILL');
        await exited;
      }
      killTree(child, 'SIGKILL'); // the group: a forked server that outlived its parent
      children.delete(child);
      return { ownExit: own, status: status! };
    },
  };
  return d;
}

/** Whether p settles within ms (its timer cleared either way: no open handle left behind). */
export async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<boolean>((res) => (timer = setTimeout(() => res(false), ms)));
  try {
    return await Promise.race([p.then(() => true), t]);
  } finally {
    clearTimeout(timer);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// ---------- the load generator ----------

export interface LoadResult {
  workload: string;
  depth: number;
  queues: number;
  self_echo: boolean;
  ops: number;
  seconds: number;
  ops_per_sec: number;
  p50_us: number;
  p99_us: number;
  errors: number;
  first_errno: number;
  bad: number;
  bad_reason: string;
  loadgen_cpu_us_per_op: number;
  kicks: number;
  setlkw: string;
}

export interface LoadgenRun {
  /** Each JSON line in order; a line with `fatal` ends the run. */
  lines: AsyncIterableIterator<Record<string, unknown>>;
  /** Writes a line to its stdin (acks for --hold and --marks). */
  ack(): void;
  done: Promise<{ code: number | null; signal: string | null; stderr: string }>;
  kill(): void;
}

export function startLoadgen(bin: string, args: string[]): LoadgenRun {
  const child = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(child);
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  child.stdin!.on('error', () => undefined); // EPIPE once it exited
  const rl = readline.createInterface({ input: child.stdout! });
  async function* lines(): AsyncIterableIterator<Record<string, unknown>> {
    for await (const line of rl) {
      if (!line.trim()) continue;
      try {
        yield JSON.parse(line) as Record<string, unknown>;
      } catch {
        yield { fatal: `unparsable loadgen output: ${line}` };
      }
    }
  }
  const done = new Promise<{ code: number | null; signal: string | null; stderr: string }>((res) =>
    child.once('exit', (code, signal) => {
      children.delete(child);
      res({ code, signal, stderr: err });
    }),
  );
  return {
    lines: lines(),
    ack: () => {
      if (child.exitCode === null) child.stdin!.write('\n');
    },
    done,
    kill: () => killTree(child, 'SIGKILL'),
  };
}

export class PointError extends Error {}

/** Runs the loadgen to its end with a deadline; returns its result lines. Hold points and marks are
 * acknowledged once onLine (which may sample the daemon there) has returned. */
export async function runLoadgen(bin: string, args: string[], timeoutMs: number, onLine?: (l: Record<string, unknown>) => void | Promise<void>): Promise<LoadResult[]> {
  const run = startLoadgen(bin, args);
  const results: LoadResult[] = [];
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    run.kill();
  }, timeoutMs);
  try {
    for await (const l of run.lines) {
      if (typeof l.fatal === 'string') throw new PointError(l.fatal);
      if ('workload' in l) results.push(l as unknown as LoadResult);
      if (onLine) await onLine(l);
      if ('hold' in l || 'mark' in l) run.ack();
    }
    const end = await run.done;
    if (timedOut) throw new PointError(`stalled: no result within ${Math.round(timeoutMs / 1000)} s (killed)`);
    if (end.code !== 0) throw new PointError(`loadgen ${end.signal ? `killed by ${end.signal}` : `exit ${end.code}`}: ${end.stderr.trim()}`);
    return results;
  } finally {
    clearTimeout(timer);
    run.kill();
  }
}

// ---------- /proc ----------

/** The open-file hard limit our children inherit (raising it needs CAP_SYS_RESOURCE). */
export function nofileHardLimit(): number {
  const m = /Max open files\s+\S+\s+(\S+)/.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
  return m && m[1] !== 'unlimited' ? Number(m[1]) : Infinity;
}

export interface ThreadCpu {
  tid: number;
  comm: string;
  /** utime + stime in µs. */
  us: number;
}

const TICK_US = 1e6 / (Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100);

function statCpuUs(file: string): number | null {
  try {
    const s = fs.readFileSync(file, 'utf8');
    // Fields after the command name, which may hold spaces and parentheses: cut at the last ')'.
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * TICK_US; // utime, stime (fields 14 and 15)
  } catch {
    return null;
  }
}

export function threadsCpu(pid: number): ThreadCpu[] {
  let tids: string[];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const out: ThreadCpu[] = [];
  for (const t of tids) {
    const us = statCpuUs(`/proc/${pid}/task/${t}/stat`);
    if (us === null) continue;
    let comm = '';
    try {
      comm = fs.readFileSync(`/proc/${pid}/task/${t}/comm`, 'utf8').trim();
    } catch {
      // gone
    }
    out.push({ tid: Number(t), comm, us });
  }
  return out;
}

/** The process itself (all threads, live and exited) from /proc/PID/stat. */
export function processCpuUs(pid: number): number | null {
  return statCpuUs(`/proc/${pid}/stat`);
}

export function rssKb(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** Descendants of pid (the C daemon serves from a child it forks into its namespace sandbox). */
export function descendants(pid: number): number[] {
  const byParent = new Map<number, number[]>();
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const s = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]);
      const list = byParent.get(ppid) ?? [];
      list.push(Number(e));
      byParent.set(ppid, list);
    } catch {
      // gone
    }
  }
  const out: number[] = [];
  const walk = (p: number): void => {
    for (const c of byParent.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

/** The process that serves: the daemon itself, or the deepest process it forked. */
export function servingPid(d: Daemon): number {
  const ds = descendants(d.pid);
  return ds.length ? ds[ds.length - 1] : d.pid;
}

/** The middle of the figures (the mean of the middle two when there are an even number). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
