// What a PassthroughFs is made with: the shared directory and every choice of the command line that
// shapes its answers (cache validity, locks, xattrs, file handles, migration, the pool).
import type { FileHandleMode } from './inode-table';
import type { MigrationOptions } from './migration';
import type { WorkerPoolOptions } from './pool/worker-pool';

export interface PassthroughOptions {
  /** The host directory shared with the guest (it becomes nodeid 1). */
  sharedDir: string;
  /** Regular pool workers; 0 (default) runs cheap calls inline on the main thread. */
  threadPoolSize?: number;
  /**
   * Request-queue threads will serve GETATTR, READ and WRITE themselves (queueThreadPart): inode and
   * handle fds are then published in shared tables (fd-cells.ts).
   */
  queueThreads?: boolean;
  /** Further pool settings (waiter cap, timeouts, xstate inspection). */
  pool?: Omit<WorkerPoolOptions, 'threadPoolSize'>;
  /** Entry and attribute validity in seconds (virtiofsd's cache=auto is 1, cache=none 0). Default 1. */
  timeoutSeconds?: number;
  /** Offer FUSE_POSIX_LOCKS (default true). */
  posixLocks?: boolean;
  /** Offer FUSE_FLOCK_LOCKS (default true). */
  flockLocks?: boolean;
  /** Honour O_DIRECT in OPEN and CREATE (default false: dropped, as the Rust virtiofsd). */
  allowDirectIo?: boolean;
  /** Keep O_NOATIME in OPEN and CREATE (default false: dropped, as the Rust virtiofsd). */
  preserveNoatime?: boolean;
  /**
   * With cache=never: let the guest mmap files opened for direct I/O (FUSE_DIRECT_IO_ALLOW_MMAP, 7.39);
   * without it a shared writable mapping fails (ENODEV) as with the C daemon.
   */
  allowMmap?: boolean;
  /** Offer READDIRPLUS where the cache mode uses it (default true; false: READDIR and LOOKUPs). */
  readdirplus?: boolean;
  /**
   * Guest caching, as virtiofsd's --cache: 'never' opens files with FOPEN_DIRECT_IO (and offers no
   * READDIRPLUS), 'always' with FOPEN_KEEP_CACHE (directories with FOPEN_CACHE_DIR). Default 'auto'.
   * timeoutSeconds, when given, overrides the mode's entry/attribute timeout.
   */
  cache?: CacheMode;
  /** Serve SETXATTR/GETXATTR/LISTXATTR/REMOVEXATTR (default false: ENOSYS, as virtiofsd). */
  xattr?: boolean;
  /** Refuse every change to the shared directory with EROFS (default false). */
  readonly?: boolean;
  /**
   * Live migration (see migration.ts): find-paths or file-handles, what a destination does with an
   * inode or handle not found again (default abort), and the two optional checks.
   */
  migration?: Partial<MigrationOptions>;
  /**
   * Offer FUSE_WRITEBACK_CACHE (default false): the guest caches writes and sends them later. Files are
   * then opened read-write even for O_WRONLY (the guest reads to fill partial pages), and O_APPEND is the
   * guest's to apply.
   */
  writeback?: boolean;
  /** Offer FUSE_POSIX_ACL (default false; needs xattr): the guest enforces ACLs, new inodes get default ACLs. */
  posixAcl?: boolean;
  /** Offer FUSE_SUBMOUNTS (default false): directories on another mount are announced as submounts. */
  announceSubmounts?: boolean;
  /**
   * Offer FUSE_HANDLE_KILLPRIV_V2 (default true): the guest leaves clearing set-id bits on write, truncate
   * and chown to the daemon, saving it a SETATTR after them.
   */
  killprivV2?: boolean;
  /**
   * Hold inodes by file handle too (default 'never'): their O_PATH fds become a cache of at most
   * inodeFdCache (default half the open-file limit), so a guest may know more inodes than the limit
   * allows. Needs CAP_DAC_READ_SEARCH (open_by_handle_at): 'prefer' falls back to fds without it, or
   * for an inode whose filesystem has no handles; 'mandatory' refuses to start, or fails that lookup.
   */
  inodeFileHandles?: FileHandleMode;
  inodeFdCache?: number;
  /**
   * Offer FUSE_SECURITY_CTX (the Rust virtiofsd's --security-label): new inodes get the SELinux or
   * Smack label the guest's kernel sends with the create (security-label.ts). Default false.
   */
  securityLabel?: boolean;
}

export type CacheMode = 'never' | 'metadata' | 'auto' | 'always';

/** Entry and attribute validity per cache mode (seconds), as the Rust virtiofsd. */
export const CACHE_TIMEOUT: Record<CacheMode, number> = { never: 0, metadata: 86400, auto: 1, always: 86400 };
