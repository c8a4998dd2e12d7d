// Moving a device's state through the pipe of SET_DEVICE_STATE_FD (vhost-user "Migrating back-end
// state"): the source writes everything and closes its end; the destination reads to EOF, then
// loads. CHECK_DEVICE_STATE then asks how it went, so the outcome is kept as a settled promise.
import * as fs from 'fs';
import { finished } from 'stream/promises';
import { closeFd } from '../sys/close-fd';
import type { VhostUserDevice } from './device';

/** A state larger than this is refused on load (a hostile or broken front-end). */
export const MAX_STATE_BYTES = 256 << 20;

export type TransferOutcome = { ok: true; bytes: number } | { ok: false; error: string };

/** Writes the device's state into `fd` and closes it. Never rejects: the outcome says. */
export async function saveInto(device: VhostUserDevice, fd: number): Promise<TransferOutcome> {
  let stream: fs.WriteStream | null = null;
  try {
    const state = await device.saveState!();
    stream = fs.createWriteStream('', { fd, autoClose: true });
    stream.end(state);
    await finished(stream);
    return { ok: true, bytes: state.byteLength };
  } catch (e) {
    stream?.destroy();
    if (!stream) closeFd(fd);
    return { ok: false, error: `saving the device state: ${(e as Error).message}` };
  }
}

/** Reads `fd` to EOF (then closes it) and loads the bytes into the device. Never rejects. */
export async function loadFrom(device: VhostUserDevice, fd: number): Promise<TransferOutcome> {
  const stream = fs.createReadStream('', { fd, autoClose: true });
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > MAX_STATE_BYTES) throw new Error(`more than ${MAX_STATE_BYTES} bytes of state`);
      chunks.push(chunk);
    }
    await device.loadState!(Buffer.concat(chunks, total));
    return { ok: true, bytes: total };
  } catch (e) {
    stream.destroy();
    return { ok: false, error: `loading the device state: ${(e as Error).message}` };
  }
}
