// --tag: the device's virtio config space (struct virtio_fs_config) through vhost-user GET_CONFIG, as
// a front-end that negotiates CONFIG reads it over the real socket.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ProtocolFeature, Request, bit, serve, silentLogger } from '@vfsd/vhost';
import { SimulatedFrontend } from '@vfsd/vhost/testing';
import { VirtioFsDevice } from '@vfsd/core';
import { PassthroughFs } from '@vfsd/passthrough';

async function withDaemon(tag: string | undefined, fn: (sock: string) => Promise<void>): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vfsd-config-'));
  const share = path.join(dir, 'share');
  fs.mkdirSync(share);
  const sock = path.join(dir, 'vhost.sock');
  const server = serve({ socketPath: sock, reconnect: true, logger: silentLogger, createDevice: () => new VirtioFsDevice({ fs: new PassthroughFs({ sharedDir: share }), requestQueues: 2, logger: silentLogger, tag }) });
  try {
    await fn(sock);
  } finally {
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('the device config space (--tag)', () => {
  test('GET_CONFIG answers the tag, NUL-padded to 36 bytes, and the number of request queues', async () => {
    await withDaemon('shared-ü', async (sock) => {
      const fe = await SimulatedFrontend.connect(sock);
      await fe.negotiate({ numQueues: 3, config: true });
      expect(fe.protocolFeatures & bit(ProtocolFeature.CONFIG)).not.toBe(0n);
      const whole = await fe.getConfig(0, 40);
      expect(whole.length).toBe(40);
      expect(whole.subarray(0, 9).toString('utf8')).toBe('shared-ü');
      expect([...whole.subarray(9, 36)].every((b) => b === 0)).toBe(true);
      expect(whole.readUInt32LE(36)).toBe(2);
      expect((await fe.getConfig(36, 4)).readUInt32LE(0)).toBe(2);
      // Past the end: a zero-length payload, the spec's way of saying it failed; the session goes on.
      expect((await fe.getConfig(30, 16)).length).toBe(0);
      expect(await fe.requestAck(Request.SET_CONFIG, Buffer.alloc(12 + 4))).toBe(1n);
      expect(await fe.getVringBase(1)).toBe(0);
      await fe.close();
    });
  });

  test('without --tag the CONFIG feature is not offered', async () => {
    await withDaemon(undefined, async (sock) => {
      const fe = await SimulatedFrontend.connect(sock);
      await fe.negotiate({ numQueues: 3, config: true });
      expect(fe.protocolFeatures & bit(ProtocolFeature.CONFIG)).toBe(0n);
      await fe.close();
    });
  });
});
