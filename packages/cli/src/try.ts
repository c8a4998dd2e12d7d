// `vfsd try`: for a newcomer with no VM at hand, boot a throwaway guest (scripts/guest), share a
// directory through an in-process vfsd and run a command in the guest, saying what happens.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import yargs from 'yargs';
import { VirtioFsDevice } from '@vfsd/core';
import { PassthroughFs } from '@vfsd/passthrough';
import { serve, silentLogger } from '@vfsd/vhost';

interface GuestHarness {
  setup(): Promise<void>;
  runGuest(opts: { socket: string; tag: string; script: string; timeoutSec?: number }): Promise<{ code: number; output: string; stderr: string; harnessError: string | null }>;
  runGuestInteractive(opts: { socket: string; tag: string; timeoutSec?: number }): Promise<{ code: number; harnessError: string | null }>;
}

const DEFAULT_COMMAND = 'grep virtiofs /proc/mounts; ls -la . || stat .';

export async function runTry(argv: string[]): Promise<number> {
  const a = yargs(argv)
    .scriptName('vfsd try')
    .usage('$0 [--shared-dir DIR] [-- COMMAND...]\n\nBoots a throwaway Linux guest under QEMU, shares DIR with it through vfsd and runs COMMAND in the\nshared directory. Without COMMAND: a shell in the guest when stdin is a terminal, else a look\naround. Installs QEMU and a Debian kernel on first use.')
    .option('shared-dir', { type: 'string', describe: 'directory to share (default: a new temporary one)' })
    .option('timeout', { type: 'number', describe: 'seconds before the guest is stopped (default: 120; none for a shell)' })
    .example('$0 --shared-dir . -- cat README.md', 'read a host file from inside the guest')
    .example('$0 --shared-dir .', 'a shell in the guest, in the shared directory (exit or ^D powers it off)')
    .strictOptions()
    .exitProcess(false)
    .help()
    .parseSync();
  if (a.help) return 0;
  const interactive = a._.length === 0 && process.stdin.isTTY === true;
  const command = a._.length ? a._.map(String).join(' ') : DEFAULT_COMMAND;
  const repo = path.resolve(__dirname, '..', '..', '..', '..');
  const harnessPath = path.join(repo, 'scripts', 'guest', 'guest.js');
  if (!fs.existsSync(harnessPath)) {
    process.stderr.write(`vfsd try: needs the guest harness of a vfsd checkout (${harnessPath} not found)\n`);
    return 1;
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const harness = require(harnessPath) as GuestHarness;
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'vfsd-try-'));
  let share = a['shared-dir'];
  if (!share) {
    share = path.join(work, 'share');
    fs.mkdirSync(share);
    fs.writeFileSync(path.join(share, 'hello.txt'), 'hello from the host\n');
  }
  const say = (m: string): boolean => process.stderr.write(`vfsd try: ${m}\n`);
  say('setting up QEMU and a guest kernel (first time only)...');
  await harness.setup();
  const socket = path.join(work, 'vfsd.sock');
  const server = serve({
    socketPath: socket,
    logger: silentLogger,
    createDevice: () => new VirtioFsDevice({ fs: new PassthroughFs({ sharedDir: share }), requestQueues: 1, logger: silentLogger }),
  });
  say(`sharing ${share} as tag "vfsd", booting the guest (about 3 s)...`);
  try {
    if (interactive) {
      say('guest$ mount -t virtiofs vfsd /mnt && cd /mnt && exec sh');
      say('a shell in the guest follows: exit (or ^D) powers it off; Ctrl-A x kills QEMU');
      const r = await harness.runGuestInteractive({ socket, tag: 'vfsd', timeoutSec: a.timeout ?? 0 });
      if (r.harnessError) say(`the guest run failed (${r.harnessError})`);
      else say(`the shell exited ${r.code}; the guest powered off`);
      return r.harnessError ? 1 : r.code;
    }
    say(`guest$ mount -t virtiofs vfsd /mnt && cd /mnt && ${command}`);
    const r = await harness.runGuest({ socket, tag: 'vfsd', script: `${command}\n`, timeoutSec: a.timeout ?? 120 });
    process.stdout.write(r.output);
    if (r.harnessError) say(`the guest run failed (${r.harnessError}): ${r.stderr.trim()}`);
    else say(`the command exited ${r.code}; the guest powered off`);
    return r.harnessError ? 1 : r.code;
  } finally {
    await server.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
}
