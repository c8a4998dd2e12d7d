// Permission answers a non-root guest user gets, against Debian's C virtiofsd on the same script:
// the guest kernel checks permissions itself (virtio-fs mounts with default_permissions, and it knows
// the caller's supplementary groups); the daemon, which switches to the caller's fsuid/fsgid without
// those groups, must not refuse what the guest allowed.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { exitWithin, guest, startDaemon } from './e2e-helpers';

jest.setTimeout(180_000);

// uid 65534 with primary group 65532 and supplementary group 65531, as a login gives them.
const AS = 'guestctl as 65534 65532 65531';
const SCRIPT = `
touch f l-target d-file && ln -s l-target l && chown -h 65534:65532 f l l-target d-file
try() { if "$@" 2>/tmp/err; then echo ok; else echo "fail: $(cat /tmp/err)"; fi; }
echo "chown to a supplementary group: $(try ${AS} chown 65534:65531 f) gid $(stat -c %g f)"
chown 65534:65532 f
echo "chgrp -1:group: $(try ${AS} chown :65531 f) gid $(stat -c %g f)"
echo "lchown: $(try ${AS} chown -h 65534:65531 l) gid $(stat -c %g l) target $(stat -c %g l-target)"
echo "chown to a group not held: $(try ${AS} chown :65530 d-file) gid $(stat -c %g d-file)"
echo "chown to another user: $(try ${AS} chown 1000 d-file) uid $(stat -c %u d-file)"
`;

async function onVfsd(): Promise<string> {
  const d = startDaemon();
  try {
    const r = await guest.runGuest({ socket: d.sock, tag: 'vfsdperm', script: SCRIPT, daemonPid: d.child.pid });
    expect(r.harnessError).toBeNull();
    expect(await exitWithin(d, 10_000)).toBe(0);
    return r.output;
  } finally {
    d.cleanup();
  }
}

async function onVirtiofsd(): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vfsd-perm-c-'));
  const share = path.join(dir, 'share');
  fs.mkdirSync(share);
  const sock = path.join(dir, 'c.sock');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { startVirtiofsd } = require(path.join(__dirname, '..', '..', '..', '..', 'scripts', 'guest', 'guest.js')) as {
    startVirtiofsd(o: { socketPath: string; sourceDir: string; args?: string[] }): Promise<import('child_process').ChildProcess>;
  };
  const c = await startVirtiofsd({ socketPath: sock, sourceDir: share });
  try {
    const r = await guest.runGuest({ socket: sock, tag: 'vfsdperm', script: SCRIPT, daemonPid: c.pid });
    expect(r.harnessError).toBeNull();
    return r.output;
  } finally {
    c.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('a non-root guest user with a supplementary group gets the answers the C virtiofsd gives', async () => {
  await guest.setup();
  const mine = await onVfsd();
  const theirs = await onVirtiofsd();
  console.log(`vfsd:\n${mine}\nvirtiofsd:\n${theirs}`);
  expect(mine).toMatch(/^chown to a supplementary group: ok gid 65531$/m);
  expect(mine).toMatch(/^chgrp -1:group: ok gid 65531$/m);
  expect(mine).toMatch(/^lchown: ok gid 65531 target 65532$/m);
  expect(mine).toMatch(/^chown to a group not held: fail: .*gid 65532$/m);
  expect(mine).toMatch(/^chown to another user: fail: .*uid 65534$/m);
  expect(mine).toBe(theirs);
});

// FUSE_CREATE_SUPP_GROUP (Linux ≥ 6.3, so the 6.12 guest): the caller may write into a directory of
// its supplementary group; the kernel tells the daemon that group with the create.
test('a non-root guest user creates in a directory its supplementary group may write (FUSE_CREATE_SUPP_GROUP)', async () => {
  const env = { VFSD_GUEST_FLAVOR: 'backports' };
  await guest.setup(env);
  const d = startDaemon();
  try {
    const script = `
try() { if "$@" 2>/tmp/err; then echo ok; else echo "fail: $(cat /tmp/err)"; fi; }
mkdir g && chown 0:65531 g && chmod 0775 g && touch f && chown 65534:65532 f
echo "create: $(try ${AS} touch g/file) gid $(stat -c %g g/file) uid $(stat -c %u g/file)"
echo "mkdir: $(try ${AS} mkdir g/sub)"
echo "symlink: $(try ${AS} ln -s x g/link)"
echo "mkfifo: $(try ${AS} mkfifo g/fifo)"
echo "link: $(try ${AS} ln f g/hard)"
echo "not a member: $(try guestctl as 65534 65532 - touch g/nope)"
`;
    const r = await guest.runGuest({ socket: d.sock, tag: 'vfsdsupp', script, daemonPid: d.child.pid, env });
    console.log(r.output);
    expect(r.harnessError).toBeNull();
    expect(r.output).toMatch(/^create: ok gid 65532 uid 65534$/m);
    for (const what of ['mkdir', 'symlink', 'mkfifo', 'link']) expect(r.output).toMatch(new RegExp(`^${what}: ok$`, 'm'));
    expect(r.output).toMatch(/^not a member: fail: .*Permission denied/m);
    expect(fs.statSync(path.join(d.share, 'g', 'file')).gid).toBe(65532);
    expect(await exitWithin(d, 10_000)).toBe(0);
  } finally {
    d.cleanup();
  }
});
