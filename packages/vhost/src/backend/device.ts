// What the vhost-user backend needs from a device (virtio-fs, or the echo device of the benchmarks).
import type { MemoryRegion } from '../memory/guest-memory';
import { Virtqueue } from '../virtqueue/virtqueue';

export interface VhostUserDevice {
  /** Queues the device exposes (virtio-fs: one hiprio queue plus the request queues). */
  readonly numQueues: number;
  /** Device-specific virtio feature bits, offered besides the ring and version bits. */
  readonly features: bigint;
  /** SET_FEATURES was accepted. */
  featuresNegotiated?(features: bigint): void;
  /**
   * False: the device cannot log its writes to guest memory (rings served by other threads), so
   * neither LOG_SHMFD nor DEVICE_STATE is offered and QEMU refuses to migrate rather than lose writes.
   */
  readonly migratable?: boolean;
  /** The device's virtio config space, read-only (GET_CONFIG; CONFIG is offered only when it is given). */
  readonly config?: Uint8Array;
  /** A memory table is in place (after SET_MEM_TABLE, ADD_MEM_REG or REM_MEM_REG). */
  memoryMapped?(regions: readonly MemoryRegion[]): void;
  /**
   * The ring is started and enabled: chains may be popped from now on. True: the device serves the
   * ring elsewhere and watches `kickFd` itself (a copy it made): the backend stops watching it, and
   * kicked() is not called for this ring.
   */
  queueStarted(vq: Virtqueue, kickFd: number | null): boolean | void;
  /** SET_VRING_CALL on a started ring (QEMU swaps call fds when the guest masks the vector). */
  callFdChanged?(vq: Virtqueue): void;
  /** The driver kicked (or the ring was just enabled): pop and handle what is available. */
  kicked(vq: Virtqueue): void;
  /**
   * The ring is stopping (GET_VRING_BASE, disconnect, reset): stop popping, settle every chain in
   * flight (push it, or drop it when the connection is gone), then resolve. `stop` is a ring
   * stopped by the front-end (requests may finish; waits that could last forever are cancelled),
   * `disconnect` a front-end that is gone (everything is cancelled).
   */
  stopQueue(vq: Virtqueue, reason: 'stop' | 'disconnect'): Promise<void>;
  /**
   * Live migration (DEVICE_STATE), with every ring stopped: the state the driver depends on, as
   * bytes the destination's loadState() understands (versioned by the device). Offered only by
   * devices that have both.
   */
  saveState?(): Uint8Array | Promise<Uint8Array>;
  /** Rebuilds the state saveState() wrote, before the rings start; throws if it cannot. */
  loadState?(state: Uint8Array): void | Promise<void>;
  /** The front-end went away; every queue has been stopped already. */
  disconnected?(): void | Promise<void>;
}

export interface Logger {
  error(message: string): void;
  warn(message: string): void;
  info(message: string): void;
  debug(message: string): void;
}

export const consoleLogger: Logger = {
  error: (m) => console.error(`[vhost] error: ${m}`),
  warn: (m) => console.error(`[vhost] warn: ${m}`),
  info: () => undefined,
  debug: () => undefined,
};

export const silentLogger: Logger = {
  error: () => undefined,
  warn: () => undefined,
  info: () => undefined,
  debug: () => undefined,
};
