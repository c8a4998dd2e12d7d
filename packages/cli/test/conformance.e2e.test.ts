// The real-guest conformance run (scripts/guest/conformance.sh) against vfsd and against Debian's C
// virtiofsd, in the same test: vfsd must pass at least as many checks as virtiofsd, and the POSIX lock
// check, which virtiofsd fails (its F_SETLKW answers EOPNOTSUPP).
import { spawnSync } from 'child_process';
import * as path from 'path';
import { REPO, guest } from './e2e-helpers';

jest.setTimeout(900_000);

interface Run {
  passed: Set<string>;
  failed: Map<string, string>;
  output: string;
}

function conformance(which: 'vfsd' | 'virtiofsd', daemonArgs: string[] = [], env: Record<string, string> = {}): Run {
  const r = spawnSync(path.join(REPO, 'scripts', 'guest', 'conformance.sh'), [which, ...daemonArgs], { encoding: 'utf8', timeout: 420_000, env: { ...process.env, ...env } });
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  const passed = new Set<string>();
  const failed = new Map<string, string>();
  for (const line of (r.stdout ?? '').split('\n')) {
    const p = /^PASS (\S+)/.exec(line);
    if (p) passed.add(p[1]);
    const f = /^FAIL (\S+?):? (.*)$/.exec(line);
    if (f) failed.set(f[1], f[2]);
  }
  return { passed, failed, output };
}

test('vfsd passes at least as many guest conformance checks as the C virtiofsd, POSIX locks included', async () => {
  await guest.setup();
  const theirs = conformance('virtiofsd');
  const ours = conformance('vfsd');
  const summary = (r: Run) => `${r.passed.size} passed; failed: ${[...r.failed].map(([k, v]) => `${k} (${v})`).join(', ') || 'none'}`;
  // Printed for the record (the numbers the README quotes).
  console.log(`virtiofsd: ${summary(theirs)}\nvfsd: ${summary(ours)}`);
  expect(theirs.passed.size).toBeGreaterThan(0); // the harness ran at all
  expect(ours.output).toMatch(/HOST-TOTAL \d+\/0/);
  expect(ours.passed.size).toBeGreaterThanOrEqual(theirs.passed.size);
  expect(ours.passed.has('posix-lock')).toBe(true);
  expect(ours.passed.has('lock-contention')).toBe(true); // two guest processes, one F_SETLKW waits
  expect(ours.passed.has('host:large-file-checksum')).toBe(true);
  // Every check virtiofsd passes, vfsd passes too.
  for (const name of theirs.passed) expect([name, ours.passed.has(name)]).toEqual([name, true]);
});

// The writeback cache (the guest caches writes and sends them later), inodes held by file handle with
// room for 64 fds (most inodes of the run are reopened by handle), and a worker pool (big reads and
// writes through shared slabs), and the namespace sandbox: every check still passes.
test.each([[['--writeback']], [['--inode-file-handles', 'mandatory', '--inode-fd-cache', '64']], [['--thread-pool-size', '4']], [['--sandbox', 'namespace']]])('vfsd %j passes every check too', async (args) => {
  await guest.setup();
  const r = conformance('vfsd', args);
  console.log(`vfsd ${args.join(' ')}: ${r.passed.size} passed; failed: ${[...r.failed].map(([k, v]) => `${k} (${v})`).join(', ') || 'none'}`);
  expect(r.output).toMatch(/HOST-TOTAL \d+\/0/);
  expect(r.failed.size).toBe(0);
  expect(r.passed.size).toBeGreaterThanOrEqual(29);
});

// Two request queues, as a Linux 6.12 guest with 2 vCPUs uses them (QEMU 10, num-request-queues=2),
// alone and with a worker pool, both on the main thread and each in a thread of its own.
const TWO_QUEUES = { VFSD_GUEST_FLAVOR: 'backports', VFSD_GUEST_SMP: '2', VFSD_GUEST_FS_OPTS: 'num-request-queues=2' };
test.each([
  [['--request-queues', '2']],
  [['--request-queues', '2', '--thread-pool-size', '4']],
  [['--request-queues', '2', '--queue-threads']],
  [['--request-queues', '2', '--queue-threads', '--queue-cpus', '0,1', '--thread-pool-size', '4']],
])('vfsd %j under a 6.12 guest with 2 vCPUs passes every check', async (args) => {
  await guest.setup(TWO_QUEUES);
  const r = conformance('vfsd', args, TWO_QUEUES);
  console.log(`vfsd ${args.join(' ')} (6.12, 2 vCPUs): ${r.passed.size} passed; failed: ${[...r.failed].map(([k, v]) => `${k} (${v})`).join(', ') || 'none'}`);
  expect(r.output).toMatch(/HOST-TOTAL \d+\/0/);
  expect(r.failed.size).toBe(0);
  expect(r.passed.size).toBeGreaterThanOrEqual(29);
});
