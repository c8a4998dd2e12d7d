// `vfsd try` with no command on a terminal: a shell in the guest (run in tmux, which gives it one).
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { BIN, guest } from './e2e-helpers';

jest.setTimeout(180_000);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('vfsd try with no command on a terminal gives a shell in the guest; exit powers it off', async () => {
  // tmux (a terminal for the shell) comes with the guest harness's packages (scripts/guest/setup.sh).
  await guest.setup();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vfsd-try-shell-'));
  const share = path.join(dir, 'share');
  fs.mkdirSync(share);
  fs.writeFileSync(path.join(share, 'made-on-host.txt'), 'x');
  const rcFile = path.join(dir, 'rc');
  const server = `vfsd-try-${process.pid}`;
  const tmux = (...args: string[]): string => spawnSync('tmux', ['-L', server, ...args], { encoding: 'utf8' }).stdout;
  const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  const cmd = `${q(process.execPath)} ${q(BIN)} try --shared-dir ${q(share)}; echo $? > ${q(rcFile)}; sleep 600`;
  tmux('new-session', '-d', '-s', 't', '-x', '120', '-y', '40', cmd);
  const screen = (): string => tmux('capture-pane', '-p', '-t', 't', '-S', '-200');
  const waitFor = async (what: () => boolean, label: string): Promise<void> => {
    const end = Date.now() + 120_000;
    while (!what()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${label}; screen:\n${screen()}`);
      await sleep(200);
    }
  };
  try {
    await waitFor(() => /^guest:\/mnt#\s*$/m.test(screen()), 'the guest prompt');
    tmux('send-keys', '-t', 't', 'ls /mnt; exit', 'Enter');
    await waitFor(() => fs.existsSync(rcFile), 'vfsd try to exit');
    const s = screen();
    expect(s).toMatch(/guest:\/mnt# ls \/mnt; exit\n.*made-on-host\.txt/);
    expect(s).toMatch(/vfsd try: the shell exited 0; the guest powered off/);
    expect(fs.readFileSync(rcFile, 'utf8').trim()).toBe('0');
  } finally {
    tmux('kill-server');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
