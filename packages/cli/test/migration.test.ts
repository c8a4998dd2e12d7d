// Live migration between two daemons on one share, in process: the simulated front-end plays both
// QEMUs (it stops the source's rings, moves the device state through real pipes, starts the
// destination's rings), the passthrough serves real files. What the guest held on the source (an
// open file, an open directory, names it looked up) must work on the destination without FUSE_INIT.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DEVICE_STATE_NO_FD, Logger, Request, TransferDirection, encodeDeviceStateParams, encodeVringState, pipe2, serve } from '@vfsd/vhost';
import { SimulatedFrontend } from '@vfsd/vhost/testing';
import { EIO, FuseOpcode, VirtioFsDevice, fuse_open_in, fuse_read_in, fuse_release_in, fuse_write_in } from '@vfsd/core';
import { FuseClient } from '@vfsd/core/testing';
import { PassthroughFs, type MigrationOnError, type MigrationOptions } from '@vfsd/passthrough';

const QUEUE_SIZE = 64;

function daemon(share: string, sock: string, migration: Partial<MigrationOptions>, warnings: string[]) {
  const logger: Logger = { error: (m) => warnings.push(`error: ${m}`), warn: (m) => warnings.push(m), info: () => undefined, debug: () => undefined };
  return serve({
    socketPath: sock,
    reconnect: false,
    logger,
    createDevice: () => new VirtioFsDevice({ fs: new PassthroughFs({ sharedDir: share, threadPoolSize: 0, migration }), requestQueues: 1, logger }),
  });
}

async function stopRings(fe: SimulatedFrontend): Promise<void> {
  for (const i of [0, 1]) await fe.getVringBase(i);
}

async function startRings(fe: SimulatedFrontend): Promise<void> {
  for (const i of [0, 1]) {
    await fe.setupQueue(i, QUEUE_SIZE, true, 0);
    await fe.checked(Request.SET_VRING_ENABLE, encodeVringState({ index: i, num: 1 }));
  }
}

async function transfer(fe: SimulatedFrontend, direction: TransferDirection, state?: Buffer): Promise<{ state: Buffer; check: bigint }> {
  const [rd, wr] = pipe2();
  const mine = direction === TransferDirection.SAVE ? rd : wr;
  const theirs = direction === TransferDirection.SAVE ? wr : rd;
  const r = await fe.request(Request.SET_DEVICE_STATE_FD, encodeDeviceStateParams({ direction, phase: 0 }), { fds: [theirs], reply: true });
  expect(r!.readBigUInt64LE(0)).toBe(DEVICE_STATE_NO_FD);
  fs.closeSync(theirs);
  let out = Buffer.alloc(0);
  if (direction === TransferDirection.SAVE) {
    const chunks: Buffer[] = [];
    for await (const c of fs.createReadStream('', { fd: mine }) as AsyncIterable<Buffer>) chunks.push(c);
    out = Buffer.concat(chunks);
  } else {
    await new Promise<void>((resolve, reject) => fs.createWriteStream('', { fd: mine }).on('error', reject).end(state, () => resolve()));
  }
  return { state: out, check: await fe.getU64(Request.CHECK_DEVICE_STATE) };
}

/** The JSON of a device state stream (after its 16-byte header), and a stream made from one. */
function stateJson(b: Buffer): { fs: { inodes: { nodeid: string; path: string | null; handle?: string | null }[] } } {
  return JSON.parse(b.toString('utf8', 16));
}
function stateStream(header: Buffer, json: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(json));
  const h = Buffer.from(header.subarray(0, 16));
  h.writeUInt32LE(body.length, 12);
  return Buffer.concat([h, body]);
}

describe.each(['find-paths', 'file-handles'] as const)('live migration between two daemons on one share (%s)', (mode) => {
  let dir: string;
  let share: string;
  const servers: ReturnType<typeof serve>[] = [];
  const warnings: string[] = [];
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vfsd-migrate-'));
    share = path.join(dir, 'share');
    fs.mkdirSync(path.join(share, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(share, 'sub', 'data.txt'), '');
    for (const n of ['a', 'b', 'c']) fs.writeFileSync(path.join(share, 'sub', n), n);
    fs.writeFileSync(path.join(share, 'doomed'), 'x');
    // The client's requests come as uid 1000: let it write.
    fs.chmodSync(path.join(share, 'sub', 'data.txt'), 0o666);
    warnings.length = 0;
  });
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** The source's guest: looks up, opens, writes; then its state is saved. */
  async function source(onError: MigrationOnError, extra: Partial<MigrationOptions> = {}) {
    servers.push(daemon(share, path.join(dir, 'src.sock'), { mode, onError, ...extra }, warnings));
    const fe = await SimulatedFrontend.connect(path.join(dir, 'src.sock'));
    await fe.negotiate({ numQueues: 2, queueSize: QUEUE_SIZE, migration: true });
    const c = new FuseClient(fe, 1);
    expect((await c.init()).error).toBe(0);
    const sub = (await c.lookup(1n, 'sub')).body.readBigUInt64LE(0);
    const file = (await c.lookup(sub, 'data.txt')).body.readBigUInt64LE(0);
    const doomed = (await c.lookup(1n, 'doomed')).body.readBigUInt64LE(0);
    const fh = (await c.request(FuseOpcode.FUSE_OPEN, file, [c.struct(fuse_open_in, { flags: 2, open_flags: 0 })], 32)).body.readBigUInt64LE(0);
    const dh = (await c.request(FuseOpcode.FUSE_OPENDIR, sub, [c.struct(fuse_open_in, { flags: 0, open_flags: 0 })], 32)).body.readBigUInt64LE(0);
    const first = Buffer.from('first ');
    const w = await c.request(FuseOpcode.FUSE_WRITE, file, [c.struct(fuse_write_in, { fh, offset: 0n, size: first.length, write_flags: 0, lock_owner: 0n, flags: 0 }), first], 24);
    expect(w.error).toBe(0);
    await stopRings(fe);
    const saved = await transfer(fe, TransferDirection.SAVE);
    expect(saved.check).toBe(0n);
    return { fe, sub, file, doomed, fh, dh, state: saved.state };
  }

  async function destination(onError: MigrationOnError, state: Buffer, extra: Partial<MigrationOptions> = {}) {
    servers.push(daemon(share, path.join(dir, 'dst.sock'), { mode, onError, ...extra }, warnings));
    const fe = await SimulatedFrontend.connect(path.join(dir, 'dst.sock'));
    await fe.negotiate({ numQueues: 2, queueSize: QUEUE_SIZE, migration: true });
    await stopRings(fe);
    const loaded = await transfer(fe, TransferDirection.LOAD, state);
    return { fe, check: loaded.check };
  }

  test('the guest goes on with its open file, its open directory and its nodeids, without INIT', async () => {
    const src = await source('abort');
    const dst = await destination('abort', src.state);
    expect(dst.check).toBe(0n);
    await startRings(dst.fe);
    const c = new FuseClient(dst.fe, 1);
    const second = Buffer.from('second');
    const w = await c.request(FuseOpcode.FUSE_WRITE, src.file, [c.struct(fuse_write_in, { fh: src.fh, offset: 6n, size: second.length, write_flags: 0, lock_owner: 0n, flags: 0 }), second], 24);
    expect(w.error).toBe(0);
    const r = await c.request(FuseOpcode.FUSE_READ, src.file, [c.struct(fuse_read_in, { fh: src.fh, offset: 0n, size: 100, read_flags: 0, lock_owner: 0n, flags: 0 })], 16 + 100);
    expect(r.body.toString()).toBe('first second');
    const d = await c.request(FuseOpcode.FUSE_READDIR, src.sub, [c.struct(fuse_read_in, { fh: src.dh, offset: 0n, size: 4096, read_flags: 0, lock_owner: 0n, flags: 0 })], 16 + 4096);
    expect(d.error).toBe(0);
    for (const n of ['a', 'b', 'c', 'data.txt']) expect(d.body.includes(Buffer.from(n))).toBe(true);
    // A name looked up before the move has the nodeid the guest knows.
    expect((await c.lookup(src.sub, 'data.txt')).body.readBigUInt64LE(0)).toBe(src.file);
    expect((await c.getattr(src.doomed)).error).toBe(0);
    const rel = await c.request(FuseOpcode.FUSE_RELEASE, src.file, [c.struct(fuse_release_in, { fh: src.fh, flags: 2, release_flags: 0, lock_owner: 0n })], 16);
    expect(rel.error).toBe(0);
    const reldir = await c.request(FuseOpcode.FUSE_RELEASEDIR, src.sub, [c.struct(fuse_release_in, { fh: src.dh, flags: 0, release_flags: 0, lock_owner: 0n })], 16);
    expect(reldir.error).toBe(0);
    expect(fs.readFileSync(path.join(share, 'sub', 'data.txt'), 'utf8')).toBe('first second');
    src.fe.close();
    dst.fe.close();
  });

  const byPath = mode === 'find-paths' ? test : test.skip;
  const byHandle = mode === 'file-handles' ? test : test.skip;

  byHandle('a file renamed and one unlinked while the source holds them are found by handle', async () => {
    const src = await source('abort');
    fs.renameSync(path.join(share, 'sub', 'data.txt'), path.join(share, 'moved.txt'));
    fs.unlinkSync(path.join(share, 'doomed'));
    const dst = await destination('abort', src.state);
    expect(dst.check).toBe(0n);
    await startRings(dst.fe);
    const c = new FuseClient(dst.fe, 1);
    const more = Buffer.from('more');
    const w = await c.request(FuseOpcode.FUSE_WRITE, src.file, [c.struct(fuse_write_in, { fh: src.fh, offset: 6n, size: more.length, write_flags: 0, lock_owner: 0n, flags: 0 }), more], 24);
    expect(w.error).toBe(0);
    expect(fs.readFileSync(path.join(share, 'moved.txt'), 'utf8')).toBe('first more');
    expect((await c.getattr(src.doomed)).error).toBe(0);
    src.fe.close();
    dst.fe.close();
  });

  test('--migration-verify-handles: a path that leads to another inode now counts as not found', async () => {
    const src = await source('guest-error', { verifyHandles: true });
    // Same name, another inode (the source still holds the old one).
    fs.renameSync(path.join(share, 'sub', 'a'), path.join(share, 'sub', 'a.old'));
    fs.writeFileSync(path.join(share, 'sub', 'data.txt.new'), 'impostor');
    fs.renameSync(path.join(share, 'sub', 'data.txt.new'), path.join(share, 'sub', 'data.txt'));
    const dst = await destination('guest-error', src.state);
    expect(dst.check).toBe(0n);
    if (mode === 'find-paths') expect(warnings.some((w) => /sub\/data.txt: another inode than on the source/.test(w))).toBe(true);
    await startRings(dst.fe);
    const c = new FuseClient(dst.fe, 1);
    // find-paths: EIO rather than the impostor; file-handles: the very inode the guest had.
    const g = await c.getattr(src.file);
    expect(g.error).toBe(mode === 'find-paths' ? -EIO : 0);
    expect(fs.readFileSync(path.join(share, 'sub', 'data.txt'), 'utf8')).toBe('impostor');
    src.fe.close();
    dst.fe.close();
  });

  test('--migration-confirm-paths: each path is opened again on the source and still leads to its inode', async () => {
    const src = await source('guest-error', { confirmPaths: true });
    expect(stateJson(src.state).fs.inodes.every((i) => i.path !== null)).toBe(true);
    src.fe.close();
  });

  byPath('an inode deleted before the destination loads: abort fails the migration', async () => {
    const src = await source('abort');
    fs.unlinkSync(path.join(share, 'doomed'));
    const dst = await destination('abort', src.state);
    expect(dst.check).not.toBe(0n);
    expect(warnings.some((w) => /loading the device state: migration: 1 not found/.test(w))).toBe(true);
    src.fe.close();
    dst.fe.close();
  });

  byPath('an inode deleted before the destination loads: guest-error fails that inode only, with EIO', async () => {
    const src = await source('guest-error');
    fs.unlinkSync(path.join(share, 'doomed'));
    const dst = await destination('guest-error', src.state);
    expect(dst.check).toBe(0n);
    expect(warnings.some((w) => /migration: nodeid \d+: doomed: errno 2/.test(w))).toBe(true);
    await startRings(dst.fe);
    const c = new FuseClient(dst.fe, 1);
    expect((await c.getattr(src.doomed)).error).toBe(-EIO);
    expect((await c.getattr(src.file)).error).toBe(0);
    src.fe.close();
    dst.fe.close();
  });

  byHandle('a file handle that names a file outside the share counts as not found', async () => {
    const src = await source('guest-error');
    // Forge the stream as a hostile source could: the doomed inode's handle replaced by one of a file
    // beside the share (same filesystem).
    const outside = path.join(dir, 'outside.txt');
    fs.writeFileSync(outside, 'secret');
    // Its real handle, from a daemon whose share is the folder around it.
    servers.push(daemon(dir, path.join(dir, 'wide.sock'), { mode }, warnings));
    const wide = await SimulatedFrontend.connect(path.join(dir, 'wide.sock'));
    await wide.negotiate({ numQueues: 2, queueSize: QUEUE_SIZE, migration: true });
    const wc = new FuseClient(wide, 1);
    expect((await wc.init()).error).toBe(0);
    const outsideId = (await wc.lookup(1n, 'outside.txt')).body.readBigUInt64LE(0);
    await stopRings(wide);
    const wideState = stateJson((await transfer(wide, TransferDirection.SAVE)).state);
    const handle = wideState.fs.inodes.find((i) => i.nodeid === String(outsideId))!.handle;
    expect(typeof handle).toBe('string');
    const state = stateJson(src.state);
    state.fs.inodes.find((i) => i.nodeid === String(src.doomed))!.handle = handle;
    const forged = stateStream(src.state, state);
    const dst = await destination('guest-error', forged);
    expect(dst.check).toBe(0n);
    expect(warnings.some((w) => /names a file outside the shared directory/.test(w))).toBe(true);
    await startRings(dst.fe);
    const c = new FuseClient(dst.fe, 1);
    expect((await c.getattr(src.doomed)).error).toBe(-EIO);
    wide.close();
    src.fe.close();
    dst.fe.close();
  });

  test('a stream that is not a vfsd state fails CHECK_DEVICE_STATE and serves nothing odd', async () => {
    const dst = await destination('abort', Buffer.from('garbage, not a state'));
    expect(dst.check).not.toBe(0n);
    expect(warnings.some((w) => /not a vfsd device state/.test(w))).toBe(true);
    dst.fe.close();
  });
});
