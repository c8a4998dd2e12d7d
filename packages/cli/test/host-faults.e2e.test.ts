// Host faults reach a real guest as errnos, the daemon keeps serving, and it recovers when the fault
// clears: a full filesystem (a 256 KiB tmpfs inside the share: ENOSPC) and the daemon's open-file
// limit (lowered under it with prlimit once the guest's files exist: EMFILE). Needs root (mount,
// prlimit of another process), as CI has.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { exitWithin, guest, lineValue, startDaemon } from './e2e-helpers';

jest.setTimeout(180_000);

const ENOSPC_SCRIPT = `
cd small
dd if=/dev/zero of=fill bs=4096 count=200 2>/tmp/dd.err
echo "dd-error $(grep -c 'No space left on device' /tmp/dd.err)"
echo "fill-bytes $(stat -c %s fill)"
echo "listing $(ls | wc -l)"
rm fill && echo removed
echo recovered > after.txt && echo "after $(cat after.txt)"
cd ..
echo done
`;

test('a full filesystem: the guest sees ENOSPC, the daemon goes on, and writes succeed once space is freed', async () => {
  await guest.setup();
  let mounted = '';
  const d = startDaemon([], (share) => {
    const small = path.join(share, 'small');
    fs.mkdirSync(small);
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'vfsd-enospc', small], { encoding: 'utf8' });
    if (m.status !== 0) throw new Error(`mount tmpfs (needs root): ${m.stderr}`);
    mounted = small;
  });
  try {
    const r = await guest.runGuest({ socket: d.sock, tag: 'vfsdfull', script: ENOSPC_SCRIPT, timeoutSec: 150, daemonPid: d.child.pid });
    if (!/^done$/m.test(r.output)) console.log(`guest output:\n${r.output}\n${r.stderr}`);
    expect(r.harnessError).toBeNull();
    const v = (k: string): string | undefined => lineValue(r.output, k);
    expect(Number(v('dd-error'))).toBeGreaterThan(0);
    // It filled what there was, no more (tmpfs counts whole pages).
    expect(Number(v('fill-bytes'))).toBeGreaterThan(0);
    expect(Number(v('fill-bytes'))).toBeLessThanOrEqual(256 * 1024);
    expect(r.output).toMatch(/^removed$/m);
    expect(v('after')).toBe('recovered');
    expect(fs.readFileSync(path.join(mounted, 'after.txt'), 'utf8')).toBe('recovered\n');
    // The host saw ENOSPC answered (errno 28), not a daemon failure.
    expect(d.log()).toMatch(/FUSE_WRITE: errno -?28/);
    expect(r.code).toBe(0);
    expect(await exitWithin(d, 10_000)).toBe(0);
  } finally {
    if (mounted) spawnSync('umount', ['-l', mounted]);
    d.cleanup();
  }
});

const FILES = 120;
const EMFILE_SCRIPT = `
for i in $(seq 1 ${FILES}); do echo x > f$i; done
echo created
# The host lowers the daemon's open-file limit meanwhile.
sleep 5
pids=
for i in $(seq 1 ${FILES}); do
  ( exec 0<f$i; echo held >>/tmp/held; exec sleep 60 ) 2>>/tmp/open.err &
  pids="$pids $!"
done
sleep 3
echo "held $(grep -c held /tmp/held)"
echo "emfile $(grep -c 'Too many open files' /tmp/open.err)"
echo "stat-at-limit $(stat -c %s f1)"
kill $pids 2>/dev/null
wait
echo "listing $(ls | wc -l)"
echo "after $(cat f${FILES})"
echo done
`;

test("the daemon's open-file limit: the guest sees EMFILE, the daemon goes on, and opens succeed once files are closed", async () => {
  await guest.setup();
  const d = startDaemon([]);
  try {
    const limited = (async () => {
      // Once every file exists (each holds an O_PATH fd in the daemon), leave room for 40 more fds.
      const deadline = Date.now() + 90_000;
      while ((d.log().match(/FUSE_CREATE: ok/g) ?? []).length < FILES) {
        if (Date.now() > deadline || d.child.exitCode !== null) throw new Error('the guest did not create its files');
        await new Promise((r) => setTimeout(r, 20));
      }
      const fds = fs.readdirSync(`/proc/${d.child.pid}/fd`).length;
      const limit = fds + 40;
      const p = spawnSync('prlimit', ['--pid', String(d.child.pid), `--nofile=${limit}:${limit}`], { encoding: 'utf8' });
      if (p.status !== 0) throw new Error(`prlimit: ${p.stderr}`);
      return { fds, limit };
    })();
    limited.catch(() => undefined); // awaited below; a failure there is the test's
    const r = await guest.runGuest({ socket: d.sock, tag: 'vfsdfds', script: EMFILE_SCRIPT, timeoutSec: 150, daemonPid: d.child.pid });
    const { fds, limit } = await limited;
    if (!/^done$/m.test(r.output)) console.log(`guest output:\n${r.output}\n${r.stderr}`);
    expect(r.harnessError).toBeNull();
    const v = (k: string): string | undefined => lineValue(r.output, k);
    console.log(`daemon had ${fds} fds, limit set to ${limit}; guest held ${v('held')} of ${FILES} files open, ${v('emfile')} opens failed`);
    expect(Number(v('emfile'))).toBeGreaterThan(0);
    expect(Number(v('held'))).toBeGreaterThan(0);
    expect(Number(v('held')) + Number(v('emfile'))).toBe(FILES);
    // At the limit what needs no new fd still works (stat of a known file); once the files are
    // closed, so do listing and opening.
    expect(v('stat-at-limit')).toBe('2');
    expect(Number(v('listing'))).toBe(FILES);
    expect(v('after')).toBe('x');
    expect(r.code).toBe(0);
    expect(await exitWithin(d, 10_000)).toBe(0);
  } finally {
    d.cleanup();
  }
});
