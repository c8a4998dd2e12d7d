import type { ChildProcess } from 'node:child_process';

export declare const EXIT: Readonly<{
  USAGE: 240; SETUP: 241; QEMU: 242; BOOT: 243; MOUNT: 244; TIMEOUT: 245; NOEXIT: 246; DAEMON: 247;
}>;
export declare const EXIT_NAMES: Record<number, string>;
export declare const VIRTIOFSD: string;

export interface RunGuestOptions {
  /** The daemon's vhost-user socket (it listens, QEMU connects). */
  socket: string;
  /** virtio-fs tag, 1-36 chars, no whitespace. */
  tag: string;
  /** Guest script text (busybox ash), run with cwd = mount point. */
  script?: string;
  /** Or a host file holding the script. */
  scriptFile?: string;
  /** Guest memory, e.g. '512M' (default) or '1G'. */
  mem?: string;
  /** Watchdog for the whole run, seconds (default 120). */
  timeoutSec?: number;
  /** The daemon's pid: if it dies while the guest runs, fail fast with EXIT.DAEMON. */
  daemonPid?: number;
  /** Copy the guest console log here. */
  logFile?: string;
  /** Extra environment (VFSD_GUEST_* variables of run-guest.sh). */
  env?: Record<string, string>;
}

export interface RunGuestResult {
  /** The script's exit status, or 240-247 for a harness failure. */
  code: number;
  /** Exactly what the script wrote to stdout and stderr. */
  output: string;
  /** run-guest.sh's own messages (empty on success). */
  stderr: string;
  /** Name of the harness failure (a key of EXIT), or null. */
  harnessError: string | null;
  /** exit, guest_status, accel, mounted_uptime, wall_seconds, console_log. */
  result: Record<string, string>;
}

export declare function setup(env?: Record<string, string>): Promise<void>;
export declare function runGuest(opts: RunGuestOptions): Promise<RunGuestResult>;
/** run-guest.sh --interactive on this process's stdio: a shell in the guest's mount point. */
export declare function runGuestInteractive(opts: {
  socket: string; tag: string; mem?: string; timeoutSec?: number; env?: Record<string, string>;
}): Promise<{ code: number; harnessError: string | null }>;
export declare function startVirtiofsd(opts: {
  socketPath: string; sourceDir: string; args?: string[]; debug?: boolean; logFile?: string;
}): Promise<ChildProcess>;
export declare function waitForSocket(path: string, timeoutMs?: number): Promise<void>;
