// Two guests, one share (as Kata and kubevirt users share a volume): two QEMU guests, each with its
// own vfsd, on one host directory. What guest A writes and fsyncs, guest B reads; the POSIX lock, the
// flock and the OFD lock A holds, B sees (F_GETLK, a refused LOCK_NB) and waits for until A lets go.
// Both daemons take the guests' locks on the host (OFD locks and flock), so the host's kernel is
// what coordinates them.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { exitWithin, guest, startDaemon } from './e2e-helpers';

jest.setTimeout(240_000);

const HOLD_SECONDS = 15;

const A = `
echo "written by A" > data.txt && sync
( sleep ${HOLD_SECONDS} ) | guestctl lock.txt hold > /tmp/posix &
( sleep ${HOLD_SECONDS} ) | guestctl flock.txt hold-flock > /tmp/flock &
( sleep ${HOLD_SECONDS} ) | guestctl ofd.txt hold-ofd > /tmp/ofd &
for f in posix flock ofd; do while ! grep -q held /tmp/$f 2>/dev/null; do sleep 0.1; done; done
echo held > a-held
echo "A holds"
wait
echo "A released"
`;

const B = `
n=0; while [ ! -e a-held ] && [ $n -lt 600 ]; do sleep 0.1; n=$((n+1)); done
echo "B reads: $(cat data.txt)"
echo "B getlk: $(guestctl lock.txt getlk)"
guestctl flock.txt flock 2>&1 | sed 's/^/B flock-nb: /'
guestctl lock.txt setlkw | sed 's/^/B posix: /' &
guestctl flock.txt wait-flock | sed 's/^/B flock: /' &
guestctl ofd.txt wait-ofd | sed 's/^/B ofd: /' &
wait
echo "B done"
`;

test.each(['auto', 'never'])('--cache %s: locks taken in one guest are seen and waited for in the other; data fsynced by one is read by the other', async (cache) => {
  await guest.setup();
  const share = fs.mkdtempSync(path.join(os.tmpdir(), 'vfsd-two-'));
  for (const f of ['lock.txt', 'flock.txt', 'ofd.txt']) fs.writeFileSync(path.join(share, f), 'x\n');
  const da = startDaemon(['--cache', cache], undefined, share);
  const db = startDaemon(['--cache', cache], undefined, share);
  try {
    const [ra, rb] = await Promise.all([
      guest.runGuest({ socket: da.sock, tag: 'vfsda', script: A, timeoutSec: 200, daemonPid: da.child.pid }),
      guest.runGuest({ socket: db.sock, tag: 'vfsdb', script: B, timeoutSec: 200, daemonPid: db.child.pid }),
    ]);
    if (!/^A released$/m.test(ra.output) || !/^B done$/m.test(rb.output)) console.log(`A:\n${ra.output}\n${ra.stderr}\nB:\n${rb.output}\n${rb.stderr}`);
    expect([ra.harnessError, rb.harnessError]).toEqual([null, null]);
    expect(ra.output).toMatch(/^A holds$/m);
    expect(rb.output).toMatch(/^B reads: written by A$/m);
    // A's lock, seen from B (its pid is of another guest: only the type and range are B's to check).
    expect(rb.output).toMatch(/^B getlk: locked type=W pid=-?\d+ start=0 len=0$/m);
    expect(rb.output).toMatch(/^B flock-nb: guestctl: flock: Resource temporarily unavailable$/m);
    // Each wait ended when A let go: it lasted a good part of A's hold, not zero.
    const waited = (k: string): number => Number(new RegExp(`^B ${k}: acquired after (\\d+) ms$`, 'm').exec(rb.output)?.[1] ?? -1);
    console.log(`--cache ${cache}: B waited: posix ${waited('posix')} ms, flock ${waited('flock')} ms, ofd ${waited('ofd')} ms (A held them ${HOLD_SECONDS} s)`);
    for (const k of ['posix', 'flock', 'ofd']) expect(waited(k)).toBeGreaterThan(1000);
    expect([ra.code, rb.code]).toEqual([0, 0]);
    expect(await exitWithin(da, 10_000)).toBe(0);
    expect(await exitWithin(db, 10_000)).toBe(0);
  } finally {
    da.cleanup();
    db.cleanup();
    fs.rmSync(share, { recursive: true, force: true });
  }
});
