// Locks are the host's, not the guest's alone: while a host process holds a POSIX lock on a shared
// file, the guest's F_GETLK reports it and the guest's F_SETLKW waits until the host releases it.
// (The C virtiofsd fails that F_SETLKW with EOPNOTSUPP, or without posix_lock grants it at once.)
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { VM_DIR, exitWithin, guest, startDaemon } from './e2e-helpers';

jest.setTimeout(180_000);

test('a guest F_SETLKW waits for a lock held by a host process, and F_GETLK reports it', async () => {
  await guest.setup();
  const d = startDaemon([], (share) => fs.writeFileSync(path.join(share, 'shared.lock'), 'x'));
  try {
    // A host process takes a POSIX write lock on the file and keeps it until its stdin closes.
    const holder = spawn(path.join(VM_DIR, 'guestctl-host'), [path.join(d.share, 'shared.lock'), 'hold'], { stdio: ['pipe', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      holder.stdout!.once('data', (b) => (String(b).includes('held') ? resolve() : reject(new Error(String(b)))));
      holder.once('exit', (c) => reject(new Error(`lock holder exited ${c}`)));
    });
    const holderExited = new Promise((r) => holder.once('exit', r));
    // Release 1.5 s after the guest's F_GETLK was answered (the guest's F_SETLKW follows it at once).
    let releasedAt = 0;
    void d.waitForLog(/FUSE_GETLK: ok/, 150_000).then(async () => {
      await new Promise((r) => setTimeout(r, 1500));
      releasedAt = Date.now();
      holder.stdin!.end();
      await holderExited;
    });
    const r = await guest.runGuest({
      socket: d.sock,
      tag: 'vfsdlocks',
      script: 'guestctl shared.lock getlk\nguestctl shared.lock setlkw\n',
      timeoutSec: 150,
      daemonPid: d.child.pid,
    });
    expect(r.harnessError).toBeNull();
    expect(r.output).toMatch(/^locked type=W /m);
    const waited = Number(/acquired after (\d+) ms/.exec(r.output)?.[1]);
    expect(releasedAt).toBeGreaterThan(0);
    // The wait lasted at least most of the 1.5 s the host kept the lock after the GETLK.
    expect(waited).toBeGreaterThanOrEqual(1000);
    expect(r.code).toBe(0);
    expect(d.log()).toMatch(/FUSE_SETLKW: ok/);
    expect(await exitWithin(d, 10_000)).toBe(0);
  } finally {
    d.cleanup();
  }
});
