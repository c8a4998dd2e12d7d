// --sandbox namespace, as virtiofsd's: the daemon runs in new mount, pid and network namespaces and
// reaches nothing of the host by path but the shared directory (it keeps root's capabilities: this
// confines where its paths lead, as a second line behind its O_PATH-relative lookups, and is no jail
// for a daemon whose own code an attacker runs). Node cannot leave its mount namespace once it
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
import { SYS_PIVOT_ROOT, check, flock, mount as mountCall, pivotRoot, umount2 } from './sys/libc';

/**
 * Set in the sandboxed daemon's environment: `ROOT:MNTNS`, the empty directory to pivot into and the
 * launcher's mount namespace. The daemon pivots only when it runs in another mount namespace as PID 1
 * (what unshare made), never because the variable was inherited by some other vfsd.
 */
export const SANDBOX_STAGE_ENV = 'VFSD_SANDBOX_STAGE';

function mountNamespace(): string {
  return fs.readlinkSync('/proc/self/ns/mnt');
}

/** In the sandboxed daemon: the root to pivot into; undefined anywhere else. Clears the variable. */
export function sandboxStage(): string | undefined {
  const v = process.env[SANDBOX_STAGE_ENV];
  delete process.env[SANDBOX_STAGE_ENV];
  if (!v) return undefined;
  const at = v.lastIndexOf(':mnt:');
  if (at < 0) return undefined;
  const root = v.slice(0, at);
  const launcherNs = v.slice(at + 1);
  if (process.pid !== 1 || mountNamespace() === launcherNs) return undefined;
  return root;
}
/** The share's path inside the sandbox. */
export const SANDBOX_SHARE = '/share';

/**
 * The tree the daemon's code comes from: the nearest directory above this file whose node_modules
 * holds koffi (a checkout's root, or an install's), so that every package it loads is inside.
 */
export const CODE_DIR = ((): string => {
  for (let d = __dirname; d !== path.dirname(d); d = path.dirname(d)) {
    if (fs.existsSync(path.join(d, 'node_modules', 'koffi'))) return d;
  }
  return path.resolve(__dirname, '..', '..', '..', '..');
})();

const LOCK_EX = 2;
const LOCK_NB = 4;

/** Whether a live daemon holds PATH.lock (as the listener takes it for its life). */
function pathIsServed(socketPath: string): boolean {
  let fd: number;
  try {
    fd = fs.openSync(`${socketPath}.lock`, fs.constants.O_RDWR);
  } catch {
    return false; // no lock file: nobody serves it
  }
  try {
    return flock(fd, LOCK_EX | LOCK_NB) !== 0;
  } finally {
    fs.closeSync(fd); // closing releases the lock if we took it
  }
}

/** Where the sandbox's root is made: a directory outside the share (a mount point, empty on the host). */
function makeRootDir(sharedDir: string): string {
  const share = fs.realpathSync(sharedDir);
  for (const base of ['/run', os.tmpdir(), '/dev/shm']) {
    let real: string;
    try {
      real = fs.realpathSync(base);
    } catch {
      continue;
    }
    if (real === share || real.startsWith(`${share}/`) || share === '/') continue;
    try {
      return fs.mkdtempSync(path.join(real, 'vfsd-sandbox-'));
    } catch {
      // not writable here: the next
    }
  }
  throw new Error('--sandbox namespace: no place outside the shared directory for the sandbox root');
}

export interface SandboxLaunch {
  argv: string[];
  sharedDir: string;
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
  if (SYS_PIVOT_ROOT[process.arch] === undefined) throw new Error(`--sandbox namespace: pivot_root's number on ${process.arch} is not known`);
  // The daemon would refuse too; checked here so that the clean-up after it never touches a live one's.
  if (l.socketPath && pathIsServed(l.socketPath)) throw new Error(`${l.socketPath} is already served by a running daemon`);
  const root = makeRootDir(l.sharedDir);
  // setpriv --pdeathsig: if this launcher dies, unshare does, and --kill-child takes the daemon along.
  const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => fs.existsSync(p));
  const args = ['--mount', '--pid', '--fork', '--kill-child', '--propagation', 'private', ...(l.keepNetwork ? [] : ['--net'])];
  // An inherited listening fd is passed on at the same number.
  const stdio: ('inherit' | 'ignore' | number)[] = ['inherit', 'inherit', 'inherit'];
  if (l.fd !== undefined) {
    while (stdio.length < l.fd) stdio.push('ignore');
    stdio[l.fd] = l.fd;
  }
  // The same script as this process runs (a checkout's bin/vfsd, or an install's), with the same node
  // flags (the #! line's --max-semi-space-size: without it the sandboxed daemon's young generation grows).
  const command = [unshare, ...args, process.execPath, ...process.execArgv, process.argv[1], ...l.argv];
  const [file, ...rest] = setpriv ? [setpriv, '--pdeathsig', 'KILL', ...command] : command;
  const child = spawn(file, rest, {
    stdio,
    env: { ...process.env, [SANDBOX_STAGE_ENV]: `${root}:${mountNamespace()}` },
  });
  let exited = false;
  const forward = (sig: NodeJS.Signals, tries = 40): void => {
    // unshare waits for its child with SIGTERM and SIGINT ignored: signal the daemon itself (once it
    // exists: a signal that comes before unshare forked is delivered when it has).
    const pids = childrenOf(child.pid);
    if (pids.length === 0 && !exited && tries > 0) {
      setTimeout(() => forward(sig, tries - 1), 50);
      return;
    }
    for (const pid of pids) {
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
  process.on('SIGHUP', onTerm);
  const code = await new Promise<number>((resolve) => {
    child.once('error', (e) => {
      l.log(`cannot start the sandbox: ${e.message}`);
      resolve(1);
    });
    child.once('exit', (c, sig) => resolve(c ?? 128 + (os.constants.signals[sig ?? 'SIGKILL'] ?? 9)));
  });
  exited = true;
  process.off('SIGTERM', onTerm);
  process.off('SIGINT', onInt);
  process.off('SIGHUP', onTerm);
  // What the daemon left of its socket (its lock went with it), unless another daemon serves the path
  // by now; and the root's mount point, empty on the host.
  if (l.socketPath && !pathIsServed(l.socketPath)) {
    for (const p of [l.socketPath, `${l.socketPath}.lock`]) fs.rmSync(p, { force: true });
  }
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
/** mount(2); throws SysError (sys/libc) naming the call and its paths. */
function mount(source: string, target: string, fstype: string, flags: number): void {
  check(`mount(${source}, ${target}, ${fstype})`, mountCall(source, target, fstype, flags));
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
  // The share: no device node or set-id file in it acts through the daemon's view.
  mount(share, inside(SANDBOX_SHARE), '', MS_BIND | MS_REC);
  mount('', inside(SANDBOX_SHARE), '', MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV);
  mount(CODE_DIR, inside(CODE_DIR), '', MS_BIND | MS_REC);
  mount('', inside(CODE_DIR), '', MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV);
  // /proc read-only (no /proc/sys to write); its fd magic links still lead to the share, writable.
  mount('proc', inside('/proc'), 'proc', MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY);
  fs.writeFileSync(inside('/dev/null'), '');
  mount('/dev/null', inside('/dev/null'), '', MS_BIND);
  process.chdir(root);
  check('pivot_root(., oldroot)', pivotRoot('.', 'oldroot'));
  check('umount2(/oldroot)', umount2('/oldroot', MNT_DETACH));
  fs.rmdirSync('/oldroot');
  process.chdir('/');
  // The tmpfs root itself read-only: the daemon writes only to the share.
  mount('', '/', '', MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV);
  return SANDBOX_SHARE;
}
