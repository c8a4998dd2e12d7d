// Live migration's device-state transfer (DEVICE_STATE: SET_DEVICE_STATE_FD, CHECK_DEVICE_STATE):
// a source back-end saves into a real pipe, a destination back-end loads from another, as QEMU does.
import * as fs from 'fs';
import { SimulatedFrontend } from '../src/frontend/simulated-frontend';
import { pipe2 } from '../src/sys/libc';
import { DEVICE_STATE_NO_FD, ProtocolFeature, Request, TransferDirection, bit, encodeDeviceStateParams } from '../src/protocol/messages';
import { startEcho, stopEcho, EchoServer } from './harness';

async function readAll(fd: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of fs.createReadStream('', { fd }) as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

function writeAll(fd: number, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = fs.createWriteStream('', { fd });
    s.on('error', reject);
    s.end(data, () => resolve());
  });
}

async function stopRings(fe: SimulatedFrontend, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await fe.getVringBase(i);
}

async function setStateFd(fe: SimulatedFrontend, direction: TransferDirection, fd: number, phase = 0): Promise<bigint> {
  const r = await fe.request(Request.SET_DEVICE_STATE_FD, encodeDeviceStateParams({ direction, phase }), { fds: [fd], reply: true });
  return r!.readBigUInt64LE(0);
}

async function check(fe: SimulatedFrontend): Promise<bigint> {
  return fe.getU64(Request.CHECK_DEVICE_STATE);
}

describe('device state transfer for live migration', () => {
  let src: EchoServer;
  let dst: EchoServer;
  afterEach(async () => {
    await stopEcho(src);
    if (dst) await stopEcho(dst);
  });

  test.each([0, 1 << 20])('the state saved on the source (%i filler bytes) is what the destination loads', async (filler) => {
    src = startEcho({ stateFiller: filler });
    dst = startEcho({ stateFiller: filler });
    const a = await SimulatedFrontend.connect(src.socketPath);
    await a.negotiate({ numQueues: 1, migration: true });
    expect(a.protocolFeatures & bit(ProtocolFeature.DEVICE_STATE)).toBeTruthy();
    await Promise.all(Array.from({ length: 37 }, (_, i) => a.submit(0, [Buffer.from(`r${i}`)], [8])));
    await stopRings(a, 1);
    const [rd, wr] = pipe2();
    expect(await setStateFd(a, TransferDirection.SAVE, wr)).toBe(DEVICE_STATE_NO_FD);
    fs.closeSync(wr); // the back-end has its own copy; EOF comes when it closes that
    const state = await readAll(rd);
    expect(state.length).toBe(16 + filler);
    expect(await check(a)).toBe(0n);

    const b = await SimulatedFrontend.connect(dst.socketPath);
    await b.negotiate({ numQueues: 1, migration: true });
    await stopRings(b, 1);
    const [rd2, wr2] = pipe2();
    expect(await setStateFd(b, TransferDirection.LOAD, rd2)).toBe(DEVICE_STATE_NO_FD);
    fs.closeSync(rd2);
    await writeAll(wr2, state);
    expect(await check(b)).toBe(0n);
    expect(dst.devices[0].completed).toBe(37);
    a.close();
    b.close();
  });

  test('a corrupt state fails CHECK_DEVICE_STATE and the destination keeps its own', async () => {
    src = startEcho();
    const b = await SimulatedFrontend.connect(src.socketPath);
    await b.negotiate({ numQueues: 1, migration: true });
    await stopRings(b, 1);
    const [rd, wr] = pipe2();
    expect(await setStateFd(b, TransferDirection.LOAD, rd)).toBe(DEVICE_STATE_NO_FD);
    fs.closeSync(rd);
    await writeAll(wr, Buffer.from('not a state at all'));
    expect(await check(b)).not.toBe(0n);
    expect(src.log.lines.some((l) => /loading the device state: not an echo device state/.test(l))).toBe(true);
    expect(src.devices[0].completed).toBe(0);
    b.close();
  });

  test('refusals are answered in the reply: a running ring, an unknown phase or direction', async () => {
    src = startEcho();
    const a = await SimulatedFrontend.connect(src.socketPath);
    await a.negotiate({ numQueues: 1, migration: true });
    const fds = pipe2();
    expect(await setStateFd(a, TransferDirection.SAVE, fds[1])).toBe(1n | DEVICE_STATE_NO_FD); // ring 0 runs
    await stopRings(a, 1);
    expect(await setStateFd(a, TransferDirection.SAVE, fds[1], 1)).toBe(1n | DEVICE_STATE_NO_FD);
    expect(await setStateFd(a, 7 as TransferDirection, fds[1])).toBe(1n | DEVICE_STATE_NO_FD);
    // CHECK without a transfer says it failed; the session goes on.
    expect(await check(a)).not.toBe(0n);
    expect(await a.getU64(Request.GET_QUEUE_NUM)).toBe(2n);
    fds.forEach((fd) => fs.closeSync(fd));
    a.close();
  });
});
