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
import { PassthroughFs, type MigrationOnError } from '@vfsd/passthrough';

const QUEUE_SIZE = 64;

function daemon(share: string, sock: string, onError: MigrationOnError, warnings: string[]) {
  const logger: Logger = { error: (m) => warnings.push(`error: ${m}`), warn: (m) => warnings.push(m), info: () => undefined, debug: () => undefined };
  return serve({
    socketPath: sock,
    reconnect: false,
    logger,
    createDevice: () => new VirtioFsDevice({ fs: new PassthroughFs({ sharedDir: share, threadPoolSize: 0, migrationOnError: onError }), requestQueues: 1, logger }),
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

describe('live migration between two daemons on one share', () => {
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
  async function source(onError: MigrationOnError) {
    servers.push(daemon(share, path.join(dir, 'src.sock'), onError, warnings));
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

  async function destination(onError: MigrationOnError, state: Buffer) {
    servers.push(daemon(share, path.join(dir, 'dst.sock'), onError, warnings));
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

  test('an inode deleted before the destination loads: abort fails the migration', async () => {
    const src = await source('abort');
    fs.unlinkSync(path.join(share, 'doomed'));
    const dst = await destination('abort', src.state);
    expect(dst.check).not.toBe(0n);
    expect(warnings.some((w) => /loading the device state: migration: 1 not found/.test(w))).toBe(true);
    src.fe.close();
    dst.fe.close();
  });

  test('an inode deleted before the destination loads: guest-error fails that inode only, with EIO', async () => {
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

  test('a stream that is not a vfsd state fails CHECK_DEVICE_STATE and serves nothing odd', async () => {
    const dst = await destination('abort', Buffer.from('garbage, not a state'));
    expect(dst.check).not.toBe(0n);
    expect(warnings.some((w) => /not a vfsd device state/.test(w))).toBe(true);
    dst.fe.close();
  });
});
