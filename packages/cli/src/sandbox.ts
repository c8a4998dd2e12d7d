// --sandbox namespace, as virtiofsd's: the daemon runs in new mount, pid and network namespaces and
// sees nothing of the host but the shared directory. Node cannot leave its mount namespace once it
// runs (unshare(CLONE_NEWNS) needs a single-threaded process, and Node has threads from the start), so
// vfsd starts itself again under util-linux's unshare. That second process binds the socket while it
// still sees the host's tree, then pivots into a fresh root (pivotIntoSandbox) holding the share at
// /share, its own code read-only at the same path (its worker threads load files from it) and a /proc
// of its pid namespace. The first process forwards SIGTERM/SIGINT (unshare does not) and removes the
// socket once the daemon is gone (from inside, the path is out of sight).
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DataType, load, open } from 'ffi-rs';

/** Set in the sandboxed daemon's environment: it then pivots instead of starting the sandbox. */
export const SANDBOX_STAGE_ENV = 'VFSD_SANDBOX_STAGE';
/** The share's path inside the sandbox. */
export const SANDBOX_SHARE = '/share';

/** The checkout or install the daemon runs from (node_modules and every package's dist). */
export const CODE_DIR = path.resolve(__dirname, '..', '..', '..', '..');

export interface SandboxLaunch {
  argv: string[];
  socketPath?: string;
  fd?: number;
  /** Keep the host's network namespace (the inspector's page listens on the host's loopback). */
  keepNetwork: boolean;
  log: (line: string) => void;
}

/**
 * Runs the daemon in the sandbox and waits for it: resolves with its exit code. Throws (one line) when
 * the sandbox cannot be made here.
 */
export async function runSandboxed(l: SandboxLaunch): Promise<number> {
  if (process.geteuid?.() !== 0) throw new Error('--sandbox namespace needs root (new mount and pid namespaces)');
  const unshare = ['/usr/bin/unshare', '/bin/unshare'].find((p) => fs.existsSync(p));
  if (!unshare) throw new Error("--sandbox namespace needs util-linux's unshare");
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'vfsd-sandbox-'));
  const args = ['--mount', '--pid', '--fork', '--kill-child', '--propagation', 'private', ...(l.keepNetwork ? [] : ['--net'])];
  // An inherited listening fd is passed on at the same number.
  const stdio: ('inherit' | 'ignore' | number)[] = ['inherit', 'inherit', 'inherit'];
  if (l.fd !== undefined) {
    while (stdio.length < l.fd) stdio.push('ignore');
    stdio[l.fd] = l.fd;
  }
  const child = spawn(unshare, [...args, process.execPath, path.join(CODE_DIR, 'packages', 'cli', 'bin', 'vfsd'), ...l.argv], {
    stdio,
    env: { ...process.env, [SANDBOX_STAGE_ENV]: root },
  });
  const forward = (sig: NodeJS.Signals): void => {
    // unshare waits for its child with SIGTERM and SIGINT ignored: signal the daemon itself.
    for (const pid of childrenOf(child.pid)) {
      try {
        process.kill(pid, sig);
      } catch {
        // already gone
      }
    }
  };
  const onTerm = (): void => forward('SIGTERM');
  const onInt = (): void => forward('SIGINT');
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onInt);
  const code = await new Promise<number>((resolve) => {
    child.once('error', (e) => {
      l.log(`cannot start the sandbox: ${e.message}`);
      resolve(1);
    });
    child.once('exit', (c, sig) => resolve(c ?? 128 + (os.constants.signals[sig ?? 'SIGKILL'] ?? 9)));
  });
  process.off('SIGTERM', onTerm);
  process.off('SIGINT', onInt);
  // The daemon's lock went with it: what it left of the socket (and the empty root's mount point).
  if (l.socketPath) for (const p of [l.socketPath, `${l.socketPath}.lock`]) fs.rmSync(p, { force: true });
  fs.rmSync(root, { recursive: true, force: true });
  return code;
}

function childrenOf(pid: number | undefined): number[] {
  if (pid === undefined) return [];
  try {
    return fs
      .readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

// ---- inside: the new root ----

const MS_RDONLY = 0x1;
const MS_NOSUID = 0x2;
const MS_NODEV = 0x4;
const MS_NOEXEC = 0x8;
const MS_REMOUNT = 0x20;
const MS_BIND = 0x1000;
const MS_REC = 0x4000;
const MS_PRIVATE = 1 << 18;
const MNT_DETACH = 2;
const SYS_pivot_root = 155;
let libcOpened = false;

function libc(funcName: string, paramsType: DataType[], paramsValue: unknown[]): void {
  if (!libcOpened) {
    open({ library: 'vfsd-sandbox-libc', path: 'libc.so.6' });
    libcOpened = true;
  }
  const r = load({ library: 'vfsd-sandbox-libc', funcName, retType: DataType.I32, paramsType, paramsValue, errno: true }) as unknown as {
    value: number;
    errnoCode: number;
    errnoMessage: string;
  };
  if (r.value !== 0) throw new Error(`${funcName}(${paramsValue.filter((v) => typeof v === 'string').join(', ')}): ${r.errnoMessage} (errno ${r.errnoCode})`);
}

function mount(source: string, target: string, fstype: string, flags: number): void {
  libc('mount', [DataType.String, DataType.String, DataType.String, DataType.I64, DataType.String], [source, target, fstype, flags, '']);
}

/**
 * Makes `root` (an empty directory) the root of this mount namespace: a tmpfs with the share at /share,
 * the code read-only at its own path, /proc and /dev/null. Returns the share's path inside.
 */
export function pivotIntoSandbox(root: string, sharedDir: string): string {
  const share = fs.realpathSync(sharedDir);
  // Nothing mounted from here on reaches the host (unshare made the tree private; again, to be sure).
  mount('', '/', '', MS_REC | MS_PRIVATE);
  mount('vfsd-sandbox', root, 'tmpfs', MS_NOSUID | MS_NODEV);
  const inside = (p: string): string => path.join(root, p);
  for (const d of [SANDBOX_SHARE, '/proc', '/dev', '/oldroot', CODE_DIR]) fs.mkdirSync(inside(d), { recursive: true });
  mount(share, inside(SANDBOX_SHARE), '', MS_BIND | MS_REC);
  mount(CODE_DIR, inside(CODE_DIR), '', MS_BIND | MS_REC);
  mount('', inside(CODE_DIR), '', MS_BIND | MS_REMOUNT | MS_RDONLY);
  mount('proc', inside('/proc'), 'proc', MS_NOSUID | MS_NODEV | MS_NOEXEC);
  fs.writeFileSync(inside('/dev/null'), '');
  mount('/dev/null', inside('/dev/null'), '', MS_BIND);
  process.chdir(root);
  libc('syscall', [DataType.I64, DataType.String, DataType.String], [SYS_pivot_root, '.', 'oldroot']);
  libc('umount2', [DataType.String, DataType.I32], ['/oldroot', MNT_DETACH]);
  fs.rmdirSync('/oldroot');
  process.chdir('/');
  // The tmpfs root itself read-only: the daemon writes only to the share.
  mount('', '/', '', MS_BIND | MS_REMOUNT | MS_RDONLY);
  return SANDBOX_SHARE;
}
