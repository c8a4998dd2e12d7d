// A virtio-fs device that completes the FUSE handshake (INIT) and answers every other request
// ENOSYS. It lets `vfsd` serve a real QEMU end to end while the actor core (request actors, the
// passthrough pool) is being built; it is replaced by the actor-based device.
import { ChainError, DescriptorChain, Logger, VhostUserDevice, Virtqueue, VirtqueueError } from '@vfsd/vhost';

const IN_HEADER = 40;
const OUT_HEADER = 16;
const FUSE_INIT = 26;
const FUSE_FORGET = 2;
const FUSE_BATCH_FORGET = 42;
const ENOSYS = 38;
const EIO = 5;
const INIT_OUT_SIZE = 64;

export interface MinimalDeviceOptions {
  /** Request queues besides the hiprio queue (QEMU's num-request-queues). */
  requestQueues: number;
  logger: Logger;
}

export class MinimalVirtioFsDevice implements VhostUserDevice {
  readonly numQueues: number;
  readonly features = 0n;
  requests = 0;

  constructor(private readonly options: MinimalDeviceOptions) {
    this.numQueues = 1 + options.requestQueues;
  }

  queueStarted(vq: Virtqueue): void {
    this.options.logger.info(`queue ${vq.index} started (size ${vq.size})`);
  }

  kicked(vq: Virtqueue): void {
    vq.drain(
      (chain) => this.handle(vq, chain),
      (err: ChainError | VirtqueueError) => this.options.logger.error(err.message),
    );
    vq.notify();
  }

  private handle(vq: Virtqueue, chain: DescriptorChain): void {
    this.requests++;
    if (chain.readableLength < IN_HEADER) {
      this.options.logger.error(`queue ${vq.index} head ${chain.head}: request of ${chain.readableLength} bytes is shorter than fuse_in_header`);
      vq.push(chain.head, 0);
      return;
    }
    const req = chain.readAll();
    const opcode = req.readUInt32LE(4);
    const unique = req.readBigUInt64LE(8);
    if (opcode === FUSE_FORGET || opcode === FUSE_BATCH_FORGET) {
      vq.push(chain.head, 0);
      return;
    }
    let reply: Buffer;
    if (opcode === FUSE_INIT && req.length >= IN_HEADER + 8) {
      reply = Buffer.alloc(OUT_HEADER + INIT_OUT_SIZE);
      reply.writeUInt32LE(7, OUT_HEADER); // major
      reply.writeUInt32LE(Math.min(38, req.readUInt32LE(IN_HEADER + 4)), OUT_HEADER + 4); // minor
      reply.writeUInt32LE(1 << 20, OUT_HEADER + 20); // max_write
      reply.writeUInt32LE(1, OUT_HEADER + 24); // time_gran
    } else {
      reply = Buffer.alloc(OUT_HEADER);
      reply.writeInt32LE(-(opcode === FUSE_INIT ? EIO : ENOSYS), 4);
    }
    reply.writeUInt32LE(reply.length, 0);
    reply.writeBigUInt64LE(unique, 8);
    vq.push(chain.head, chain.write(reply));
  }

  async stopQueue(): Promise<void> {
    // Every request is answered synchronously: nothing is ever in flight.
  }
}
