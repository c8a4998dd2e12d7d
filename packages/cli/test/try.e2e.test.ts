// `vfsd try`: a newcomer's first run boots a guest, shares a directory and runs a command in it.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { BIN, guest } from './e2e-helpers';

jest.setTimeout(180_000);

test('vfsd try runs a command in a throwaway guest and says what it does', async () => {
  await guest.setup();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vfsd-try-test-'));
  fs.writeFileSync(path.join(dir, 'made-on-host.txt'), '12345');
  const r = spawnSync(process.execPath, [BIN, 'try', '--shared-dir', dir, '--', 'stat -c "%n has %s bytes" made-on-host.txt'], { encoding: 'utf8', timeout: 170_000 });
  fs.rmSync(dir, { recursive: true, force: true });
  expect(r.stdout).toBe('made-on-host.txt has 5 bytes\n');
  expect(r.stderr).toMatch(/booting the guest/);
  expect(r.stderr).toMatch(/the command exited 0/);
  expect(r.status).toBe(0);
});
