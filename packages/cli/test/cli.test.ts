// The vfsd command: option errors are one clear line and a non-zero exit; it serves and stops cleanly.
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { SimulatedFrontend } from '@vfsd/vhost/testing';
import { FuseClient } from '@vfsd/core/testing';
import { parseOptions, type Options } from '../src/options';

const BIN = path.join(__dirname, '..', '..', 'bin', 'vfsd');

function vfsd(args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 20000 });
  return { status: r.status, stderr: r.stderr };
}

/** vfsd as a child process: its stderr so far, its exit code, and a wait for its "serving" line. */
function daemonChild(args: string[], env: NodeJS.ProcessEnv = process.env) {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exit = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  return {
    child,
    exit,
    stderr: () => stderr,
    async serving(): Promise<void> {
      const start = Date.now();
      while (!/serving /.test(stderr) && Date.now() - start < 10000) await new Promise((r) => setTimeout(r, 20));
    },
  };
}

describe('vfsd options', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vfsd-cli-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test.each([
    [[], /--shared-dir DIR is required/],
    [['--shared-dir', '/nonexistent/dir', '--socket-path', '/tmp/x.sock'], /shared directory \/nonexistent\/dir does not exist/],
    [['--shared-dir', '/tmp'], /--socket-path PATH or --fd FD is required/],
    [['--shared-dir', '/tmp', '--socket-path', '/tmp/a.sock', '--fd', '3'], /exclusive/],
    [['--no-such-option'], /Unknown argument/],
    [['--shared-dir', '/tmp', '--socket-path', '/tmp/a.sock', '--request-queues', '0'], /--request-queues must be 1 to 255/],
    [['--shared-dir', '/tmp', '--socket-path', '/tmp/a.sock', '--log-level', 'loud'], /Invalid values/],
    [['--shared-dir', '/tmp', '--socket-path', '/tmp/a.sock', '--cache', 'sometimes'], /Invalid values/],
    [['--shared-dir', '/tmp', '--socket-path', '/tmp/a.sock', '--thread-pool-size', '-1'], /--thread-pool-size must be 0 to 1024/],
    [['--shared-dir', '/tmp', '--socket-path', '/tmp/a.sock', '--rlimit-nofile', '-5'], /--rlimit-nofile takes a number/],
    [['--shared-dir', '/tmp', '--socket-path', '/tmp/a.sock', '--sandbox', 'chroot'], /--sandbox chroot is not supported; use --sandbox namespace/],
    [['--shared-dir', '/tmp', '--socket-path', '/tmp/a.sock', '--inode-fd-cache', '100'], /--inode-fd-cache applies with --inode-file-handles prefer or mandatory/],
    [['--shared-dir', '/tmp', '--socket-path', '/tmp/a.sock', '--inode-file-handles', 'prefer', '--inode-fd-cache', '3'], /--inode-fd-cache takes a number of fds, 16 or more/],
    [['--shared-dir', '/tmp', '--socket-path', '/tmp/a.sock', '--socket-group', 'no-such-group-here'], /no group named no-such-group-here/],
    [['--socket-path', '/tmp/a.sock', '-o', 'source=/tmp,cache=sometimes'], /-o cache= takes none, auto or always/],
    [['--socket-path', '/tmp/a.sock', '-o', 'source=/tmp,frobnicate'], /unknown option -o frobnicate/],
    [['--shared-dir', '/tmp', '--socket-path', '/tmp/a.sock', 'extra-argument'], /Unknown argument/],
    [['--shared-dir', '/tmp', '--socket-path', '/tmp/a.sock', '--inspect', 'http'], /--inspect takes a port number/],
  ])('%j fails with one clear line', (args, message) => {
    const r = vfsd(args as string[]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(message as RegExp);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  test('the INIT features: virtiofsd\'s spellings, --posix-acl implies --xattr, KILLPRIV_V2 on unless turned off', () => {
    const parse = (args: string[]): Options => parseOptions(['--socket-path', '/tmp/a.sock', ...args]) as Options;
    const plain = parse(['--shared-dir', dir]);
    expect([plain.writeback, plain.posixAcl, plain.xattr, plain.announceSubmounts, plain.killprivV2]).toEqual([false, false, false, false, true]);
    const c = parse(['-o', `source=${dir},writeback,posix_acl,announce_submounts,no_killpriv_v2`]);
    expect([c.writeback, c.posixAcl, c.xattr, c.announceSubmounts, c.killprivV2]).toEqual([true, true, true, true, false]);
    expect(c.notYetImplemented).toEqual([]);
    const l = parse(['--shared-dir', dir, '--writeback', '--posix-acl', '--announce-submounts', '--no-killpriv-v2']);
    expect([l.writeback, l.posixAcl, l.xattr, l.announceSubmounts, l.killprivV2]).toEqual([true, true, true, true, false]);
    expect(parse(['-o', `source=${dir},killpriv_v2`]).killprivV2).toBe(true);
    // Lock and READDIRPLUS switches do what they say (libvirt passes -o flock,posix_lock).
    const locks = (o: Options) => [o.posixLocks, o.flockLocks, o.readdirplus];
    expect(locks(plain)).toEqual([true, true, true]);
    expect(locks(parse(['-o', `source=${dir},no_posix_lock,no_flock,no_readdirplus`]))).toEqual([false, false, false]);
    const lv = parse(['-o', `source=${dir},cache=always,xattr,flock,posix_lock`]);
    expect([...locks(lv), lv.notYetImplemented]).toEqual([true, true, true, []]);
    expect(locks(parse(['--shared-dir', dir, '--no-posix-lock', '--no-flock', '--no-readdirplus']))).toEqual([false, false, false]);
  });

  test('the Rust virtiofsd\'s other options: done, or refused with the reason, never ignored', () => {
    const parse = (args: string[]) => parseOptions(['--shared-dir', dir, ...args]) as Options;
    const o = parse(['--socket', '/tmp/a.sock', '-d', '-f', '--allow-direct-io', '--preserve-noatime', '--allow-mmap', '--seccomp', 'none']);
    expect([o.socketPath, o.logLevel, o.allowDirectIo, o.preserveNoatime, o.allowMmap]).toEqual(['/tmp/a.sock', 'debug', true, true, true]);
    const plain = parse(['--socket-path', '/tmp/a.sock']);
    expect([plain.allowDirectIo, plain.preserveNoatime, plain.allowMmap, plain.tag]).toEqual([false, false, false, undefined]);
    expect(parse(['--socket-path', '/tmp/a.sock', '--tag', 'fs0']).tag).toBe('fs0');
    expect([plain.securityLabel, parse(['--socket-path', '/tmp/a.sock', '--security-label']).securityLabel]).toEqual([false, true]);
    for (const [args, why] of [
      [['--tag', 'x'.repeat(37)], /--tag takes 1 to 36 bytes/],
      [['--tag', ''], /--tag takes 1 to 36 bytes/],
      [['--xattrmap', ':map::user.virtiofs.:'], /--xattrmap is not supported/],
      [['--uid-map', ':0:1000:1:'], /--uid-map is not supported/],
      [['--translate-uid', 'map:0:1000:1'], /--translate-uid is not supported/],
      [['--modcaps=-mknod'], /--modcaps is not supported/],
      [['--seccomp', 'kill'], /--seccomp kill is not supported/],
    ] as const) {
      expect(() => parse(['--socket-path', '/tmp/a.sock', ...args])).toThrow(why);
    }
  });

  test('migration options: both modes, both error policies and the two checks, as the Rust virtiofsd spells them', () => {
    const parse = (args: string[]) => parseOptions(['--socket-path', '/tmp/a.sock', '--shared-dir', dir, ...args]) as Options;
    expect(parse([]).migration).toEqual({ mode: 'find-paths', onError: 'abort', verifyHandles: false, confirmPaths: false });
    expect(parse(['--migration-mode', 'find-paths', '--migration-on-error', 'guest-error']).migration.onError).toBe('guest-error');
    expect(parse(['--migration-mode', 'file-handles']).migration.mode).toBe('file-handles');
    expect(parse(['--migration-verify-handles', '--migration-confirm-paths']).migration).toEqual({ mode: 'find-paths', onError: 'abort', verifyHandles: true, confirmPaths: true });
    expect(() => parse(['--migration-mode', 'file-handles', '--migration-verify-handles'])).toThrow(/apply to --migration-mode find-paths/);
    expect(() => parse(['--migration-mode', 'by-magic'])).toThrow(/migration-mode/);
    expect(() => parse(['--migration-on-error', 'ignore'])).toThrow(/migration-on-error/);
  });

  test('--queue-threads and --queue-cpus: a CPU per request queue, only with queue threads', () => {
    const parse = (args: string[]) => parseOptions(['--socket-path', '/tmp/a.sock', '--shared-dir', dir, ...args]) as Options;
    expect(parse([])).toMatchObject({ queueThreads: false, queueCpus: undefined });
    expect(parse(['--request-queues', '2', '--queue-threads', '--queue-cpus', '0, 1'])).toMatchObject({ requestQueues: 2, queueThreads: true, queueCpus: [0, 1] });
    expect(() => parse(['--request-queues', '2', '--queue-cpus', '0,1'])).toThrow(/applies with --queue-threads/);
    expect(() => parse(['--queue-threads', '--queue-cpus', '0,1'])).toThrow(/2 CPUs for 1 request queue/);
    expect(() => parse(['--queue-threads', '--queue-cpus', 'one'])).toThrow(/CPU numbers/);
  });

  test('--inode-file-handles mandatory refuses to start where open_by_handle_at is not allowed; prefer falls back', () => {
    // Without CAP_DAC_READ_SEARCH: util-linux's setpriv drops it from the bounding set, so the exec'd
    // daemon (still root, so it can read a checkout only root can read) never has it.
    const share = fs.mkdtempSync(path.join(os.tmpdir(), 'vfsd-fh-'));
    const withoutCap = (mode: string) =>
      spawnSync('setpriv', ['--bounding-set=-dac_read_search', '--inh-caps=-dac_read_search', process.execPath, BIN, '--socket-path', path.join(share, 's'), '--shared-dir', share, '--inode-file-handles', mode, '--keep-serving'], {
        encoding: 'utf8',
        timeout: 3000,
      });
    try {
      const m = withoutCap('mandatory');
      expect(m.status).toBe(1);
      expect(m.stderr).toMatch(/^vfsd: --inode-file-handles mandatory: file handles are unusable on .*: open_by_handle_at: errno 1 \(needs CAP_DAC_READ_SEARCH\)$/m);
      // prefer serves (until the timeout ends it), holding inodes by fd.
      const p = withoutCap('prefer');
      expect(p.stderr).toMatch(/WARN: --inode-file-handles prefer: holding inodes by fd \(open_by_handle_at: errno 1/);
      expect(p.stderr).toMatch(/serving /);
    } finally {
      fs.rmSync(share, { recursive: true, force: true });
    }
  });

  // Root only (new mount and pid namespaces); CI runs as root.
  (process.geteuid?.() === 0 ? test : test.skip)('--sandbox namespace: the daemon sees the share, its code and /proc, nothing else of the host', async () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'vfsd-sandbox-test-'));
    const share = path.join(base, 'share');
    fs.mkdirSync(share);
    fs.writeFileSync(path.join(share, 'inside.txt'), 'x');
    const sock = path.join(base, 's.sock');
    const { child, exit, stderr, serving } = daemonChild(['--socket-path', sock, '--shared-dir', share, '--sandbox', 'namespace']);
    try {
      await serving();
      expect(stderr()).toMatch(/sandbox: new mount, pid and network namespaces; the share is \/share, no other host path is reachable/);
      // The daemon: the launcher's child is unshare, whose child is the sandboxed vfsd.
      const kids = (pid: number): number[] => fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
      const daemon = kids(kids(child.pid!)[0])[0];
      const root = `/proc/${daemon}/root`;
      const codeTop = path.resolve(__dirname, '..', '..', '..', '..').split('/')[1];
      expect(fs.readdirSync(root).sort()).toEqual(['dev', 'proc', 'share', codeTop].sort());
      expect(fs.readdirSync(path.join(root, 'share'))).toEqual(['inside.txt']);
      expect(fs.existsSync(path.join(root, 'etc'))).toBe(false);
      expect(fs.readlinkSync(`/proc/${daemon}/ns/mnt`)).not.toBe(fs.readlinkSync('/proc/self/ns/mnt'));
      expect(fs.readlinkSync(`/proc/${daemon}/ns/pid`)).not.toBe(fs.readlinkSync('/proc/self/ns/pid'));
      expect(fs.readlinkSync(`/proc/${daemon}/ns/net`)).not.toBe(fs.readlinkSync('/proc/self/ns/net'));
      // Still a vhost-user daemon: it answers on the host's socket path.
      const fe = await SimulatedFrontend.connect(sock);
      await fe.negotiate({ numQueues: 2, queueSize: 64 });
      const c = new FuseClient(fe, 1);
      expect((await c.init()).error).toBe(0);
      expect((await c.lookup(1n, 'inside.txt')).error).toBe(0);
      expect((await c.lookup(1n, '..')).body.readBigUInt64LE(0)).toBe(1n);
      fe.close();
      expect(await exit).toBe(0); // it exits when its front-end leaves, as virtiofsd
      expect(fs.existsSync(sock)).toBe(false);
      expect(fs.readdirSync(base)).toEqual(['share']);
    } finally {
      child.kill('SIGKILL');
      fs.rmSync(base, { recursive: true, force: true });
    }
  });

  (process.geteuid?.() === 0 ? test : test.skip)('--sandbox namespace: SIGTERM reaches the daemon through the launcher; it drains and exits 0', async () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'vfsd-sandbox-term-'));
    const sock = path.join(base, 's.sock');
    const { child, exit, stderr, serving } = daemonChild(['--socket-path', sock, '--shared-dir', base, '--sandbox', 'namespace']);
    try {
      await serving();
      child.kill('SIGTERM');
      expect(await exit).toBe(0);
      expect(stderr()).toMatch(/SIGTERM: finishing the requests in flight/);
      expect(fs.existsSync(sock)).toBe(false);
    } finally {
      child.kill('SIGKILL');
      fs.rmSync(base, { recursive: true, force: true });
    }
  });

  (process.geteuid?.() === 0 ? test : test.skip)('--sandbox namespace never takes a live daemon\'s socket, and an inherited stage variable pivots nothing', async () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'vfsd-sandbox-live-'));
    const sock = path.join(base, 's.sock');
    // A daemon outside any sandbox, started with the variable a sandboxed daemon gets: it must serve
    // as usual (no pivot of the host's mounts).
    const { child: a, exit, stderr, serving } = daemonChild(['--socket-path', sock, '--shared-dir', base, '--keep-serving'], {
      ...process.env,
      VFSD_SANDBOX_STAGE: `${base}:${fs.readlinkSync('/proc/self/ns/mnt')}`,
    });
    try {
      await serving();
      expect(stderr()).not.toMatch(/sandbox:/);
      expect(fs.readlinkSync(`/proc/${a.pid}/root`)).toBe('/');
      const second = vfsd(['--socket-path', sock, '--shared-dir', base, '--sandbox', 'namespace']);
      expect(second.status).toBe(1);
      expect(second.stderr).toMatch(/already served by a running daemon/);
      // The first one still has its socket, and answers on it.
      expect(fs.statSync(sock).isSocket()).toBe(true);
      const fe = await SimulatedFrontend.connect(sock);
      await fe.negotiate({ numQueues: 2, queueSize: 64 });
      expect((await new FuseClient(fe, 1).init()).error).toBe(0);
      fe.close();
      a.kill('SIGTERM');
      expect(await exit).toBe(0);
    } finally {
      a.kill('SIGKILL');
      fs.rmSync(base, { recursive: true, force: true });
    }
  });

  test('--help shows examples; --version prints the version', () => {
    const h = spawnSync(process.execPath, [BIN, '--help'], { encoding: 'utf8' });
    expect(h.status).toBe(0);
    expect(h.stdout).toMatch(/Examples:/);
    expect(h.stdout).toMatch(/--print-capabilities/);
    const v = spawnSync(process.execPath, [BIN, '--version'], { encoding: 'utf8' });
    expect(v.status).toBe(0);
    expect(v.stdout).toBe('0.1.0\n');
  });

  test('--print-capabilities prints the JSON libvirt reads, in virtiofsd\'s format', () => {
    const r = spawnSync(process.execPath, [BIN, '--print-capabilities'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ type: 'fs', features: ['migrate-precopy', 'separate-options'] });
    // virtiofsd prints it pretty, two spaces, "type" first.
    expect(r.stdout.startsWith('{\n  "type": "fs"')).toBe(true);
  });

  test('--inspect serves the inspector page on localhost', async () => {
    const sock = path.join(dir, 'insp.sock');
    const child = spawn(process.execPath, [BIN, '--socket-path', sock, '--shared-dir', dir, '--inspect', '0'], { stdio: ['ignore', 'inherit', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const start = Date.now();
    while (!/inspector: (http:\/\/127\.0\.0\.1:\d+\/)/.test(stderr) && Date.now() - start < 10000) await new Promise((r) => setTimeout(r, 20));
    const url = /inspector: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(stderr)![1];
    const page = await fetch(url);
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/vfsd/);
    const exit = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
    child.kill('SIGTERM');
    expect(await exit).toBe(0);
  });

  test('serves a socket, refuses a second daemon on it, answers FUSE_INIT, stops on SIGTERM', async () => {
    const sock = path.join(dir, 'vfsd.sock');
    const child = spawn(process.execPath, [BIN, '--socket-path', sock, '-o', `source=${dir}`, '--keep-serving', '--log-level', 'debug', '--socket-group', 'root'], {
      stdio: ['ignore', 'inherit', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const start = Date.now();
    // "serving" is logged once the socket listens (its group and mode were set before listen).
    while (!/serving/.test(stderr) && Date.now() - start < 10000) await new Promise((r) => setTimeout(r, 20));
    expect(fs.statSync(sock).mode & 0o777).toBe(0o660);
    expect(vfsd(['--socket-path', sock, '--shared-dir', dir]).stderr).toMatch(/already served by a running daemon/);
    const fe = await SimulatedFrontend.connect(sock);
    await fe.negotiate({ numQueues: 2, queueSize: 64 });
    const init = Buffer.alloc(40 + 64);
    init.writeUInt32LE(init.length, 0);
    init.writeUInt32LE(26, 4); // FUSE_INIT
    init.writeBigUInt64LE(7n, 8);
    init.writeUInt32LE(7, 40);
    init.writeUInt32LE(38, 44);
    const r = await fe.submit(1, [init], [16 + 64]);
    expect(r.len).toBe(80);
    expect(r.data.readInt32LE(4)).toBe(0);
    expect(r.data.readBigUInt64LE(8)).toBe(7n);
    expect(r.data.readUInt32LE(16)).toBe(7);
    // At debug level: one line per request with queue, unique id, opcode, result and latency.
    const c = new FuseClient(fe, 1);
    expect((await c.getattr(1n)).error).toBe(0);
    expect((await c.lookup(1n, 'missing')).error).toBe(-2);
    await new Promise((res) => setTimeout(res, 100));
    expect(stderr).toMatch(/queue 1 unique 7 FUSE_INIT: ok 80 bytes in \d+ µs/);
    expect(stderr).toMatch(/queue 1 unique \d+ FUSE_GETATTR: ok 120 bytes in \d+ µs/);
    expect(stderr).toMatch(/queue 1 unique \d+ FUSE_LOOKUP: errno 2 in \d+ µs/);
    fe.close();
    const exit = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
    child.kill('SIGTERM');
    expect(await exit).toBe(0);
    expect(fs.existsSync(sock)).toBe(false);
    expect(stderr).not.toMatch(/ERROR/);
  });
});
