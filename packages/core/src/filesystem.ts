// The boundary between the FUSE server (core) and a filesystem (the passthrough, or an in-memory one
// in tests), as the Rust virtiofsd's FileSystem trait: one method per FUSE operation, taking the
// decoded request (kernel field names) and answering with the reply struct, inline or as a promise. A missing method is
// answered ENOSYS. Errors are FsError(errno); anything else thrown becomes EIO.
import type {
  AccessRequest,
  BatchForgetRequest,
  CopyFileRangeRequest,
  CreateRequest,
  FallocateRequest,
  FlushRequest,
  ForgetRequest,
  FsyncRequest,
  FuseAttrOutReply,
  FuseEntryOutReply,
  FuseFileLock,
  FuseInitOut,
  FuseKstatfs,
  FuseOpenOut,
  FuseOpcode,
  GetattrRequest,
  GetxattrRequest,
  InitRequest,
  LinkRequest,
  ListxattrRequest,
  LkRequest,
  LookupRequest,
  LseekRequest,
  MkdirRequest,
  MknodRequest,
  OpenRequest,
  ReadRequest,
  ReadlinkRequest,
  ReleaseRequest,
  RemovexattrRequest,
  Rename2Request,
  RenameRequest,
  SetattrRequest,
  SetxattrRequest,
  StatfsRequest,
  SymlinkRequest,
  SyncfsRequest,
  TmpfileRequest,
  UnlinkRequest,
  WriteRequest,
  DestroyRequest,
} from './fuse';
import type { Awaitable } from './awaitable';

/** Who asks, and a signal aborted by FUSE_INTERRUPT or when the front-end goes away. */
export interface RequestContext {
  readonly unique: bigint;
  readonly uid: number;
  readonly gid: number;
  readonly pid: number;
  readonly signal: AbortSignal;
}

/** A failure with the errno the guest sees (positive, e.g. ENOENT = 2). */
export class FsError extends Error {
  constructor(
    readonly errno: number,
    message?: string,
  ) {
    super(message ?? `errno ${errno}`);
    this.name = 'FsError';
  }
}

/**
 * Thrown by a request-queue thread's filesystem for a request it cannot answer there (an inode or
 * handle it does not see): the request is served on the main thread instead. Throw it before writing.
 */
export class ServeElsewhere extends Error {
  constructor() {
    super('served on the main thread');
    this.name = 'ServeElsewhere';
  }
}

/**
 * The part of a filesystem a request-queue thread runs: `module` (an absolute path) exports
 * `createQueueFs(data)`, a filesystem for `opcodes` only, which may throw ServeElsewhere; `data` is
 * structured-cloned into the thread (SharedArrayBuffers stay shared).
 */
export interface QueueThreadPart {
  module: string;
  data: unknown;
}

/** What a QueueThreadPart's module makes in its thread. */
export interface QueueFs extends FileSystem {
  /** The opcodes it answers in the thread (every other request goes to the main thread). */
  readonly opcodes: ReadonlySet<number>;
}

/** What INIT negotiates: the server fills the protocol fields, the filesystem its wishes. */
export type InitReply = Partial<Omit<FuseInitOut, 'major' | 'minor'>>;

/**
 * Where readdir puts its entries, in order: the server packs each into the reply as it comes (as the
 * Rust virtiofsd's add-entry callback), so a filesystem never sizes records itself.
 */
export interface DirentSink {
  /** READDIRPLUS: each entry carries its entry_out and counts as a lookup once added. */
  readonly plus: boolean;
  /** Bytes left for records (what a filesystem that lists elsewhere, a pool worker, may fill). */
  readonly left: number;
  /** Whether an entry whose name has `nameLen` bytes still fits: ask before looking one up. */
  fits(nameLen: number): boolean;
  /**
   * Adds one entry: `off` is the cookie of the next, `type` a DT_* value, `name` raw bytes (copied, so
   * a view of a reused buffer will do); with READDIRPLUS `entry` is the entry as a LOOKUP gives it
   * (nodeid 0: no attributes). False when it does not fit: nothing was added, the listing ends.
   */
  add(ino: bigint, off: bigint, type: number, name: Uint8Array, entry?: FuseEntryOutReply): boolean;
}

/**
 * How a read's data comes back: bytes (copied into the chain by the server), or `placed`: that many
 * bytes the filesystem wrote itself into the ReadTarget it was given (no copy).
 */
export type ReadReply = Uint8Array | { readonly placed: number };

/**
 * Where a READ's data can go directly: the guest's buffers after the reply header, in order (views of
 * guest memory), at least the request's size in all. Given only when the chain has room for it.
 */
export interface ReadTarget {
  readonly buffers: readonly Uint8Array[];
}

export interface FileSystem {
  init?(ctx: RequestContext, req: InitRequest): Awaitable<InitReply>;
  destroy?(ctx: RequestContext, req: DestroyRequest): Awaitable<void>;
  lookup?(ctx: RequestContext, req: LookupRequest): Awaitable<FuseEntryOutReply>;
  forget?(req: ForgetRequest): void;
  batchForget?(req: BatchForgetRequest): void;
  getattr?(ctx: RequestContext, req: GetattrRequest): Awaitable<FuseAttrOutReply>;
  setattr?(ctx: RequestContext, req: SetattrRequest): Awaitable<FuseAttrOutReply>;
  readlink?(ctx: RequestContext, req: ReadlinkRequest): Awaitable<Buffer>;
  symlink?(ctx: RequestContext, req: SymlinkRequest): Awaitable<FuseEntryOutReply>;
  mknod?(ctx: RequestContext, req: MknodRequest): Awaitable<FuseEntryOutReply>;
  mkdir?(ctx: RequestContext, req: MkdirRequest): Awaitable<FuseEntryOutReply>;
  unlink?(ctx: RequestContext, req: UnlinkRequest<FuseOpcode.FUSE_UNLINK>): Awaitable<void>;
  rmdir?(ctx: RequestContext, req: UnlinkRequest<FuseOpcode.FUSE_RMDIR>): Awaitable<void>;
  rename?(ctx: RequestContext, req: RenameRequest | Rename2Request): Awaitable<void>;
  link?(ctx: RequestContext, req: LinkRequest): Awaitable<FuseEntryOutReply>;
  open?(ctx: RequestContext, req: OpenRequest<FuseOpcode.FUSE_OPEN>): Awaitable<FuseOpenOut>;
  create?(ctx: RequestContext, req: CreateRequest): Awaitable<{ entry: FuseEntryOutReply; open: FuseOpenOut }>;
  tmpfile?(ctx: RequestContext, req: TmpfileRequest): Awaitable<{ entry: FuseEntryOutReply; open: FuseOpenOut }>;
  read?(ctx: RequestContext, req: ReadRequest<FuseOpcode.FUSE_READ>, into?: ReadTarget): Awaitable<ReadReply>;
  write?(ctx: RequestContext, req: WriteRequest): Awaitable<number>;
  flush?(ctx: RequestContext, req: FlushRequest): Awaitable<void>;
  release?(ctx: RequestContext, req: ReleaseRequest<FuseOpcode.FUSE_RELEASE>): Awaitable<void>;
  fsync?(ctx: RequestContext, req: FsyncRequest<FuseOpcode.FUSE_FSYNC>): Awaitable<void>;
  opendir?(ctx: RequestContext, req: OpenRequest<FuseOpcode.FUSE_OPENDIR>): Awaitable<FuseOpenOut>;
  /** Entries from req.arg.offset on, added to `sink` until it refuses one or the directory ends. */
  readdir?(ctx: RequestContext, req: ReadRequest<FuseOpcode.FUSE_READDIR | FuseOpcode.FUSE_READDIRPLUS>, sink: DirentSink): Awaitable<void>;
  releasedir?(ctx: RequestContext, req: ReleaseRequest<FuseOpcode.FUSE_RELEASEDIR>): Awaitable<void>;
  fsyncdir?(ctx: RequestContext, req: FsyncRequest<FuseOpcode.FUSE_FSYNCDIR>): Awaitable<void>;
  statfs?(ctx: RequestContext, req: StatfsRequest): Awaitable<FuseKstatfs>;
  access?(ctx: RequestContext, req: AccessRequest): Awaitable<void>;
  setxattr?(ctx: RequestContext, req: SetxattrRequest): Awaitable<void>;
  /** Resolves with the value; the server answers the size-only form (arg.size 0) itself. */
  getxattr?(ctx: RequestContext, req: GetxattrRequest): Awaitable<Buffer>;
  listxattr?(ctx: RequestContext, req: ListxattrRequest): Awaitable<Buffer>;
  removexattr?(ctx: RequestContext, req: RemovexattrRequest): Awaitable<void>;
  getlk?(ctx: RequestContext, req: LkRequest<FuseOpcode.FUSE_GETLK>): Awaitable<FuseFileLock>;
  /** SETLK and SETLKW (`wait`): a waiting lock must give up with EINTR when ctx.signal aborts. */
  setlk?(ctx: RequestContext, req: LkRequest<FuseOpcode.FUSE_SETLK | FuseOpcode.FUSE_SETLKW>, wait: boolean): Awaitable<void>;
  fallocate?(ctx: RequestContext, req: FallocateRequest): Awaitable<void>;
  lseek?(ctx: RequestContext, req: LseekRequest): Awaitable<bigint>;
  copyFileRange?(ctx: RequestContext, req: CopyFileRangeRequest): Awaitable<number>;
  syncfs?(ctx: RequestContext, req: SyncfsRequest): Awaitable<void>;
  /** The session ended (DESTROY or disconnect): release everything; blocked calls are cancelled. */
  shutdown?(): Promise<void>;
  /**
   * Live migration, with every queue stopped: what the guest depends on (the inodes it knows, the
   * handles it holds) as JSON data that loadState() of the destination's filesystem rebuilds.
   */
  saveState?(): Awaitable<MigrationState>;
  /**
   * Before the destination's queues start: rebuilds saveState()'s state, or throws (the migration
   * fails). Returns warnings for the log (what the guest will find missing).
   */
  loadState?(state: MigrationState): Awaitable<readonly string[] | void>;
  /** What a request-queue thread runs of this filesystem (see QueueThreadPart); none: every request is the main thread's. */
  queueThreadPart?(): QueueThreadPart | undefined;
}

/** What moves in a migration stream: plain JSON (bigints as decimal strings). */
export type MigrationState = string | number | boolean | null | MigrationState[] | { [key: string]: MigrationState };
