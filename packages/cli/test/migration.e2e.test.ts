// Live migration through real QEMUs: a 6.12 guest under QEMU 10 (the harness's backports flavour)
// holds a file and a directory open, and is migrated to a second QEMU whose vfsd is a second process
// on the same share. After the switch-over it goes on with the same fd and directory handle.
import * as fs from 'fs';
import * as path from 'path';
import { guest, startDaemon, type Daemon } from './e2e-helpers';
import { Qmp } from './qmp';
import { waitFor } from '@vfsd/core/testing';

jest.setTimeout(300_000);

const BACKPORTS = { VFSD_GUEST_FLAVOR: 'backports' };

/** Migrates and waits for the outcome: 'completed', or 'failed' (the destination refused the state). */
async function migrate(src: Qmp, uri: string): Promise<string> {
  const r = await src.command('migrate', { uri });
  if (r.error) throw new Error(`migrate: ${r.error.desc}`);
  const until = Date.now() + 120_000;
  for (;;) {
    const q = (await src.command('query-migrate')).return as { status?: string };
    if (q.status === 'completed' || q.status === 'failed' || q.status === 'cancelled') return q.status;
    if (Date.now() > until) throw new Error(`migration still ${q.status} after 120 s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

interface Case {
  args: string[];
  /** Delete this file (which the guest holds open) on the host before migrating. */
  deleteVictim?: boolean;
  expectMigration: 'completed' | 'failed';
}

async function migrateOnce(c: Case) {
  await guest.setup(BACKPORTS);
  const a = startDaemon(c.args, (share) => {
    fs.writeFileSync(path.join(share, 'log.txt'), '');
    fs.mkdirSync(path.join(share, 'dir'));
    fs.writeFileSync(path.join(share, 'dir', 'known'), 'known name\n');
    fs.writeFileSync(path.join(share, 'dir', 'other'), '');
    fs.writeFileSync(path.join(share, 'victim'), 'doomed');
  });
  // The destination serves the same directory: a second process, its own socket.
  let b: Daemon | undefined;
  const qmps: Qmp[] = [];
  try {
    b = startDaemon(c.args);
    fs.rmSync(b.share, { recursive: true });
    fs.symlinkSync(a.share, b.share);
    const migSock = path.join(a.dir, 'migrate.sock');
    const script = 'guestctl log.txt migrate dir dir/known ready go victim\n';
    const common = { tag: 'vfsdmig', script, timeoutSec: 240, env: BACKPORTS };
    const dst = guest.runGuest({
      ...common,
      socket: b.sock,
      env: { ...common.env, VFSD_GUEST_INCOMING: `unix:${migSock}`, VFSD_GUEST_QMP: path.join(a.dir, 'qmp-dst.sock') },
    });
    const src = guest.runGuest({ ...common, socket: a.sock, env: { ...common.env, VFSD_GUEST_QMP: path.join(a.dir, 'qmp-src.sock') } });
    const srcQmp = await Qmp.connect(path.join(a.dir, 'qmp-src.sock'));
    const dstQmp = await Qmp.connect(path.join(a.dir, 'qmp-dst.sock'));
    qmps.push(srcQmp, dstQmp);
    // A return path: the destination tells the source when it refuses the state, and the source goes on.
    for (const q of [srcQmp, dstQmp]) {
      const r = await q.command('migrate-set-capabilities', { capabilities: [{ capability: 'return-path', state: true }] });
      if (r.error) throw new Error(`migrate-set-capabilities: ${r.error.desc}`);
    }
    await waitFor(() => fs.existsSync(path.join(a.share, 'ready')), 'the guest to hold its file and directory', 150_000);
    if (c.deleteVictim) fs.unlinkSync(path.join(a.share, 'victim'));
    const outcome = await migrate(srcQmp, `unix:${migSock}`);
    expect(outcome).toBe(c.expectMigration);
    // The QEMU that lost the guest stays paused (source) or waiting (destination): quit it.
    await (outcome === 'completed' ? srcQmp : dstQmp).command('quit');
    fs.writeFileSync(path.join(a.share, 'go'), '');
    const [r, s] = await Promise.all([dst, src]);
    if (process.env.VFSD_E2E_VERBOSE) console.log({ dst: r.output, dstCode: r.code, src: s.output, srcCode: s.code }, a.log().split('\n').filter((l) => /state|migrat/i.test(l)).join('\n'), b.log().split('\n').filter((l) => /state|migrat/i.test(l)).join('\n'));
    // The guest ran on where it ended up; the other QEMU never saw its script end.
    const [ran, left] = outcome === 'completed' ? [r, s] : [s, r];
    expect(left.harnessError).not.toBeNull();
    expect(ran.harnessError).toBeNull();
    expect(ran.output).toMatch(/^readdir: \d+ entries, known listed$/m);
    expect(ran.output).toMatch(/^lookup after: size 11$/m);
    expect(ran.output).toMatch(/^closed$/m);
    expect(ran.code).toBe(0);
    expect(fs.readFileSync(path.join(a.share, 'log.txt'), 'utf8')).toBe('before\nafter\n');
    expect(a.log()).toMatch(/device state: saving[^]*device state transferred/);
    return { output: ran.output, src: a, dst: b };
  } finally {
    for (const q of qmps) q.close();
    b?.cleanup();
    a.cleanup();
  }
}

test('a guest migrates to a second vfsd with its open file and directory (find-paths)', async () => {
  const { dst } = await migrateOnce({ args: [], expectMigration: 'completed' });
  expect(dst.log()).toMatch(/device state: loading[^]*device state transferred[^]*FUSE_WRITE: ok[^]*FUSE_READDIR(PLUS)?: ok/);
});

test('the same with --migration-mode file-handles, and a file deleted meanwhile that the guest holds open is found', async () => {
  const { output, dst } = await migrateOnce({ args: ['--migration-mode', 'file-handles', '--cache', 'never'], deleteVictim: true, expectMigration: 'completed' });
  expect(output).toMatch(/^victim: ok$/m);
  expect(dst.log()).toMatch(/FUSE_WRITE: ok/);
});

test('find-paths, a held file deleted meanwhile: abort fails the migration and the source guest goes on', async () => {
  const { output, dst } = await migrateOnce({ args: ['--cache', 'never'], deleteVictim: true, expectMigration: 'failed' });
  expect(output).toMatch(/^victim: ok$/m);
  expect(dst.log()).toMatch(/loading the device state: migration: \d+ not found/);
});

test('find-paths, a held file deleted meanwhile: guest-error gives the guest EIO on that file only', async () => {
  const { output } = await migrateOnce({ args: ['--cache', 'never', '--migration-on-error', 'guest-error'], deleteVictim: true, expectMigration: 'completed' });
  expect(output).toMatch(/^victim: Input\/output error$/m);
});
