// What a guest fsynced survives the daemon's death: a guest appends 4 KiB records and fsyncs each,
// printing the index once fsync returned; the host kills vfsd with SIGKILL at a random moment; then
// every acknowledged record is on disk, read back by the host itself.
import * as fs from 'fs';
import * as path from 'path';
import { guest, startDaemon } from './e2e-helpers';

jest.setTimeout(180_000);

test.each([[[]], [['--writeback']], [['--thread-pool-size', '4']]])('vfsd %j: SIGKILL at a random moment loses no fsynced byte', async (args) => {
  await guest.setup();
  const d = startDaemon(args as string[]);
  try {
    // Kill after a random number of FSYNCs (between 20 and 80) have been answered.
    const after = 20 + Math.floor(Math.random() * 60);
    const killed = (async () => {
      for (;;) {
        const n = (d.log().match(/FUSE_FSYNC: ok/g) ?? []).length;
        if (n >= after) break;
        await new Promise((r) => setTimeout(r, 5 + Math.random() * 20));
      }
      d.child.kill('SIGKILL');
    })();
    const r = await guest.runGuest({ socket: d.sock, tag: 'vfsdkill', script: 'guestctl log.bin fsync-loop\n', timeoutSec: 150, daemonPid: d.child.pid });
    await killed;
    expect(r.harnessError).toBe('DAEMON'); // the daemon died under the running guest, as meant
    const acked = [...r.output.matchAll(/^acked (\d+)$/gm)].map((m) => Number(m[1]));
    expect(acked.length).toBeGreaterThan(10);
    const last = acked[acked.length - 1];
    const data = fs.readFileSync(path.join(d.share, 'log.bin'));
    console.log(`${args.join(' ') || 'defaults'}: killed after ${after} fsyncs; ${last + 1} records acknowledged, ${data.length / 4096} on disk`);
    expect(data.length).toBeGreaterThanOrEqual((last + 1) * 4096);
    for (let n = 0; n <= last; n++) {
      const rec = data.subarray(n * 4096, (n + 1) * 4096);
      expect([n, rec.toString('latin1', 0, `record ${n} `.length)]).toEqual([n, `record ${n} `]);
    }
  } finally {
    d.cleanup();
  }
});
