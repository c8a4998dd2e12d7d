// When a front-end goes away its memory mappings and fds are released; an inherited listening
// socket (virtiofsd's --fd) is served like a path.
import * as fs from 'fs';
import { SimulatedFrontend } from '../src/frontend/simulated-frontend';
import { serve } from '../src/backend/serve';
import { EchoDevice } from '../src/devices/echo-device';
import { silentLogger } from '../src/backend/device';
import { AF_UNIX, SOCK_CLOEXEC, SOCK_STREAM, bind, listen, socket, sockaddrUn } from '../src/sys/libc';
import { startEcho, stopEcho } from './harness';

function openFds(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

function mappedMemfds(): number {
  return fs.readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => l.includes('vfsd-guest-ram')).length;
}

test('a disconnect releases every fd and mapping of the session', async () => {
  const e = startEcho({ reconnect: true });
  const fe0 = await SimulatedFrontend.connect(e.socketPath); // warm up (worker, ffi)
  await fe0.negotiate({ numQueues: 2 });
  fe0.close();
  await e.backends[0].finished;
  const fdsBefore = openFds();
  const mapsBefore = mappedMemfds();
  for (let round = 0; round < 3; round++) {
    const fe = await SimulatedFrontend.connect(e.socketPath);
    await fe.negotiate({ numQueues: 2, queueSize: 64 });
    await Promise.all(Array.from({ length: 100 }, (_, i) => fe.submit(i % 2, [Buffer.alloc(32, i)], [32])));
    // Both sides' mappings of the RAM are visible in this process while connected.
    expect(mappedMemfds()).toBeGreaterThan(mapsBefore);
    fe.close();
    await e.backends[round + 1].finished;
  }
  expect(openFds()).toBe(fdsBefore);
  expect(mappedMemfds()).toBe(mapsBefore);
  await stopEcho(e);
});

test('an inherited listening fd is served', async () => {
  const dir = fs.mkdtempSync('/tmp/vfsd-fd-');
  const path = `${dir}/s.sock`;
  const fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  bind(fd, sockaddrUn(path));
  listen(fd, 1);
  const server = serve({ fd, logger: silentLogger, createDevice: () => new EchoDevice({ logger: silentLogger }) });
  const fe = await SimulatedFrontend.connect(path);
  await fe.negotiate({ numQueues: 1 });
  expect((await fe.submit(0, [Buffer.from('via fd')], [8])).data.toString()).toBe('via fd');
  fe.close();
  await server.done; // no --keep-serving: done after the front-end left
  fs.rmSync(dir, { recursive: true, force: true });
});

test('process.exit() returns promptly while a listener waits in accept and while a front-end is connected', () => {
  const { spawnSync } = require('child_process') as typeof import('child_process');
  const dir = fs.mkdtempSync('/tmp/vfsd-exit-');
  const script = `
    const { serve, silentLogger } = require(${JSON.stringify(require.resolve('../src'))});
    const { EchoDevice, SimulatedFrontend } = require(${JSON.stringify(require.resolve('../src/testing'))});
    const sock = ${JSON.stringify(`${dir}/s.sock`)};
    serve({ socketPath: sock, logger: silentLogger, createDevice: () => new EchoDevice({ logger: silentLogger }) });
    (async () => {
      if (process.argv[1] === 'connected') { const fe = await SimulatedFrontend.connect(sock); await fe.negotiate({ numQueues: 1 }); }
      setTimeout(() => process.exit(3), 50);
    })();`;
  for (const mode of ['idle', 'connected']) {
    const r = spawnSync(process.execPath, ['-e', script, mode], { timeout: 10_000 });
    expect(r.status).toBe(3);
  }
  fs.rmSync(dir, { recursive: true, force: true });
});
