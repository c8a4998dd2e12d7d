// Debian's libvirt (bookworm, 9.0) runs vfsd as a domain's virtiofs daemon, as a user would: the
// domain XML names vfsd in <binary path>, libvirt starts it itself (--fd=N -o source=...,cache=...,
// <lock options> --thread-pool-size=N; libvirt 9.0 runs no --print-capabilities probe for a named
// binary, seen with a logging wrapper) and kills it on destroy.
// The guest is the harness's (scripts/guest): a direct kernel boot whose /init mounts the tag and
// runs /vfsd/script from a second cpio appended to the initramfs. The script's output comes back
// through a second serial port written to a file. Locks on: a flock and a POSIX lock a host process
// holds on files in the share are seen by the guest; locks off (-o no_posix_lock,no_flock) they are
// not, the guest's locks stay inside the guest's kernel.
// Needs root: scripts/setup-libvirt.sh installs libvirt and starts libvirtd and virtlogd.
import { ChildProcess, execFileSync, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { BIN, REPO, VM_DIR, guest } from './e2e-helpers';

jest.setTimeout(180_000);

const URI = 'qemu:///system';
const DONE = 'VFSD-LIBVIRT-DONE';

function virsh(...args: string[]): string {
  return execFileSync('virsh', ['-c', URI, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** KERNEL= and INITRD= of the harness's cache (the default bookworm flavour: QEMU 7.2, Linux 6.1). */
function guestImages(): { kernel: string; initrd: string } {
  const ready = fs.readFileSync(path.join(VM_DIR, 'ready'), 'utf8');
  const get = (k: string) => new RegExp(`^${k}=(.*)$`, 'm').exec(ready)?.[1] ?? '';
  return { kernel: get('KERNEL'), initrd: get('INITRD') };
}

/** The base initramfs with the script appended as /vfsd/script, as run-guest.sh builds it. */
function buildInitrd(base: string, script: string, dir: string): string {
  const extra = path.join(dir, 'extra');
  fs.mkdirSync(path.join(extra, 'vfsd'), { recursive: true });
  fs.writeFileSync(path.join(extra, 'vfsd', 'script'), script, { mode: 0o755 });
  const out = path.join(dir, 'initrd.img');
  execFileSync('bash', ['-c', 'set -o pipefail; cat "$1" >"$3"; (cd "$2" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) | gzip -1 >>"$3"', 'bash', base, extra, out]);
  return out;
}

/** A host process holding a lock on FILE (guestctl-host hold|hold-flock) until its stdin closes. */
async function holdLock(file: string, how: 'hold' | 'hold-flock'): Promise<ChildProcess> {
  const holder = spawn(path.join(VM_DIR, 'guestctl-host'), [file, how], { stdio: ['pipe', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    holder.stdout!.once('data', (b) => (String(b).includes('held') ? resolve() : reject(new Error(String(b)))));
    holder.once('exit', (c) => reject(new Error(`lock holder exited ${c}`)));
  });
  return holder;
}

/** vfsd processes libvirt started for this share (the launcher, and with the sandbox unshare and the daemon). */
function vfsdPids(share: string): string[] {
  const r = spawnSync('pgrep', ['-f', `source=${share.replace(/[.]/g, '\\.')}`], { encoding: 'utf8' });
  return r.stdout.split('\n').filter(Boolean);
}

async function waitFor<T>(what: string, ms: number, f: () => T | undefined): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

// The guest reports what it sees, then stays up with the share mounted so that the test ends the
// domain with virsh destroy (after 300 s it powers off by itself: on_poweroff is destroy).
const SCRIPT = `
echo "read: $(cat host.txt)"
if guestctl flock.lock flock >/dev/null 2>&1; then echo "flock: granted"; else echo "flock: refused"; fi
echo "getlk: $(guestctl posix.lock getlk)"
echo ${DONE}
sleep 300
`;

beforeAll(async () => {
  await guest.setup();
  execFileSync(path.join(REPO, 'scripts', 'setup-libvirt.sh'), { stdio: 'inherit' });
});

// Each case also varies the other <binary> options, so that everything libvirt 9 can pass is tried.
test.each([
  { locks: 'on', binary: `<binary path='${BIN}' xattr='on'><cache mode='always'/><sandbox mode='namespace'/><lock posix='on' flock='on'/><thread_pool size='2'/></binary>`, passes: /--fd=\d+ -o source=\S+,cache=always,sandbox=namespace,xattr,flock,posix_lock --thread-pool-size=2/ },
  { locks: 'off', binary: `<binary path='${BIN}'><cache mode='none'/><lock posix='off' flock='off'/></binary>`, passes: /--fd=\d+ -o source=\S+,cache=none,no_flock,no_posix_lock$/m },
])('libvirt starts vfsd for a domain, locks $locks: the guest reads a host file, sees host locks only with locks on; destroy leaves no vfsd', async ({ locks, binary, passes }) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vfsd-libvirt-'));
  // QEMU runs as libvirt-qemu: it must reach the kernel, initrd and serial files in here (libvirt
  // chowns the kernel and initrd for the run; vfsd runs as root).
  fs.chmodSync(dir, 0o755);
  const share = path.join(dir, 'share');
  fs.mkdirSync(share);
  fs.writeFileSync(path.join(share, 'host.txt'), 'hello from the host\n');
  fs.writeFileSync(path.join(share, 'flock.lock'), '');
  fs.writeFileSync(path.join(share, 'posix.lock'), '');
  const name = `vfsd-e2e-${process.pid}-locks-${locks}`;
  const tag = `vfsdlibvirt${locks}`;
  const out = path.join(dir, 'ttyS1.log');
  const con = path.join(dir, 'console.log');
  const holders: ChildProcess[] = [];
  let defined = false;
  try {
    holders.push(await holdLock(path.join(share, 'flock.lock'), 'hold-flock'), await holdLock(path.join(share, 'posix.lock'), 'hold'));
    const img = guestImages();
    // A copy: libvirt chowns the kernel while the domain runs, and other tests boot the cached one.
    const kernel = path.join(dir, 'vmlinuz');
    fs.copyFileSync(img.kernel, kernel);
    const initrd = buildInitrd(img.initrd, SCRIPT, dir);
    const xml = `<domain type='qemu'>
  <name>${name}</name>
  <memory unit='MiB'>512</memory>
  <vcpu>1</vcpu>
  <!-- vhost-user needs guest memory QEMU can share with the daemon -->
  <memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>${kernel}</kernel>
    <initrd>${initrd}</initrd>
    <cmdline>console=ttyS0 panic=-1 quiet vfsd.tag=${tag}</cmdline>
  </os>
  <!-- ACPI: the guest's poweroff ends the domain (without it, the kernel only halts) -->
  <features><acpi/></features>
  <!-- TCG, -cpu max as the harness runs it (QEMU 7.2 cannot use this machine's KVM) -->
  <cpu mode='maximum' migratable='off'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <filesystem type='mount' accessmode='passthrough'>
      <driver type='virtiofs' queue='1024'/>
      ${binary}
      <source dir='${share}'/>
      <target dir='${tag}'/>
    </filesystem>
    <serial type='file'><source path='${con}'/><target port='0'/></serial>
    <serial type='file'><source path='${out}'/><target port='1'/></serial>
    <memballoon model='none'/>
  </devices>
</domain>
`;
    fs.writeFileSync(path.join(dir, 'domain.xml'), xml);
    const t0 = Date.now();
    virsh('define', path.join(dir, 'domain.xml'));
    defined = true;
    virsh('start', name);
    const started = Date.now();
    const defineSeconds = (started - t0) / 1000;
    const output = await waitFor(`${DONE} on the guest's ttyS1 (console: ${con})`, 90_000, () => {
      const text = fs.existsSync(out) ? fs.readFileSync(out, 'utf8') : '';
      if (text.includes(DONE)) return text;
      if (/VFSD-GUEST-(MOUNT-FAILED|POWEROFF)/.test(fs.existsSync(con) ? fs.readFileSync(con, 'utf8') : '')) {
        throw new Error(`the guest stopped early:\n${fs.readFileSync(con, 'utf8').slice(-3000)}\n${text}`);
      }
      return undefined;
    });
    const bootSeconds = (Date.now() - started) / 1000;
    expect(fs.readFileSync(con, 'utf8')).toMatch(/VFSD-GUEST-MOUNTED/);
    expect(output).toMatch(/^read: hello from the host$/m);
    if (locks === 'on') {
      // Served through the host: the host's flock and POSIX lock are the guest's too.
      expect(output).toMatch(/^flock: refused$/m);
      expect(output).toMatch(/^getlk: locked type=W /m);
    } else {
      // Not offered by vfsd: the guest's kernel knows only its own locks.
      expect(output).toMatch(/^flock: granted$/m);
      expect(output).toMatch(/^getlk: unlocked$/m);
    }
    // libvirt started vfsd itself, with a listening fd and the options from the XML.
    const qemuLog = fs.readFileSync(`/var/log/libvirt/qemu/${name}.log`, 'utf8');
    expect(qemuLog).toContain(`Starting external device: virtiofsd\n${BIN} `);
    expect(qemuLog).toMatch(passes);
    expect(vfsdPids(share).length).toBeGreaterThan(0);

    const destroyAt = Date.now();
    virsh('destroy', name);
    const destroySeconds = (Date.now() - destroyAt) / 1000;
    // destroy waits for libvirt to kill the daemon; allow its sandboxed children a moment to go.
    const left = await waitFor('no vfsd left', 5_000, () => (vfsdPids(share).length === 0 ? [] : undefined)).catch(() => vfsdPids(share));
    expect(left).toEqual([]);
    expect(virsh('domstate', name).trim()).toBe('shut off');
    // vfsd took everything libvirt passed without a complaint (it refuses what it cannot do).
    const vfsdLog = fs.readFileSync(`/var/log/libvirt/qemu/${name}-fs0-virtiofsd.log`, 'utf8');
    expect(vfsdLog).toMatch(/INFO: serving \S+ on fd \d+/);
    expect(vfsdLog).not.toMatch(/WARN|ERROR/);
    console.log(`libvirt, locks ${locks}: define+start ${defineSeconds.toFixed(1)} s, guest output ${bootSeconds.toFixed(1)} s after start, destroy took ${destroySeconds.toFixed(1)} s; vfsd: ${/Starting external device: virtiofsd\n(.*)/.exec(qemuLog)?.[1]}`);
  } finally {
    if (defined) {
      spawnSync('virsh', ['-c', URI, 'destroy', name], { stdio: 'ignore' });
      spawnSync('virsh', ['-c', URI, 'undefine', name], { stdio: 'ignore' });
    }
    for (const pid of vfsdPids(share)) spawnSync('kill', ['-KILL', pid]);
    for (const h of holders) h.stdin!.end();
    for (const f of [`${name}.log`, `${name}-fs0-virtiofsd.log`]) fs.rmSync(path.join('/var/log/libvirt/qemu', f), { force: true });
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
