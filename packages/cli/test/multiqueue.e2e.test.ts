// Several request queues as a real Linux guest uses them: since 6.10 the virtio-fs driver maps each
// CPU to a queue, so work pinned to each of 2 vCPUs reaches the daemon on both request queues, served
// by the main thread, or with --queue-threads each by a thread of its own.
import { guest, startDaemon, exitWithin } from './e2e-helpers';

jest.setTimeout(180_000);

test('a 6.12 guest with 2 vCPUs and num-request-queues=2 sends work pinned to each vCPU on its own queue', async () => {
  const env = { VFSD_GUEST_FLAVOR: 'backports', VFSD_GUEST_SMP: '2', VFSD_GUEST_FS_OPTS: 'num-request-queues=2' };
  await guest.setup(env);
  // cache=never: every stat reaches the daemon.
  const d = startDaemon(['--request-queues', '2', '--cache', 'never']);
  try {
    const script = `
echo x > f
work() { taskset -c $1 sh -c 'i=0; while [ $i -lt 300 ]; do stat f >/dev/null || exit 1; i=$((i+1)); done' && echo "cpu $1 done"; }
work 0 & work 1 & wait
# Then one CPU at a time, with a MKDIR between them to tell the two phases apart in the log.
mkdir phase-0 && work 0 && mkdir phase-1 && work 1 && mkdir phase-end
`;
    const r = await guest.runGuest({ socket: d.sock, tag: 'vfsdmq', script, daemonPid: d.child.pid, env });
    expect(r.harnessError).toBeNull();
    expect(r.output).toMatch(/^cpu 0 done$/m);
    expect(r.output).toMatch(/^cpu 1 done$/m);
    // Requests per queue in each phase (0 is hiprio, 1 and 2 the request queues).
    const phases: number[][] = [[0, 0, 0]];
    for (const m of d.log().matchAll(/queue (\d+) unique \d+ (FUSE_\w+)/g)) {
      if (m[2] === 'FUSE_MKDIR') phases.push([0, 0, 0]);
      else if (m[2] === 'FUSE_GETATTR' || m[2] === 'FUSE_LOOKUP') phases[phases.length - 1][Number(m[1])]++;
    }
    console.log(`GETATTR/LOOKUP per queue (hiprio, request 1, request 2): both CPUs ${phases[0].join(', ')}; CPU 0 ${phases[1].join(', ')}; CPU 1 ${phases[2].join(', ')}`);
    expect(phases).toHaveLength(4);
    const [both, cpu0, cpu1] = phases;
    expect(both[1]).toBeGreaterThanOrEqual(300);
    expect(both[2]).toBeGreaterThanOrEqual(300);
    // Each CPU alone: (nearly) all its requests on one queue, and the two CPUs on different queues.
    const main = (q: number[]) => (q[1] >= q[2] ? 1 : 2);
    expect(main(cpu0)).not.toBe(main(cpu1));
    expect(cpu0[main(cpu0)]).toBeGreaterThanOrEqual(0.95 * (cpu0[1] + cpu0[2]));
    expect(cpu1[main(cpu1)]).toBeGreaterThanOrEqual(0.95 * (cpu1[1] + cpu1[2]));
    expect(await exitWithin(d, 10_000)).toBe(0);
  } finally {
    d.cleanup();
  }
});

test('with --queue-threads each request queue is served by its own thread, bound to its CPU', async () => {
  const env = { VFSD_GUEST_FLAVOR: 'backports', VFSD_GUEST_SMP: '2', VFSD_GUEST_FS_OPTS: 'num-request-queues=2' };
  await guest.setup(env);
  const d = startDaemon(['--request-queues', '2', '--cache', 'never', '--queue-threads', '--queue-cpus', '0,1']);
  try {
    const script = `
echo x > f
work() { taskset -c $1 sh -c 'i=0; while [ $i -lt 300 ]; do stat f >/dev/null || exit 1; i=$((i+1)); done' && echo "cpu $1 done"; }
work 0 & work 1 & wait
cat f
`;
    const r = await guest.runGuest({ socket: d.sock, tag: 'vfsdmq', script, daemonPid: d.child.pid, env });
    expect(r.harnessError).toBeNull();
    expect(r.output).toMatch(/^cpu 0 done$/m);
    expect(r.output).toMatch(/^cpu 1 done$/m);
    expect(r.output).toMatch(/^x$/m);
    // GETATTRs by queue and by the thread that answered them (the log names a request-queue thread's tid).
    const byQueue = new Map<number, Map<number, number>>();
    for (const m of d.log().matchAll(/queue (\d+)(?: \(thread (\d+)\))? unique \d+ FUSE_GETATTR: ok/g)) {
      const q = Number(m[1]);
      const t = m[2] === undefined ? d.child.pid! : Number(m[2]);
      const threads = byQueue.get(q) ?? new Map<number, number>();
      threads.set(t, (threads.get(t) ?? 0) + 1);
      byQueue.set(q, threads);
    }
    const show = [...byQueue].map(([q, t]) => `queue ${q}: ${[...t].map(([tid, n]) => `${n} by ${tid === d.child.pid ? 'the main thread' : `thread ${tid}`}`).join(', ')}`);
    console.log(`GETATTRs answered: ${show.join('; ')}`);
    const threadOf = (q: number): number => {
      const t = [...(byQueue.get(q) ?? new Map<number, number>())].sort((a, b) => b[1] - a[1])[0];
      expect(t).toBeDefined();
      expect(t[1]).toBeGreaterThanOrEqual(300);
      return t[0];
    };
    const [t1, t2] = [threadOf(1), threadOf(2)];
    expect(t1).not.toBe(d.child.pid);
    expect(t2).not.toBe(d.child.pid);
    expect(t1).not.toBe(t2);
    // The stop line of each queue: what its thread answered, what it handed to the main thread.
    for (const q of [1, 2]) expect(d.log()).toMatch(new RegExp(`queue ${q} stopped \\(thread \\d+, CPU ${q - 1}\\): [1-9]\\d+ requests served there`));
    expect(await exitWithin(d, 10_000)).toBe(0);
  } finally {
    d.cleanup();
  }
});
