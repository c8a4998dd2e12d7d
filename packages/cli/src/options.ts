// Command-line options, under virtiofsd's names where it has them (the Rust virtiofsd's spelling,
// with the C daemon's `-o key[=value]` accepted for the options both have).
import * as fs from 'fs';
import yargs from 'yargs';
import { VIRTIO_FS_TAG_MAX } from '@vfsd/core';
import { LOG_LEVELS, LogLevel } from './logger';

export const CACHE_MODES = ['never', 'metadata', 'auto', 'always'] as const;
export type CacheMode = (typeof CACHE_MODES)[number];
export const SANDBOX_MODES = ['namespace', 'chroot', 'none'] as const;
export type SandboxMode = (typeof SANDBOX_MODES)[number];
export const FILE_HANDLE_MODES = ['never', 'prefer', 'mandatory'] as const;
export const MIGRATION_MODES = ['find-paths', 'file-handles'] as const;
export const MIGRATION_ON_ERROR = ['abort', 'guest-error'] as const;
export const SECCOMP_ACTIONS = ['none', 'kill', 'log', 'trap'] as const;
/** The Rust virtiofsd's options vfsd does not do yet, and why: refused, never silently ignored. */
const NOT_YET: Record<string, string> = {
  xattrmap: 'xattr name mapping is not built yet',
  'uid-map': 'user namespace id maps are not built yet',
  'gid-map': 'user namespace id maps are not built yet',
  'translate-uid': 'uid translation is not built yet',
  'translate-gid': 'gid translation is not built yet',
  modcaps: 'capability changes are not built yet',
};
export type MigrationOnError = (typeof MIGRATION_ON_ERROR)[number];
export type MigrationMode = (typeof MIGRATION_MODES)[number];
export type FileHandleMode = (typeof FILE_HANDLE_MODES)[number];

export interface Options {
  socketPath?: string;
  fd?: number;
  socketGroup?: string;
  sharedDir: string;
  threadPoolSize: number;
  requestQueues: number;
  /** Each request queue in a thread of its own (with the CPU each is bound to). */
  queueThreads: boolean;
  queueCpus: number[] | undefined;
  /** Advertised in the device's config space (vhost-user CONFIG). */
  tag: string | undefined;
  /** FUSE_SECURITY_CTX: new files get the guest's label. */
  securityLabel: boolean;
  cache: CacheMode;
  writeback: boolean;
  xattr: boolean;
  posixAcl: boolean;
  readonly: boolean;
  sandbox: SandboxMode;
  announceSubmounts: boolean;
  killprivV2: boolean;
  /** Offer POSIX (fcntl) and flock locks served through the host (FUSE_POSIX_LOCKS, FUSE_FLOCK_LOCKS). */
  posixLocks: boolean;
  flockLocks: boolean;
  /** Offer READDIRPLUS (FUSE_DO_READDIRPLUS) where the cache mode uses it. */
  readdirplus: boolean;
  allowDirectIo: boolean;
  preserveNoatime: boolean;
  allowMmap: boolean;
  inodeFileHandles: FileHandleMode;
  /** With file handles: how many inode fds stay open at most (default: half the open-file limit). */
  inodeFdCache?: number;
  /** Live migration: how the destination finds what the guest holds, what it does when it cannot, the checks. */
  migration: { mode: MigrationMode; onError: MigrationOnError; verifyHandles: boolean; confirmPaths: boolean };
  /** 0: leave the limit alone; undefined: raise it as far as allowed. */
  rlimitNofile?: number;
  logLevel: LogLevel;
  logJson: boolean;
  syslog: boolean;
  keepServing: boolean;
  /** --inspect [PORT]: serve the live inspector on localhost (0: any free port). */
  inspect?: number;
  /** --record FILE: write the actor events as JSON lines. */
  record?: string;
  /** Options accepted for compatibility that change nothing yet (reported at start-up). */
  notYetImplemented: string[];
}

/** The first line, or one of the lines, of what `vfsd --print-capabilities` prints (libvirt reads it). */
export const CAPABILITIES = { type: 'fs', features: ['migrate-precopy', 'separate-options'] };

export class UsageError extends Error {}

export const DEFAULT_INSPECT_PORT = 7420;

function inspectPort(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (v === '') return DEFAULT_INSPECT_PORT;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`--inspect takes a port number (got ${v})`);
  return n;
}

/** What the C virtiofsd's `-o` options become (`-o source=DIR,cache=none,xattr`). */
interface CompatOptions {
  source?: string;
  cache?: CacheMode;
  xattr?: boolean;
  writeback?: boolean;
  posixAcl?: boolean;
  announceSubmounts?: boolean;
  killprivV2?: boolean;
  posixLocks?: boolean;
  flockLocks?: boolean;
  readdirplus?: boolean;
  sandbox?: string;
  logLevel?: string;
  ignored: string[];
}

const C_CACHE: Record<string, CacheMode> = { none: 'never', auto: 'auto', always: 'always' };
const C_LOG: Record<string, LogLevel> = { debug: 'debug', info: 'info', warn: 'warn', err: 'error' };

function compatOptions(list: string[]): CompatOptions {
  const out: CompatOptions = { ignored: [] };
  for (const item of list.flatMap((s) => s.split(','))) {
    if (!item) continue;
    const eq = item.indexOf('=');
    const k = eq < 0 ? item : item.slice(0, eq);
    const v = eq < 0 ? undefined : item.slice(eq + 1);
    switch (k) {
      case 'source':
        out.source = v;
        break;
      case 'cache':
        if (v === undefined || !(v in C_CACHE)) throw new UsageError(`-o cache= takes none, auto or always (got ${v ?? 'nothing'})`);
        out.cache = C_CACHE[v];
        break;
      case 'xattr':
      case 'no_xattr':
        out.xattr = k === 'xattr';
        break;
      case 'writeback':
      case 'no_writeback':
        out.writeback = k === 'writeback';
        break;
      case 'posix_acl':
      case 'no_posix_acl':
        out.posixAcl = k === 'posix_acl';
        break;
      case 'announce_submounts':
        out.announceSubmounts = true;
        break;
      case 'killpriv_v2':
      case 'no_killpriv_v2':
        out.killprivV2 = k === 'killpriv_v2';
        break;
      case 'sandbox':
        out.sandbox = v;
        break;
      case 'log_level':
        if (v === undefined || !(v in C_LOG)) throw new UsageError(`-o log_level= takes debug, info, warn or err (got ${v ?? 'nothing'})`);
        out.logLevel = C_LOG[v];
        break;
      // The C daemon's lock switches (libvirt passes them from <lock posix= flock=>): off, the guest's
      // locks stay inside the guest (INIT does not offer them).
      case 'flock':
      case 'no_flock':
        out.flockLocks = k === 'flock';
        break;
      case 'posix_lock':
      case 'no_posix_lock':
        out.posixLocks = k === 'posix_lock';
        break;
      case 'readdirplus':
      case 'no_readdirplus':
        out.readdirplus = k === 'readdirplus';
        break;
      // FUSE's allow_root: who may use a FUSE mount on the host; a virtio-fs mount is the guest's.
      case 'allow_root':
        out.ignored.push(`-o ${k} (no meaning for virtio-fs)`);
        break;
      default:
        throw new UsageError(`unknown option -o ${k}`);
    }
  }
  return out;
}

export function parseOptions(argv: string[]): Options | 'capabilities' | 'shown' {
  const y = yargs(argv)
    .scriptName('vfsd')
    .usage('$0 --socket-path PATH --shared-dir DIR [options]\n\nA virtio-fs back-end: QEMU connects over vhost-user and the guest mounts DIR.')
    .option('socket-path', { type: 'string', alias: 'socket', describe: 'vhost-user UNIX socket to listen on' })
    .option('fd', { type: 'number', describe: 'inherited, already listening socket fd (instead of --socket-path)' })
    .option('socket-group', { type: 'string', describe: 'group that may connect to the socket (mode 0660)' })
    .option('shared-dir', { type: 'string', describe: 'host directory to export' })
    .option('o', { type: 'string', array: true, describe: 'compatibility with the C virtiofsd: -o source=DIR,cache=none,...' })
    .option('thread-pool-size', { type: 'number', default: 0, describe: 'worker threads for filesystem calls (0: inline; waits always get their own)' })
    .option('request-queues', { type: 'number', default: 1, describe: 'number of request queues (QEMU num-request-queues)' })
    .option('queue-threads', { type: 'boolean', default: false, describe: 'serve each request queue in a thread of its own (GETATTR, READ and WRITE answered there, other requests by the main thread); live migration is then not offered' })
    .option('queue-cpus', { type: 'string', describe: 'with --queue-threads: the CPU each request queue\'s thread is bound to, in queue order (e.g. 0,1)' })
    .option('cache', { choices: CACHE_MODES, default: 'auto' as CacheMode, describe: 'guest caching of metadata and data' })
    .option('writeback', { type: 'boolean', default: false, describe: 'let the guest cache writes (FUSE writeback cache)' })
    .option('xattr', { type: 'boolean', default: false, describe: 'serve extended attributes' })
    .option('posix-acl', { type: 'boolean', default: false, describe: 'serve POSIX ACLs (implies --xattr)' })
    .option('readonly', { type: 'boolean', default: false, describe: 'refuse every change to the shared directory' })
    .option('sandbox', { choices: SANDBOX_MODES, default: 'none' as SandboxMode, describe: 'process sandbox' })
    .option('announce-submounts', { type: 'boolean', default: false, describe: 'tell the guest about mount points inside the share' })
    .option('killpriv-v2', { type: 'boolean', default: true, describe: 'clear set-id bits on write, truncate and chown for the guest (FUSE_HANDLE_KILLPRIV_V2; --no-killpriv-v2: the guest does it)' })
    .option('posix-lock', { type: 'boolean', default: true, describe: 'serve the guest\'s POSIX locks through the host (--no-posix-lock: they stay inside the guest)' })
    .option('flock', { type: 'boolean', default: true, describe: 'serve the guest\'s flock locks through the host (--no-flock: they stay inside the guest)' })
    .option('readdirplus', { type: 'boolean', default: true, describe: 'offer READDIRPLUS (--no-readdirplus: plain READDIR, then a LOOKUP per name the guest uses)' })
    .option('inode-file-handles', { choices: FILE_HANDLE_MODES, default: 'never' as FileHandleMode, describe: 'hold inodes by file handle, their fds a bounded cache: more inodes than the open-file limit (needs CAP_DAC_READ_SEARCH; prefer: fall back to fds without it)' })
    .option('inode-fd-cache', { type: 'number', describe: 'with --inode-file-handles: inode fds kept open at most (default: half the open-file limit)' })
    .option('migration-mode', { choices: MIGRATION_MODES, default: 'find-paths' as MigrationMode, describe: 'live migration, source: the destination finds what the guest holds by path beneath the share, or by file handle (file-handles: both on one filesystem, CAP_DAC_READ_SEARCH on the destination; also finds unlinked open files)' })
    .option('migration-on-error', { choices: MIGRATION_ON_ERROR, default: 'abort' as MigrationOnError, describe: 'live migration, destination: an inode not found again fails the migration (abort) or gives the guest EIO on it (guest-error)' })
    .option('migration-verify-handles', { type: 'boolean', default: false, describe: 'live migration, source, find-paths: send file handles with the paths, so the destination checks that each path found the very same inode (one filesystem; ignored on the destination)' })
    .option('migration-confirm-paths', { type: 'boolean', default: false, describe: 'live migration, source, find-paths: re-open each path just before sending it, and leave out one that leads elsewhere now (third parties writing to the share)' })
    .option('rlimit-nofile', { type: 'number', describe: 'open file limit to set (0: leave it; default: as high as allowed)' })
    .option('log-level', { choices: LOG_LEVELS, default: 'info' as LogLevel, describe: 'log level (debug: one line per request)' })
    .option('log-json', { type: 'boolean', default: false, describe: 'log JSON lines instead of text' })
    .option('syslog', { type: 'boolean', default: false, describe: 'log to syslog instead of stderr' })
    .option('keep-serving', { type: 'boolean', default: false, describe: 'accept the next front-end after one disconnects (default: exit, as virtiofsd)' })
    .option('inspect', { type: 'string', describe: `serve the live inspector page on localhost:PORT (default ${DEFAULT_INSPECT_PORT})` })
    .option('record', { type: 'string', describe: 'record the actor events to FILE (JSON lines; the inspector page replays it)' })
    .option('allow-direct-io', { type: 'boolean', default: false, describe: 'honour the guest\'s O_DIRECT (default: dropped, the host page cache serves)' })
    .option('preserve-noatime', { type: 'boolean', default: false, describe: 'honour the guest\'s O_NOATIME (default: dropped: it fails for anyone but the file\'s owner)' })
    .option('allow-mmap', { type: 'boolean', default: false, describe: 'with --cache never: the guest may still mmap files (FUSE_DIRECT_IO_ALLOW_MMAP, Linux >= 6.6)' })
    .option('seccomp', { choices: SECCOMP_ACTIONS, default: 'none' as (typeof SECCOMP_ACTIONS)[number], describe: 'system call filter (only none: see README)' })
    .option('d', { type: 'boolean', default: false, describe: 'the same as --log-level debug (the Rust virtiofsd\'s spelling)' })
    .option('f', { type: 'boolean', default: false, describe: 'no effect: vfsd always runs in the foreground (accepted as the Rust virtiofsd does)' })
    .option('tag', { type: 'string', describe: 'the tag the device advertises in its config space (vhost-user CONFIG; at most 36 bytes; QEMU ignores it and takes its own tag= property)' })
    .option('xattrmap', { type: 'string', describe: 'not supported yet' })
    .option('uid-map', { type: 'string', describe: 'not supported yet' })
    .option('gid-map', { type: 'string', describe: 'not supported yet' })
    .option('translate-uid', { type: 'string', array: true, describe: 'not supported yet' })
    .option('translate-gid', { type: 'string', array: true, describe: 'not supported yet' })
    .option('security-label', { type: 'boolean', default: false, describe: 'give new files the SELinux or Smack label the guest sends with each create (FUSE_SECURITY_CTX)' })
    .option('modcaps', { type: 'string', describe: 'not supported yet' })
    .option('print-capabilities', { type: 'boolean', default: false, describe: 'print the vhost-user capabilities (JSON, for libvirt) and exit' })
    .example('$0 --socket-path /tmp/vfsd.sock --shared-dir /srv/share', 'serve /srv/share')
    .example('$0 --socket-path /tmp/vfsd.sock -o source=/srv/share,cache=none', "the C virtiofsd's spelling")
    .example('$0 --socket-path /tmp/vfsd.sock --shared-dir /srv --thread-pool-size 4 --log-level debug', 'a worker pool, one log line per request')
    .example('$0 --socket-path /tmp/vfsd.sock --shared-dir /srv --inspect', 'watch the actors live at http://127.0.0.1:7420')
    .example('$0 try --shared-dir . -- stat README.md', 'no VM at hand: boot a throwaway guest and run a command in the share')
    .strictOptions()
    .strict()
    .version()
    .alias('version', 'V')
    .help()
    .alias('help', 'h')
    .exitProcess(false)
    .fail((msg, err) => {
      throw new UsageError((err?.message ?? msg).replace(/\s*\n\s*/g, ' '));
    });
  const a = y.parseSync();
  // --help and --version were printed by yargs (which must not exit: that could cut the output).
  if (a.help || a.version) return 'shown';
  if (a['print-capabilities']) return 'capabilities';
  const compat = compatOptions(a.o ?? []);
  const sharedDir = a['shared-dir'] ?? compat.source;
  if (!sharedDir) throw new UsageError('--shared-dir DIR is required');
  if (!fs.existsSync(sharedDir) || !fs.statSync(sharedDir).isDirectory()) throw new UsageError(`shared directory ${sharedDir} does not exist or is not a directory`);
  if (a['socket-path'] === undefined && a.fd === undefined) throw new UsageError('--socket-path PATH or --fd FD is required');
  if (a['socket-path'] !== undefined && a.fd !== undefined) throw new UsageError('--socket-path and --fd are exclusive');
  if (a.fd !== undefined && (!Number.isInteger(a.fd) || a.fd < 0)) throw new UsageError(`--fd takes a file descriptor number (got ${a.fd})`);
  if (a['socket-group'] !== undefined && a.fd !== undefined) throw new UsageError('--socket-group applies to --socket-path only');
  const queues = a['request-queues'];
  if (!Number.isInteger(queues) || queues < 1 || queues > 255) throw new UsageError('--request-queues must be 1 to 255');
  const queueCpus = a['queue-cpus'] === undefined ? undefined : a['queue-cpus'].split(',').map((c) => Number(c.trim()));
  if (queueCpus && (queueCpus.length === 0 || queueCpus.some((c) => !Number.isInteger(c) || c < 0 || c >= 1024))) throw new UsageError(`--queue-cpus takes CPU numbers, comma-separated (got ${a['queue-cpus']})`);
  if (queueCpus && queueCpus.length > queues) throw new UsageError(`--queue-cpus names ${queueCpus.length} CPUs for ${queues} request queue(s)`);
  if (queueCpus && !a['queue-threads']) throw new UsageError('--queue-cpus applies with --queue-threads');
  const tag = a.tag;
  const tagBytes = tag === undefined ? 0 : Buffer.byteLength(tag, 'utf8');
  if (tag !== undefined && (tagBytes === 0 || tagBytes > VIRTIO_FS_TAG_MAX)) throw new UsageError(`--tag takes 1 to ${VIRTIO_FS_TAG_MAX} bytes of UTF-8 (got ${tagBytes})`);
  const pool = a['thread-pool-size'];
  if (!Number.isInteger(pool) || pool < 0 || pool > 1024) throw new UsageError('--thread-pool-size must be 0 to 1024');
  const nofile = a['rlimit-nofile'];
  if (nofile !== undefined && (!Number.isInteger(nofile) || nofile < 0)) throw new UsageError(`--rlimit-nofile takes a number of files (got ${nofile})`);
  const fdCache = a['inode-fd-cache'];
  if (fdCache !== undefined && (!Number.isInteger(fdCache) || fdCache < 16)) throw new UsageError(`--inode-fd-cache takes a number of fds, 16 or more (got ${fdCache})`);
  if (fdCache !== undefined && a['inode-file-handles'] === 'never') throw new UsageError('--inode-fd-cache applies with --inode-file-handles prefer or mandatory');
  const sandbox = (compat.sandbox ?? a.sandbox) as SandboxMode;
  if (!SANDBOX_MODES.includes(sandbox)) throw new UsageError(`--sandbox takes namespace, chroot or none (got ${sandbox})`);
  if (sandbox === 'chroot') throw new UsageError('--sandbox chroot is not supported; use --sandbox namespace (or none)');
  for (const [name, why] of Object.entries(NOT_YET)) if (a[name] !== undefined) throw new UsageError(`--${name} is not supported: ${why}`);
  if (a.seccomp !== 'none') {
    throw new UsageError(`--seccomp ${a.seccomp} is not supported: a filter must allow every system call of Node's own threads (V8, libuv, the pool), not measured yet; --seccomp none runs without one`);
  }
  if (a['migration-mode'] === 'file-handles' && (a['migration-verify-handles'] || a['migration-confirm-paths'])) {
    throw new UsageError('--migration-verify-handles and --migration-confirm-paths apply to --migration-mode find-paths (file handles need no path checks)');
  }
  const opts: Options = {
    socketPath: a['socket-path'],
    fd: a.fd,
    socketGroup: a['socket-group'],
    sharedDir,
    threadPoolSize: pool,
    requestQueues: queues,
    queueThreads: a['queue-threads'],
    tag,
    securityLabel: a['security-label'],
    queueCpus,
    cache: compat.cache ?? a.cache,
    writeback: compat.writeback ?? a.writeback,
    posixAcl: compat.posixAcl ?? a['posix-acl'],
    xattr: (compat.xattr ?? a.xattr) || (compat.posixAcl ?? a['posix-acl']),
    readonly: a.readonly,
    sandbox,
    announceSubmounts: compat.announceSubmounts ?? a['announce-submounts'],
    killprivV2: compat.killprivV2 ?? a['killpriv-v2'],
    posixLocks: compat.posixLocks ?? a['posix-lock'],
    flockLocks: compat.flockLocks ?? a.flock,
    readdirplus: compat.readdirplus ?? a.readdirplus,
    inodeFileHandles: a['inode-file-handles'],
    inodeFdCache: fdCache,
    migration: { mode: a['migration-mode'], onError: a['migration-on-error'], verifyHandles: a['migration-verify-handles'], confirmPaths: a['migration-confirm-paths'] },
    rlimitNofile: nofile,
    logLevel: a.d ? 'debug' : ((compat.logLevel as LogLevel | undefined) ?? a['log-level']),
    allowDirectIo: a['allow-direct-io'],
    preserveNoatime: a['preserve-noatime'],
    allowMmap: a['allow-mmap'],
    logJson: a['log-json'],
    syslog: a.syslog,
    keepServing: a['keep-serving'],
    inspect: inspectPort(a.inspect),
    record: a.record,
    notYetImplemented: [...compat.ignored],
  };
  return opts;
}
