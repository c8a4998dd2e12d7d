// --syslog: vfsd logs to the system log socket; tested against a throwaway datagram server.
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { formatSyslog } from '../src/syslog';
import { bindDgram, closeFd, recvDgram } from '../src/sys/unix-dgram';

const BIN = path.join(__dirname, '..', '..', 'bin', 'vfsd');
jest.setTimeout(30_000);

test('formatSyslog writes RFC 3164 lines with facility user', () => {
  const d = new Date(2026, 10, 5, 7, 8, 9);
  expect(formatSyslog('info', 'hello', d, 'vfsd', 42)).toBe('<14>Nov  5 07:08:09 vfsd[42]: hello');
  expect(formatSyslog('error', 'a\nb', d, 'vfsd', 42)).toBe('<11>Nov  5 07:08:09 vfsd[42]: a b');
  expect(formatSyslog('warn', 'w', d, 'vfsd', 1)).toMatch(/^<12>/);
  expect(formatSyslog('debug', 'd', d, 'vfsd', 1)).toMatch(/^<15>/);
});

describe('vfsd --syslog', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vfsd-syslog-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('sends its log lines to the syslog socket, not to stderr', async () => {
    const logSock = path.join(dir, 'log');
    const server = bindDgram(logSock);
    const share = path.join(dir, 'share');
    fs.mkdirSync(share);
    const sock = path.join(dir, 'vfsd.sock');
    const child = spawn(process.execPath, [BIN, '--socket-path', sock, '--shared-dir', share, '--syslog'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, VFSD_SYSLOG_SOCKET: logSock },
    });
    let stderr = '';
    child.stderr.on('data', (b) => (stderr += b));
    const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    const lines: string[] = [];
    const until = async (re: RegExp): Promise<void> => {
      const end = Date.now() + 15_000;
      while (!lines.some((l) => re.test(l))) {
        for (let d = recvDgram(server); d; d = recvDgram(server)) lines.push(d.toString());
        if (Date.now() > end) throw new Error(`no syslog line matching ${re}; got ${JSON.stringify(lines)}; stderr ${stderr}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    try {
      await until(/serving /);
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      await until(/: stopped$/);
    } finally {
      child.kill('SIGKILL');
      closeFd(server);
    }
    const re = new RegExp(`^<(\\d+)>[A-Z][a-z]{2} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d vfsd\\[${child.pid}\\]: (.*)$`);
    for (const l of lines) expect(l).toMatch(re);
    const serving = lines.find((l) => /serving /.test(l))!;
    expect(serving.match(re)![1]).toBe('14'); // user.info
    expect(serving.match(re)![2]).toBe(`serving ${share} on ${sock}`);
    expect(lines.some((l) => /^<14>.*SIGTERM: finishing the requests in flight/.test(l))).toBe(true);
    expect(stderr).toBe('');
  });

  test('fails at start-up with one clear line when there is no system log', () => {
    const share = path.join(dir, 'share');
    fs.mkdirSync(share);
    const r = spawnSync(process.execPath, [BIN, '--socket-path', path.join(dir, 's'), '--shared-dir', share, '--syslog'], {
      encoding: 'utf8',
      timeout: 20_000,
      env: { ...process.env, VFSD_SYSLOG_SOCKET: path.join(dir, 'no-log-here') },
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^vfsd: --syslog: no system log to write to \(connect: cannot connect to .*no-log-here \(errno 2 ENOENT\)\)\n$/);
    expect(fs.existsSync(path.join(dir, 's'))).toBe(false);
  });
});
