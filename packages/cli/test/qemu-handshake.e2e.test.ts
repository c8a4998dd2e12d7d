// A real QEMU with a real Linux guest against vfsd: the vhost-user handshake QEMU 7.2 performs
// (ADD_MEM_REG, two rings of 1024, enable, GET_VRING_BASE at poweroff), FUSE requests over the rings
// through the actors and the passthrough, and a clean exit of vfsd when QEMU goes away.
import * as fs from 'fs';
import * as path from 'path';
import { exitWithin, guest, startDaemon } from './e2e-helpers';

jest.setTimeout(180_000);

test('QEMU negotiates with vfsd, the guest mounts the share and looks up host files through it', async () => {
  await guest.setup();
  const d = startDaemon([], (share) => {
    fs.writeFileSync(path.join(share, 'hostfile.txt'), 'hello');
    fs.chmodSync(path.join(share, 'hostfile.txt'), 0o640);
  });
  try {
    const consoleLog = path.join(d.dir, 'console.log');
    const r = await guest.runGuest({
      socket: d.sock,
      tag: 'vfsdtest',
      script: 'echo in-guest\nstat -c "%s %a %F" hostfile.txt\nstat missing.txt 2>&1 || true\n',
      timeoutSec: 120,
      daemonPid: d.child.pid,
      logFile: consoleLog,
    });
    const code = await exitWithin(d, 10_000);
    expect(fs.readFileSync(consoleLog, 'utf8')).toMatch(/VFSD-GUEST-MOUNTED/);
    // LOOKUP and GETATTR went through the rings, the actors and the passthrough.
    expect(r.output).toContain('in-guest');
    expect(r.output).toContain('5 640 regular file');
    expect(r.output).toMatch(/can't stat 'missing.txt': No such file or directory/);
    expect(r.code).toBe(0);
    const log = d.log();
    expect(log).toMatch(/ADD_MEM_REG ok/);
    expect(log).toMatch(/GET_VRING_BASE ok/);
    expect(log).toMatch(/FUSE_INIT: ok/);
    expect(log).not.toMatch(/ERROR/);
    // Without --keep-serving vfsd exits when its front-end goes away, as virtiofsd does.
    expect(code).toBe(0);
    expect(fs.existsSync(d.sock)).toBe(false);
  } finally {
    d.cleanup();
  }
});
