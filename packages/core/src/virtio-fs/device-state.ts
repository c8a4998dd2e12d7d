// The byte stream a virtio-fs device's state travels in during a live migration (QEMU carries it in
// its own stream, see vhost-user's DEVICE_STATE): a magic, a version, then the session as JSON. A
// stream that is not ours, of another version, or cut short fails the load, and with it the
// migration (the source guest keeps running).
import type { FuseSessionState } from '../server/fuse-server';
import type { MigrationState } from '../filesystem';

const MAGIC = 'vfsd-fs\0';
/** Bumped when the layout changes; a destination loads only the versions it knows. */
export const DEVICE_STATE_VERSION = 1;
const HEADER = 16;

export class DeviceStateError extends Error {}

export function encodeDeviceState(state: FuseSessionState): Uint8Array {
  const json = Buffer.from(JSON.stringify({ init: state.init, fs: state.fs }), 'utf8');
  const b = Buffer.alloc(HEADER + json.length);
  b.write(MAGIC, 0, 'latin1');
  b.writeUInt32LE(DEVICE_STATE_VERSION, 8);
  b.writeUInt32LE(json.length, 12);
  json.copy(b, HEADER);
  return b;
}

export function decodeDeviceState(bytes: Uint8Array): FuseSessionState {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length < HEADER || b.toString('latin1', 0, 8) !== MAGIC) throw new DeviceStateError('not a vfsd device state');
  const version = b.readUInt32LE(8);
  if (version !== DEVICE_STATE_VERSION) throw new DeviceStateError(`device state version ${version}, this vfsd loads ${DEVICE_STATE_VERSION}`);
  const len = b.readUInt32LE(12);
  if (b.length !== HEADER + len) throw new DeviceStateError(`device state of ${b.length} bytes, its header says ${HEADER + len}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(b.toString('utf8', HEADER));
  } catch (e) {
    throw new DeviceStateError(`device state is not JSON: ${(e as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || !('init' in parsed) || !('fs' in parsed)) throw new DeviceStateError('device state lacks init or fs');
  const { init, fs } = parsed as { init: unknown; fs: unknown };
  return { init: init === null ? null : checkInit(init), fs: fs as MigrationState };
}

const INIT_FIELDS = ['major', 'minor', 'max_readahead', 'flags', 'flags2'] as const;

function checkInit(v: unknown): NonNullable<FuseSessionState['init']> {
  if (typeof v !== 'object' || v === null) throw new DeviceStateError('device state: init is not an object');
  const o = v as Record<string, unknown>;
  for (const k of INIT_FIELDS) {
    if (!Number.isInteger(o[k]) || (o[k] as number) < 0 || (o[k] as number) > 0xffffffff) throw new DeviceStateError(`device state: init.${k} is not a u32`);
  }
  return { major: o.major as number, minor: o.minor as number, max_readahead: o.max_readahead as number, flags: o.flags as number, flags2: o.flags2 as number };
}
