// QEMU killed mid-workload: vfsd exits cleanly (default) or serves the next guest (--keep-serving),
// and nothing the guest wrote before its last fsync is lost.
import { execFileSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { exitWithin, guest, startDaemon, type Daemon } from './e2e-helpers';

jest.setTimeout(240_000);

const WORKLOAD = [
  'dd if=/dev/urandom of=data.bin bs=1M count=8 2>/dev/null',
  'md5sum data.bin | cut -d" " -f1 > data.md5',
  'sync data.bin data.md5',
  'echo synced > marker && sync marker',
  // Keeps writing until QEMU is killed under it.
  'while true; do dd if=/dev/urandom of=junk bs=64k count=16 2>/dev/null; done',
].join('\n');

async function killQemuAfterFsync(d: Daemon): Promise<void> {
  const marker = path.join(d.share, 'marker');
  const t0 = Date.now();
  while (!(fs.existsSync(marker) && fs.readFileSync(marker, 'utf8') === 'synced\n')) {
    if (Date.now() - t0 > 150_000) throw new Error('the guest never reached its fsync');
    await new Promise((r) => setTimeout(r, 50));
  }
  await new Promise((r) => setTimeout(r, 300)); // mid-workload: the write loop is running
  const pids = execFileSync('pgrep', ['-f', `qemu-system.*${d.sock}`], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
  expect(pids.length).toBeGreaterThan(0);
  for (const pid of pids) process.kill(Number(pid), 'SIGKILL');
}

function fsyncedDataIntact(share: string): void {
  const data = fs.readFileSync(path.join(share, 'data.bin'));
  expect(data.length).toBe(8 << 20);
  expect(crypto.createHash('md5').update(data).digest('hex')).toBe(fs.readFileSync(path.join(share, 'data.md5'), 'utf8').trim());
}

test('QEMU killed mid-workload: vfsd exits cleanly and the fsynced data is on the host', async () => {
  await guest.setup();
  const d = startDaemon();
  try {
    const run = guest.runGuest({ socket: d.sock, tag: 'vfsdkill', script: WORKLOAD, timeoutSec: 200 });
    await killQemuAfterFsync(d);
    const r = await run;
    expect(r.harnessError).not.toBeNull(); // the guest died, as intended
    expect(await exitWithin(d, 15_000)).toBe(0);
    expect(d.log()).toMatch(/front-end disconnected/);
    expect(fs.existsSync(d.sock)).toBe(false);
    fsyncedDataIntact(d.share);
  } finally {
    d.cleanup();
  }
});

test('QEMU killed mid-workload with --keep-serving: the next guest is served and reads the fsynced data', async () => {
  await guest.setup();
  const d = startDaemon(['--keep-serving']);
  try {
    const run = guest.runGuest({ socket: d.sock, tag: 'vfsdkill', script: WORKLOAD, timeoutSec: 200 });
    await killQemuAfterFsync(d);
    await run;
    await d.waitForLog(/front-end disconnected/, 15_000);
    expect(d.child.exitCode).toBeNull();
    fsyncedDataIntact(d.share);
    const again = await guest.runGuest({ socket: d.sock, tag: 'vfsdkill', script: '[ "$(md5sum data.bin | cut -d" " -f1)" = "$(cat data.md5)" ] && echo intact\n', timeoutSec: 120 });
    expect(again.output).toContain('intact');
    expect(again.code).toBe(0);
    expect(d.child.exitCode).toBeNull(); // still serving
    d.child.kill('SIGTERM');
    expect(await exitWithin(d, 15_000)).toBe(0);
  } finally {
    d.cleanup();
  }
});
