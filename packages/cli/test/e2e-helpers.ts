// Shared by the end-to-end tests: the guest harness of scripts/guest and a vfsd child process.
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export const REPO = path.resolve(__dirname, '..', '..', '..', '..');
export const BIN = path.join(REPO, 'packages', 'cli', 'bin', 'vfsd');
export const VM_DIR = process.env.VFSD_VM_DIR ?? path.join(REPO, '.vm');

export interface GuestResult {
  code: number;
  output: string;
  stderr: string;
  harnessError: string | null;
  result: Record<string, string>;
}
interface GuestHarness {
  setup(env?: Record<string, string>): Promise<void>;
  runGuest(opts: {
    socket: string;
    tag: string;
    script: string;
    timeoutSec?: number;
    daemonPid?: number;
    logFile?: string;
    mem?: string;
    /** Extra environment for run-guest.sh (VFSD_GUEST_FLAVOR, VFSD_GUEST_QMP, ... : scripts/guest/README.md). */
    env?: Record<string, string>;
  }): Promise<GuestResult>;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const guest = require(path.join(REPO, 'scripts', 'guest', 'guest.js')) as GuestHarness;

export interface Daemon {
  child: ChildProcess;
  sock: string;
  share: string;
  dir: string;
  /** Everything vfsd wrote to stderr so far. */
  log(): string;
  exited: Promise<number | null>;
  /** Resolves when a line matching `re` appears in the log. */
  waitForLog(re: RegExp, timeoutMs?: number): Promise<void>;
  cleanup(): void;
}

/** A vfsd on a share of its own, or on `sharedDir` (which it then leaves in place: another daemon may serve it too). */
export function startDaemon(args: string[] = [], prepare?: (share: string) => void, sharedDir?: string): Daemon {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vfsd-e2e-'));
  const share = sharedDir ?? path.join(dir, 'share');
  if (!sharedDir) fs.mkdirSync(share);
  prepare?.(share);
  const sock = path.join(dir, 'vfsd.sock');
  const child = spawn(process.execPath, [BIN, '--socket-path', sock, '--shared-dir', share, '--log-level', 'debug', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let text = '';
  const waiters: { re: RegExp; resolve: () => void }[] = [];
  child.stderr!.on('data', (d) => {
    text += d;
    for (const w of waiters.splice(0)) {
      if (w.re.test(text)) w.resolve();
      else waiters.push(w);
    }
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  return {
    child,
    sock,
    share,
    dir,
    log: () => text,
    exited,
    waitForLog(re, timeoutMs = 60_000) {
      if (re.test(text)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no log line matching ${re}`)), timeoutMs);
        waiters.push({ re, resolve: () => (clearTimeout(t), resolve()) });
      });
    },
    cleanup() {
      if (child.exitCode === null) child.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Waits for the daemon to exit by itself, or kills it after `ms`; resolves with its exit code or 'killed'. */
export async function exitWithin(d: Daemon, ms: number): Promise<number | null | 'killed'> {
  let timer: NodeJS.Timeout | undefined;
  const r = await Promise.race([d.exited, new Promise<'killed'>((res) => (timer = setTimeout(() => res('killed'), ms)))]);
  clearTimeout(timer);
  if (r === 'killed') d.child.kill('SIGKILL');
  return r;
}

/** The rest of the line of `output` that starts with `key ` (a guest script's "key value" lines). */
export function lineValue(output: string, key: string): string | undefined {
  return new RegExp(`^${key} (.*)$`, 'm').exec(output)?.[1];
}
