// Live migration through real QEMUs: a 6.12 guest under QEMU 10 (the harness's backports flavour)
// holds a file and a directory open, and is migrated to a second QEMU whose vfsd is a second process
// on the same share. After the switch-over it goes on with the same fd and directory handle.
import * as fs from 'fs';
import * as path from 'path';
import { exitWithin, guest, startDaemon, type Daemon } from './e2e-helpers';
import { Qmp } from './qmp';

jest.setTimeout(300_000);

const BACKPORTS = { VFSD_GUEST_FLAVOR: 'backports' };

async function waitFor(what: string, ok: () => boolean, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function migrate(src: Qmp, uri: string): Promise<string> {
  const r = await src.command('migrate', { uri });
  if (r.error) throw new Error(`migrate: ${r.error.desc}`);
  for (;;) {
    const q = (await src.command('query-migrate')).return as { status?: string; 'error-desc'?: string };
    if (q.status === 'completed') return q.status;
    if (q.status === 'failed' || q.status === 'cancelled') throw new Error(`migration ${q.status}: ${q['error-desc'] ?? ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function migrateOnce(args: string[]): Promise<void> {
  await guest.setup(BACKPORTS);
  const a = startDaemon(args, (share) => {
    fs.writeFileSync(path.join(share, 'log.txt'), '');
    fs.mkdirSync(path.join(share, 'dir'));
    fs.writeFileSync(path.join(share, 'dir', 'known'), 'known name\n');
    fs.writeFileSync(path.join(share, 'dir', 'other'), '');
  });
  // The destination serves the same directory: a second process, its own socket.
  let b: Daemon | undefined;
  let srcQmp: Qmp | undefined;
  try {
    b = startDaemon(args);
    fs.rmSync(b.share, { recursive: true });
    fs.symlinkSync(a.share, b.share);
    const migSock = path.join(a.dir, 'migrate.sock');
    const script = 'guestctl log.txt migrate dir dir/known ready go\n';
    const common = { tag: 'vfsdmig', script, timeoutSec: 240, env: BACKPORTS };
    const dst = guest.runGuest({
      ...common,
      socket: b.sock,
      daemonPid: b.child.pid,
      env: { ...common.env, VFSD_GUEST_INCOMING: `unix:${migSock}`, VFSD_GUEST_QMP: path.join(a.dir, 'qmp-dst.sock') },
    });
    const src = guest.runGuest({ ...common, socket: a.sock, env: { ...common.env, VFSD_GUEST_QMP: path.join(a.dir, 'qmp-src.sock') } });
    srcQmp = await Qmp.connect(path.join(a.dir, 'qmp-src.sock'));
    await waitFor('the guest to hold its file and directory', () => fs.existsSync(path.join(a.share, 'ready')), 150_000);
    expect(await migrate(srcQmp, `unix:${migSock}`)).toBe('completed');
    // The source QEMU stays paused after the switch-over: quit it, the guest runs on the destination.
    await srcQmp.command('quit');
    srcQmp.close();
    srcQmp = undefined;
    fs.writeFileSync(path.join(a.share, 'go'), '');
    const r = await dst;
    const s = await src;
    if (process.env.VFSD_E2E_VERBOSE) console.log(r.output, s.code, a.log().split("\n").filter((l) => /state|migrat|LOG|log/i.test(l)).join("\n"), b.log().split("\n").filter((l) => /state|migrat|LOG|loaded/i.test(l)).join("\n"));
    expect(s.harnessError).not.toBeNull(); // the source never saw the script end: it ran on elsewhere
    expect(r.harnessError).toBeNull();
    expect(r.output).toMatch(/^readdir: \d+ entries, known listed$/m);
    expect(r.output).toMatch(/^lookup after: size 11$/m);
    expect(r.output).toMatch(/^closed$/m);
    expect(r.code).toBe(0);
    expect(fs.readFileSync(path.join(a.share, 'log.txt'), 'utf8')).toBe('before\nafter\n');
    expect(a.log()).toMatch(/device state: saving[^]*device state transferred/);
    expect(b.log()).toMatch(/device state: loading[^]*device state transferred[^]*FUSE_WRITE: ok[^]*FUSE_READDIR(PLUS)?: ok/);
    expect(await exitWithin(a, 10_000)).toBe(0);
    expect(await exitWithin(b, 10_000)).toBe(0);
  } finally {
    srcQmp?.close();
    b?.cleanup();
    a.cleanup();
  }
}

test('a guest migrates to a second vfsd with its open file and directory (find-paths)', async () => {
  await migrateOnce([]);
});
