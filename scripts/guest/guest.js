'use strict';
// Node wrapper (no dependencies) around setup.sh and run-guest.sh, for e2e tests and `vfsd try`.
// See README.md beside this file. Types: guest.d.ts.
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const HERE = __dirname;
const EXIT = Object.freeze({
  USAGE: 240, SETUP: 241, QEMU: 242, BOOT: 243, MOUNT: 244, TIMEOUT: 245, NOEXIT: 246, DAEMON: 247,
});
const EXIT_NAMES = Object.fromEntries(Object.entries(EXIT).map(([k, v]) => [v, k]));
const VIRTIOFSD = '/usr/lib/qemu/virtiofsd';

function run(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    const out = []; const err = [];
    child.stdout.on('data', (b) => out.push(b));
    child.stderr.on('data', (b) => err.push(b));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({
      code: code ?? 128 + (os.constants.signals[signal] || 0),
      stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString(),
    }));
  });
}

/** Install packages, kernel and initramfs if needed (a fast no-op when done). */
async function setup(env = {}) {
  const r = await run('bash', [path.join(HERE, 'setup.sh')], { env: { ...process.env, ...env } });
  if (r.code !== 0) throw new Error(`scripts/guest/setup.sh failed (${r.code}):\n${r.stderr}`);
}

/**
 * Boot a guest against the daemon listening on `socket`, mount `tag`, run the script.
 * script: shell text (busybox ash); or scriptFile: a host path.
 * Resolves (never rejects for guest or harness failures) with
 * { code, output, stderr, harnessError, result }: code is the script's exit status or 240-247,
 * harnessError the name of a harness failure (or null), result the key=value file of run-guest.sh.
 */
async function runGuest({
  socket, tag, script, scriptFile, mem = '512M', timeoutSec = 120, daemonPid, logFile, env = {},
}) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vfsd-rg-'));
  try {
    let file = scriptFile;
    if (file === undefined) {
      file = path.join(tmp, 'script.sh');
      fs.writeFileSync(file, script ?? '');
    }
    const resultFile = path.join(tmp, 'result');
    const e = { ...process.env, ...env, VFSD_GUEST_RESULT: resultFile };
    if (daemonPid !== undefined) e.VFSD_DAEMON_PID = String(daemonPid);
    if (logFile !== undefined) e.VFSD_GUEST_LOG = logFile;
    const r = await run('bash', [path.join(HERE, 'run-guest.sh'), socket, tag, file, mem, String(timeoutSec)], { env: e });
    const result = {};
    if (fs.existsSync(resultFile)) {
      for (const line of fs.readFileSync(resultFile, 'utf8').split('\n')) {
        const i = line.indexOf('=');
        if (i > 0) result[line.slice(0, i)] = line.slice(i + 1);
      }
    }
    return {
      code: r.code,
      output: r.stdout.toString(),
      stderr: r.stderr,
      harnessError: r.code >= 240 ? (EXIT_NAMES[r.code] || 'UNKNOWN') : null,
      result,
    };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * Boot a guest against the daemon on `socket`, mount `tag` and run an interactive shell in it on
 * this process's terminal (run-guest.sh --interactive: stdin/stdout/stderr inherited). The guest
 * powers off when the shell exits. timeoutSec 0: none. Resolves with { code, harnessError }: code
 * is the shell's exit status or 240-247.
 */
async function runGuestInteractive({ socket, tag, mem = '512M', timeoutSec = 0, env = {} }) {
  const code = await new Promise((resolve, reject) => {
    const child = spawn('bash', [path.join(HERE, 'run-guest.sh'), '--interactive', socket, tag, mem, String(timeoutSec)],
      { stdio: 'inherit', env: { ...process.env, ...env } });
    child.on('error', reject);
    child.on('close', (c, signal) => resolve(c ?? 128 + (os.constants.signals[signal] || 0)));
  });
  return { code, harnessError: code >= 240 ? (EXIT_NAMES[code] || 'UNKNOWN') : null };
}

/** Wait until `p` exists as a UNIX socket. */
async function waitForSocket(p, timeoutMs = 10000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try { if (fs.statSync(p).isSocket()) return; } catch { /* not yet */ }
    if (Date.now() > end) throw new Error(`no socket at ${p} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Start the C virtiofsd that Debian ships (the reference peer) on socketPath, sharing sourceDir.
 * Resolves with the ChildProcess once its socket exists. It exits by itself when QEMU disconnects.
 */
async function startVirtiofsd({ socketPath, sourceDir, args = ['-o', 'cache=none'], debug = false, logFile }) {
  try { fs.unlinkSync(socketPath); } catch { /* absent */ }
  const out = logFile ? fs.openSync(logFile, 'w') : 'ignore';
  const child = spawn(VIRTIOFSD, [`--socket-path=${socketPath}`, '-o', `source=${sourceDir}`, ...args, ...(debug ? ['-d'] : [])],
    { stdio: ['ignore', out, out] });
  if (typeof out === 'number') fs.closeSync(out);
  const exited = new Promise((_, reject) => child.once('exit', (c, s) => reject(new Error(`virtiofsd exited early (${c ?? s})`))));
  exited.catch(() => {});
  await Promise.race([waitForSocket(socketPath), exited]);
  return child;
}

module.exports = { EXIT, EXIT_NAMES, VIRTIOFSD, setup, runGuest, runGuestInteractive, startVirtiofsd, waitForSocket };
