// Shared set-up for the transport tests: an echo device served on a fresh socket.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { EchoDevice, EchoOptions } from '../src/devices/echo-device';
import { Server, serve } from '../src/backend/serve';
import { VhostUserBackend } from '../src/backend/backend';
import { Logger } from '../src/backend/device';

export interface CapturedLog extends Logger {
  lines: string[];
}

export function captureLog(): CapturedLog {
  const lines: string[] = [];
  return {
    lines,
    error: (m) => lines.push(`error: ${m}`),
    warn: (m) => lines.push(`warn: ${m}`),
    info: (m) => lines.push(`info: ${m}`),
    debug: () => undefined,
  };
}

export interface EchoServer {
  server: Server;
  socketPath: string;
  devices: EchoDevice[];
  backends: VhostUserBackend[];
  log: CapturedLog;
  dir: string;
}

export function startEcho(opts: EchoOptions & { reconnect?: boolean } = {}): EchoServer {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vfsd-test-'));
  const socketPath = path.join(dir, 'vhost.sock');
  const log = captureLog();
  const devices: EchoDevice[] = [];
  const backends: VhostUserBackend[] = [];
  const server = serve({
    socketPath,
    reconnect: opts.reconnect ?? true,
    logger: log,
    createDevice: () => {
      const d = new EchoDevice({ ...opts, logger: log });
      devices.push(d);
      return d;
    },
    onBackend: (b) => backends.push(b),
  });
  return { server, socketPath, devices, backends, log, dir };
}

export async function stopEcho(e: EchoServer): Promise<void> {
  await e.server.stop();
  fs.rmSync(e.dir, { recursive: true, force: true });
}

export function until(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const start = Date.now();
  return new Promise((resolve, reject) => {
    const tick = (): void => {
      if (cond()) resolve();
      else if (Date.now() - start > timeoutMs) reject(new Error('condition not met in time'));
      else setTimeout(tick, 5);
    };
    tick();
  });
}
