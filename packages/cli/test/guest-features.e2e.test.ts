// What a real guest kernel does with the optional INIT features: submounts announced (a tmpfs mounted
// inside the share becomes its own mount in the guest, with its own st_dev, once entered: stat(2) of
// the mount point itself does not trigger the automount), POSIX ACLs (a directory's
// default ACL decides new modes, not the guest's umask), and a writeback cache (write-only and append
// writes, and a partial-page write into a file opened write-only, land on the host intact).
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { exitWithin, guest, lineValue, startDaemon } from './e2e-helpers';
import { setxattr } from '@vfsd/passthrough/dist/src/sys/libc';

jest.setTimeout(180_000);

// user::rwx, group::r-x, other::--- (system.posix_acl_default, version 2).
const ACL = Buffer.from('0200000001000700ffffffff04000500ffffffff20000000ffffffff', 'hex');

const SCRIPT = `
echo "root-dev $(stat -c %d .)"
echo "tmp-dev $(stat -c %d tmp/.)"
echo "plain-dev $(stat -c %d plain)"
echo "tmp-file $(cat tmp/on-tmpfs.txt)"
echo "mounts $(grep -c ' virtiofs ' /proc/mounts)"
umask 077
: > acl/f && echo "acl-file $(stat -c %a acl/f)"
mkdir acl/d && echo "acl-dir $(stat -c %a acl/d)"
: > plain/f && echo "plain-file $(stat -c %a plain/f)"
printf 'first\\n' > wb.txt && printf 'second\\n' >> wb.txt
printf 'XY' | dd of=page.bin bs=1 seek=4000 conv=notrunc 2>/dev/null
sync
echo done
`;

test('submounts, POSIX ACLs and the writeback cache as a real guest uses them', async () => {
  await guest.setup();
  let mounted = '';
  const d = startDaemon(['--announce-submounts', '--posix-acl', '--writeback'], (share) => {
    for (const n of ['tmp', 'plain', 'acl']) fs.mkdirSync(path.join(share, n));
    const m = spawnSync('mount', ['-t', 'tmpfs', 'vfsd-e2e', path.join(share, 'tmp')], { encoding: 'utf8' });
    if (m.status !== 0) throw new Error(`mount tmpfs (needs root): ${m.stderr}`);
    mounted = path.join(share, 'tmp');
    fs.writeFileSync(path.join(share, 'tmp', 'on-tmpfs.txt'), 'tmpfs-data');
    expect(setxattr(path.join(share, 'acl'), Buffer.from('system.posix_acl_default'), ACL, 0)).toBe(0);
    fs.writeFileSync(path.join(share, 'page.bin'), Buffer.alloc(8192, 0x61));
  });
  try {
    const r = await guest.runGuest({ socket: d.sock, tag: 'vfsdfeat', script: SCRIPT, timeoutSec: 150, daemonPid: d.child.pid });
    expect(r.harnessError).toBeNull();
    if (!/^done$/m.test(r.output)) console.log(`guest output:\n${r.output}\n${r.stderr}`);
    const v = (k: string): string | undefined => lineValue(r.output, k);
    expect(r.output).toMatch(/^done$/m);
    // The tmpfs is a mount of its own in the guest: another st_dev, another virtiofs line.
    expect(v('tmp-dev')).not.toBe(v('root-dev'));
    expect(v('plain-dev')).toBe(v('root-dev'));
    expect(v('tmp-file')).toBe('tmpfs-data');
    expect(Number(v('mounts'))).toBe(2);
    // umask 077, but the default ACL (rwx / r-x / ---) decides: 640 files, 750 directories.
    expect(v('acl-file')).toBe('640');
    expect(v('acl-dir')).toBe('750');
    expect(v('plain-file')).toBe('600');
    expect(fs.statSync(path.join(d.share, 'acl', 'f')).mode & 0o777).toBe(0o640);
    // Written through the guest's page cache and flushed by sync.
    expect(fs.readFileSync(path.join(d.share, 'wb.txt'), 'utf8')).toBe('first\nsecond\n');
    const page = fs.readFileSync(path.join(d.share, 'page.bin'));
    expect(page.length).toBe(8192);
    expect(page.subarray(4000, 4002).toString()).toBe('XY');
    expect(page.subarray(0, 4000).every((x) => x === 0x61)).toBe(true);
    expect(page.subarray(4002).every((x) => x === 0x61)).toBe(true);
    expect(r.code).toBe(0);
    expect(await exitWithin(d, 10_000)).toBe(0);
  } finally {
    if (mounted) spawnSync('umount', ['-l', mounted]);
    d.cleanup();
  }
});
