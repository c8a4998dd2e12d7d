import { SimulatedFrontend } from '../src/frontend/simulated-frontend';
import { Request, VIRTIO_F_VERSION_1, bit } from '../src/protocol/messages';
import { startEcho, stopEcho, EchoServer } from './harness';

describe('vhost-user transport with an echo device', () => {
  let e: EchoServer;
  beforeEach(() => {
    e = startEcho();
  });
  afterEach(async () => {
    await stopEcho(e);
  });

  test('handshake and one echoed request', async () => {
    const fe = await SimulatedFrontend.connect(e.socketPath);
    await fe.negotiate({ numQueues: 2, queueSize: 64 });
    expect(fe.backendFeatures & bit(VIRTIO_F_VERSION_1)).toBeTruthy();
    const r = await fe.submit(1, [Buffer.from('hello, device')], [64]);
    expect(r.len).toBe(13);
    expect(r.data.toString()).toBe('hello, device');
    expect(await fe.getU64(Request.GET_QUEUE_NUM)).toBe(2n);
    fe.close();
  });
});
