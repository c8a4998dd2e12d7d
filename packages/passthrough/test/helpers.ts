// Builders for the decoded requests a PassthroughFs receives from the server, and a temp directory.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  FUSE_INIT_EXT,
  FUSE_ROOT_ID,
  FuseOpcode,
  splitInitFlags,
  type InitRequest,
  type FuseFileLock,
  type FuseInHeader,
  type RequestContext,
  type FlushRequest,
  type GetattrRequest,
  type LkRequest,
  type LookupRequest,
  type OpenRequest,
  type ReleaseRequest,
  type ForgetRequest,
  fuseAttrOf,
  type FuseAttrOut,
  type FuseAttrOutReply,
  type FuseEntryOut,
  type FuseEntryOutReply,
  type ReadReply,
  type ReadRequest,
  type ReadTarget,
} from '@vfsd/core';
import { DirentCollector, type ListedEntry } from '@vfsd/core/testing';
import type { PassthroughFs } from '../src/passthrough-fs';

let nextUnique = 1n;

export function header(opcode: FuseOpcode, nodeid: bigint): FuseInHeader {
  return { len: 0, opcode, unique: nextUnique++, nodeid, uid: 0, gid: 0, pid: 1, total_extlen: 0 };
}

export function ctx(signal: AbortSignal = new AbortController().signal): RequestContext {
  return { unique: nextUnique++, uid: 0, gid: 0, pid: 1, signal };
}

function base<K extends FuseOpcode>(opcode: K, nodeid: bigint) {
  return { opcode, noReply: false as const, header: header(opcode, nodeid), ext: undefined };
}

/** A decoded request: opcode, header for nodeid, and the rest of its fields (loosely typed, for tests). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function rq(opcode: FuseOpcode, nodeid: bigint, fields: Record<string, unknown> = {}): any {
  return { opcode, noReply: false, header: header(opcode, nodeid), ext: undefined, ...fields };
}

/** What a Linux 6.x guest sends: every flag it knows of (the passthrough offers a subset). */
export function initReq(flags: bigint = (1n << 64n) - 1n): InitRequest {
  const split = splitInitFlags(flags | FUSE_INIT_EXT);
  return { ...base(FuseOpcode.FUSE_INIT, 0n), arg: { major: 7, minor: 38, max_readahead: 131072, flags: split.flags, flags2: split.flags2 } as InitRequest['arg'] };
}

export function lookupReq(name: string | Buffer, parent: bigint = FUSE_ROOT_ID): LookupRequest {
  return { ...base(FuseOpcode.FUSE_LOOKUP, parent), name: Buffer.isBuffer(name) ? name : Buffer.from(name) };
}

export function forgetReq(nodeid: bigint, nlookup: bigint): ForgetRequest {
  return { ...base(FuseOpcode.FUSE_FORGET, nodeid), noReply: true, arg: { nlookup } };
}

export function getattrReq(nodeid: bigint): GetattrRequest {
  return { ...base(FuseOpcode.FUSE_GETATTR, nodeid), arg: { getattr_flags: 0, fh: 0n } };
}

export function openReq(nodeid: bigint, flags: number): OpenRequest<FuseOpcode.FUSE_OPEN> {
  return { ...base(FuseOpcode.FUSE_OPEN, nodeid), arg: { flags, open_flags: 0 } };
}

export function releaseReq(nodeid: bigint, fh: bigint, lockOwner = 0n, releaseFlags = 0): ReleaseRequest<FuseOpcode.FUSE_RELEASE> {
  return { ...base(FuseOpcode.FUSE_RELEASE, nodeid), arg: { fh, flags: 0, release_flags: releaseFlags, lock_owner: lockOwner } };
}

export function flushReq(nodeid: bigint, fh: bigint, lockOwner: bigint): FlushRequest {
  return { ...base(FuseOpcode.FUSE_FLUSH, nodeid), arg: { fh, lock_owner: lockOwner } };
}

export const OFFSET_MAX = 0x7fffffffffffffffn;
export const F_RDLCK = 0;
export const F_WRLCK = 1;
export const F_UNLCK = 2;

export function lock(type: number, start = 0n, end = OFFSET_MAX): FuseFileLock {
  return { start, end, type, pid: 0 };
}

export function lkReq<K extends FuseOpcode.FUSE_GETLK | FuseOpcode.FUSE_SETLK | FuseOpcode.FUSE_SETLKW>(
  opcode: K,
  nodeid: bigint,
  owner: bigint,
  lk: FuseFileLock,
  lkFlags = 0,
): LkRequest<K> {
  return { ...base(opcode, nodeid), arg: { fh: 0n, owner, lk, lk_flags: lkFlags } };
}

export function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'vfsd-pt-'));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Threads of this process (Node's own plus any workers alive). */
export function threadCount(): number {
  return fs.readdirSync('/proc/self/task').length;
}

/** A reply as the tests read it: attrs given as wire bytes decoded to their fields. */
type Decoded<R> = R extends FuseEntryOutReply
  ? FuseEntryOut
  : R extends FuseAttrOutReply
    ? FuseAttrOut
    : R extends { entry: FuseEntryOutReply; open: infer O }
      ? { entry: FuseEntryOut; open: O }
      : R;

/** A readdir's entries as the tests read them. */
export type Listed = Array<Omit<ListedEntry, 'entry'> & { entry?: FuseEntryOut }>;

/** Each method's answer as a promise of its decoded reply (inline answers and promises alike). */
export type Promised<T> = {
  [K in keyof T]: T[K] extends (...args: infer A) => infer R ? (...args: A) => Promise<Decoded<Awaited<R>>> : T[K];
};

/** Replaces attrs given as wire bytes (in entries, attr replies, create replies, dirent lists) by their fields. */
function decodeReply(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(decodeReply);
  if (v !== null && typeof v === 'object' && !(v instanceof Uint8Array)) {
    const o = v as Record<string, unknown>;
    if (o.attr instanceof Uint8Array) return { ...o, attr: fuseAttrOf(o.attr) };
    if (o.entry !== undefined && typeof o.entry === 'object') return { ...o, entry: decodeReply(o.entry) };
  }
  return v;
}

export type PromisedPassthrough = Omit<Promised<PassthroughFs>, 'read' | 'readdir'> & {
  /** The entries readdir adds to a sink of req.arg.size bytes. */
  readdir(ctx: RequestContext, req: ReadRequest<FuseOpcode.FUSE_READDIR | FuseOpcode.FUSE_READDIRPLUS>, plus: boolean): Promise<Listed>;
  read(ctx: RequestContext, req: ReadRequest<FuseOpcode.FUSE_READ>): Promise<Uint8Array>;
  read(ctx: RequestContext, req: ReadRequest<FuseOpcode.FUSE_READ>, into: ReadTarget | undefined): Promise<ReadReply>;
};

/**
 * The filesystem with every method answering a promise: an inline answer resolves, an inline throw
 * rejects (the server treats both alike; tests can then use .then/.rejects on any call).
 */
export function promised(pfs: PassthroughFs): PromisedPassthrough {
  return new Proxy(pfs, {
    get(target, key, receiver) {
      const v: unknown = Reflect.get(target, key, receiver);
      if (typeof v !== 'function') return v;
      if (key === 'readdir') {
        return async (c: RequestContext, req: ReadRequest<FuseOpcode.FUSE_READDIR>, plus: boolean) => {
          const sink = new DirentCollector(plus, req.arg.size);
          await target.readdir(c, req, sink);
          return decodeReply(sink.entries);
        };
      }
      return (...args: unknown[]) => {
        try {
          return Promise.resolve((v as (...a: unknown[]) => unknown).apply(target, args)).then(decodeReply);
        } catch (e) {
          return Promise.reject(e);
        }
      };
    },
  }) as unknown as PromisedPassthrough;
}
