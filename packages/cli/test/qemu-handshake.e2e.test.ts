// A real QEMU with a real Linux guest against vfsd: the vhost-user handshake QEMU 7.2 performs
// (ADD_MEM_REG, two rings of 1024, enable, GET_VRING_BASE at poweroff), the guest's FUSE_INIT over
// the ring, and a clean exit of vfsd when QEMU goes away. The guest scripts come from scripts/guest.
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const REPO = path.resolve(__dirname, '..', '..', '..', '..');
const BIN = path.join(REPO, 'packages', 'cli', 'bin', 'vfsd');

interface GuestResult {
  code: number;
  output: string;
  stderr: string;
  harnessError: string | null;
  result: Record<string, string>;
}
interface GuestHarness {
  setup(): Promise<void>;
  runGuest(opts: { socket: string; tag: string; script: string; timeoutSec?: number; daemonPid?: number; logFile?: string }): Promise<GuestResult>;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const guest = require(path.join(REPO, 'scripts', 'guest', 'guest.js')) as GuestHarness;

jest.setTimeout(180_000);

test('QEMU negotiates with vfsd, the guest mounts the share and looks up host files through it', async () => {
  await guest.setup();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vfsd-e2e-'));
  const share = path.join(dir, 'share');
  fs.mkdirSync(share);
  fs.writeFileSync(path.join(share, 'hostfile.txt'), 'hello');
  fs.chmodSync(path.join(share, 'hostfile.txt'), 0o640);
  const sock = path.join(dir, 'vfsd.sock');
  const daemon = spawn(process.execPath, [BIN, '--socket-path', sock, '--shared-dir', share, '--log-level', 'debug'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  daemon.stderr!.on('data', (d) => (log += d));
  const exited = new Promise<number | null>((r) => daemon.once('exit', (c) => r(c)));
  const consoleLog = path.join(dir, 'console.log');
  const r = await guest.runGuest({ socket: sock, tag: 'vfsdtest', script: 'echo in-guest\nstat -c "%s %a %F" hostfile.txt\nstat missing.txt 2>&1 || true\n', timeoutSec: 120, daemonPid: daemon.pid, logFile: consoleLog });
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([exited, new Promise<string>((res) => (timer = setTimeout(() => res('still running'), 10_000)))]);
  clearTimeout(timer);
  if (code === 'still running') daemon.kill('SIGKILL');
  const consoleText = fs.existsSync(consoleLog) ? fs.readFileSync(consoleLog, 'utf8') : '';
  // The guest mounted: INIT went out on the request queue and our reply came back.
  expect(consoleText).toMatch(/VFSD-GUEST-MOUNTED/);
  // LOOKUP and GETATTR went through the rings, the actors and the passthrough.
  expect(r.output).toContain('in-guest');
  expect(r.output).toContain('5 640 regular file');
  expect(r.output).toMatch(/can't stat 'missing.txt': No such file or directory/);
  expect(r.code).toBe(0);
  expect(log).toMatch(/ADD_MEM_REG ok/);
  expect(log).toMatch(/GET_VRING_BASE ok/);
  expect(log).not.toMatch(/ERROR/);
  // Without --keep-serving vfsd exits when its front-end goes away, as virtiofsd does.
  expect(code).toBe(0);
  expect(fs.existsSync(sock)).toBe(false);
  fs.rmSync(dir, { recursive: true, force: true });
});
