// vhost-user message framing and payloads, as in QEMU's docs/interop/vhost-user.rst.
// Every message: a 12-byte header (request, flags, size) then `size` bytes of payload.

/** Front-end -> back-end requests (names from the spec, without the VHOST_USER_ prefix). */
export enum Request {
  GET_FEATURES = 1,
  SET_FEATURES = 2,
  SET_OWNER = 3,
  RESET_OWNER = 4,
  SET_MEM_TABLE = 5,
  SET_LOG_BASE = 6,
  SET_LOG_FD = 7,
  SET_VRING_NUM = 8,
  SET_VRING_ADDR = 9,
  SET_VRING_BASE = 10,
  GET_VRING_BASE = 11,
  SET_VRING_KICK = 12,
  SET_VRING_CALL = 13,
  SET_VRING_ERR = 14,
  GET_PROTOCOL_FEATURES = 15,
  SET_PROTOCOL_FEATURES = 16,
  GET_QUEUE_NUM = 17,
  SET_VRING_ENABLE = 18,
  SEND_RARP = 19,
  NET_SET_MTU = 20,
  SET_BACKEND_REQ_FD = 21,
  IOTLB_MSG = 22,
  SET_VRING_ENDIAN = 23,
  GET_CONFIG = 24,
  SET_CONFIG = 25,
  CREATE_CRYPTO_SESSION = 26,
  CLOSE_CRYPTO_SESSION = 27,
  POSTCOPY_ADVISE = 28,
  POSTCOPY_LISTEN = 29,
  POSTCOPY_END = 30,
  GET_INFLIGHT_FD = 31,
  SET_INFLIGHT_FD = 32,
  GPU_SET_SOCKET = 33,
  RESET_DEVICE = 34,
  VRING_KICK = 35,
  GET_MAX_MEM_SLOTS = 36,
  ADD_MEM_REG = 37,
  REM_MEM_REG = 38,
  SET_STATUS = 39,
  GET_STATUS = 40,
  GET_SHARED_OBJECT = 41,
  SET_DEVICE_STATE_FD = 42,
  CHECK_DEVICE_STATE = 43,
}

export function requestName(code: number): string {
  return Request[code] ?? `UNKNOWN(${code})`;
}

export const HEADER_SIZE = 12;
/** Header flags: version in bits 0-1, then REPLY and NEED_REPLY. */
export const FLAG_VERSION = 0x1;
export const FLAG_VERSION_MASK = 0x3;
export const FLAG_REPLY = 0x4;
export const FLAG_NEED_REPLY = 0x8;
/** Largest payload we accept: SET_MEM_TABLE with 8 regions is 264 bytes; GET_CONFIG at most 268. */
export const MAX_PAYLOAD = 4096;

/** vhost-user protocol feature bits (VHOST_USER_PROTOCOL_F_*). */
export enum ProtocolFeature {
  MQ = 0,
  LOG_SHMFD = 1,
  RARP = 2,
  REPLY_ACK = 3,
  NET_MTU = 4,
  BACKEND_REQ = 5,
  CROSS_ENDIAN = 6,
  CRYPTO_SESSION = 7,
  PAGEFAULT = 8,
  CONFIG = 9,
  BACKEND_SEND_FD = 10,
  HOST_NOTIFIER = 11,
  INFLIGHT_SHMFD = 12,
  RESET_DEVICE = 13,
  INBAND_NOTIFICATIONS = 14,
  CONFIGURE_MEM_SLOTS = 15,
  STATUS = 16,
  XEN_MMAP = 17,
  SHARED_OBJECT = 18,
  DEVICE_STATE = 19,
}

/** Virtio and vhost feature bits used by this backend. */
/** The front-end wants writes to guest memory logged (live migration); needs LOG_SHMFD. */
export const VHOST_F_LOG_ALL = 26;
export const VIRTIO_RING_F_INDIRECT_DESC = 28;
export const VIRTIO_RING_F_EVENT_IDX = 29;
export const VHOST_USER_F_PROTOCOL_FEATURES = 30;
export const VIRTIO_F_VERSION_1 = 32;

export const bit = (n: number): bigint => 1n << BigInt(n);

/** SET_VRING_KICK/CALL/ERR payload: queue index in bits 0-7, "no fd" (polling) in bit 8. */
export const VRING_IDX_MASK = 0xffn;
export const VRING_NOFD_MASK = 0x100n;

/** The most memory regions we map (reported by GET_MAX_MEM_SLOTS). */
export const MAX_MEM_SLOTS = 32;

export interface Header {
  request: number;
  flags: number;
  size: number;
}

export function decodeHeader(b: Buffer): Header {
  return { request: b.readUInt32LE(0), flags: b.readUInt32LE(4), size: b.readUInt32LE(8) };
}

export function encodeMessage(request: number, flags: number, payload: Buffer): Buffer {
  const b = Buffer.alloc(HEADER_SIZE + payload.length);
  b.writeUInt32LE(request, 0);
  b.writeUInt32LE(flags, 4);
  b.writeUInt32LE(payload.length, 8);
  payload.copy(b, HEADER_SIZE);
  return b;
}

/** struct vhost_vring_state */
export interface VringState {
  index: number;
  num: number;
}
export const VRING_STATE_SIZE = 8;
export function decodeVringState(p: Buffer): VringState {
  return { index: p.readUInt32LE(0), num: p.readUInt32LE(4) };
}
export function encodeVringState(s: VringState): Buffer {
  const b = Buffer.alloc(VRING_STATE_SIZE);
  b.writeUInt32LE(s.index, 0);
  b.writeUInt32LE(s.num, 4);
  return b;
}

/** vhost_vring_addr.flags: log writes to this ring's used ring at log_guest_addr. */
export const VHOST_VRING_F_LOG = 0x1;

/** struct vhost_user_log (SET_LOG_BASE with LOG_SHMFD): the shared bitmap's size and offset in its fd. */
export interface VhostUserLog {
  mmap_size: bigint;
  mmap_offset: bigint;
}
export const VHOST_USER_LOG_SIZE = 16;
export function decodeLog(p: Buffer): VhostUserLog {
  return { mmap_size: p.readBigUInt64LE(0), mmap_offset: p.readBigUInt64LE(8) };
}
export function encodeLog(l: VhostUserLog): Buffer {
  const b = Buffer.alloc(VHOST_USER_LOG_SIZE);
  b.writeBigUInt64LE(l.mmap_size, 0);
  b.writeBigUInt64LE(l.mmap_offset, 8);
  return b;
}

/** SET_DEVICE_STATE_FD payload ("device state transfer parameters"): direction, then phase. */
export enum TransferDirection {
  SAVE = 0,
  LOAD = 1,
}
/** The only phase defined: the devices are stopped, after memory was transferred. */
export const MIGRATION_PHASE_STOPPED = 0;
export const DEVICE_STATE_PARAMS_SIZE = 8;
export interface DeviceStateParams {
  direction: number;
  phase: number;
}
export function decodeDeviceStateParams(p: Buffer): DeviceStateParams {
  return { direction: p.readUInt32LE(0), phase: p.readUInt32LE(4) };
}
export function encodeDeviceStateParams(d: DeviceStateParams): Buffer {
  const b = Buffer.alloc(DEVICE_STATE_PARAMS_SIZE);
  b.writeUInt32LE(d.direction, 0);
  b.writeUInt32LE(d.phase, 4);
  return b;
}
/** SET_DEVICE_STATE_FD reply: bits 0-7 an error code, bit 8 "no fd of the back-end's own". */
export const DEVICE_STATE_NO_FD = 0x100n;

/** struct vhost_vring_addr: ring addresses are front-end (QEMU) virtual addresses. */
export interface VringAddr {
  index: number;
  flags: number;
  desc_user_addr: bigint;
  used_user_addr: bigint;
  avail_user_addr: bigint;
  log_guest_addr: bigint;
}
export const VRING_ADDR_SIZE = 40;
export function decodeVringAddr(p: Buffer): VringAddr {
  return {
    index: p.readUInt32LE(0),
    flags: p.readUInt32LE(4),
    desc_user_addr: p.readBigUInt64LE(8),
    used_user_addr: p.readBigUInt64LE(16),
    avail_user_addr: p.readBigUInt64LE(24),
    log_guest_addr: p.readBigUInt64LE(32),
  };
}
export function encodeVringAddr(a: VringAddr): Buffer {
  const b = Buffer.alloc(VRING_ADDR_SIZE);
  b.writeUInt32LE(a.index, 0);
  b.writeUInt32LE(a.flags, 4);
  b.writeBigUInt64LE(a.desc_user_addr, 8);
  b.writeBigUInt64LE(a.used_user_addr, 16);
  b.writeBigUInt64LE(a.avail_user_addr, 24);
  b.writeBigUInt64LE(a.log_guest_addr, 32);
  return b;
}

/** struct vhost_user_memory_region */
export interface MemoryRegionDesc {
  guest_phys_addr: bigint;
  memory_size: bigint;
  userspace_addr: bigint;
  mmap_offset: bigint;
}
export const MEMORY_REGION_SIZE = 32;
function decodeRegion(p: Buffer, off: number): MemoryRegionDesc {
  return {
    guest_phys_addr: p.readBigUInt64LE(off),
    memory_size: p.readBigUInt64LE(off + 8),
    userspace_addr: p.readBigUInt64LE(off + 16),
    mmap_offset: p.readBigUInt64LE(off + 24),
  };
}
function writeRegion(b: Buffer, off: number, r: MemoryRegionDesc): void {
  b.writeBigUInt64LE(r.guest_phys_addr, off);
  b.writeBigUInt64LE(r.memory_size, off + 8);
  b.writeBigUInt64LE(r.userspace_addr, off + 16);
  b.writeBigUInt64LE(r.mmap_offset, off + 24);
}

/** SET_MEM_TABLE payload: u32 nregions, u32 padding, regions. Returns null when sizes disagree. */
export function decodeMemoryTable(p: Buffer): MemoryRegionDesc[] | null {
  if (p.length < 8) return null;
  const n = p.readUInt32LE(0);
  if (n > 8 || p.length < 8 + n * MEMORY_REGION_SIZE) return null;
  const out: MemoryRegionDesc[] = [];
  for (let i = 0; i < n; i++) out.push(decodeRegion(p, 8 + i * MEMORY_REGION_SIZE));
  return out;
}
export function encodeMemoryTable(regions: readonly MemoryRegionDesc[]): Buffer {
  const b = Buffer.alloc(8 + regions.length * MEMORY_REGION_SIZE);
  b.writeUInt32LE(regions.length, 0);
  regions.forEach((r, i) => writeRegion(b, 8 + i * MEMORY_REGION_SIZE, r));
  return b;
}

/** ADD_MEM_REG / REM_MEM_REG payload: u64 padding then one region. */
export const SINGLE_REGION_SIZE = 8 + MEMORY_REGION_SIZE;
export function decodeSingleRegion(p: Buffer): MemoryRegionDesc {
  return decodeRegion(p, 8);
}
export function encodeSingleRegion(r: MemoryRegionDesc): Buffer {
  const b = Buffer.alloc(SINGLE_REGION_SIZE);
  writeRegion(b, 8, r);
  return b;
}

export function encodeU64(v: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(v);
  return b;
}
