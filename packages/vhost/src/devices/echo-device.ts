// A device that copies each chain's readable bytes into its writable ones: the transport alone,
// for tests and the transport benchmark.
import { VhostUserDevice } from '../backend/device';
import { DescriptorChain } from '../virtqueue/descriptor-chain';
import { Virtqueue } from '../virtqueue/virtqueue';
import { Logger, consoleLogger } from '../backend/device';

export interface EchoOptions {
  numQueues?: number;
  /** Complete chains later, in shuffled order, instead of at once (tests out-of-order completion). */
  deferred?: boolean;
  /** Bytes of filler in the migrated state (tests states larger than a pipe holds). */
  stateFiller?: number;
  logger?: Logger;
}

const ECHO_STATE_MAGIC = 'vfsdecho';

export class EchoDevice implements VhostUserDevice {
  readonly numQueues: number;
  readonly features = 0n;
  chainErrors = 0;
  completed = 0;
  private readonly pending = new Map<Virtqueue, DescriptorChain[]>();
  private readonly log: Logger;

  constructor(private readonly options: EchoOptions = {}) {
    this.numQueues = options.numQueues ?? 2;
    this.log = options.logger ?? consoleLogger;
  }

  queueStarted(): void {}

  kicked(vq: Virtqueue): void {
    const batch: DescriptorChain[] = [];
    vq.drain(
      (chain) => batch.push(chain),
      (err) => {
        this.chainErrors++;
        this.log.error(err.message);
      },
    );
    if (!this.options.deferred) {
      for (const c of batch) this.complete(vq, c);
      vq.notify();
      return;
    }
    const list = this.pending.get(vq) ?? [];
    list.push(...batch);
    this.pending.set(vq, list);
    setImmediate(() => this.flush(vq));
  }

  private flush(vq: Virtqueue): void {
    const list = this.pending.get(vq);
    if (!list || list.length === 0) return;
    this.pending.set(vq, []);
    // Reverse and interleave: completions come back in a different order than submitted.
    const order = list.reverse().sort((a, b) => (a.head % 3) - (b.head % 3));
    for (const c of order) this.complete(vq, c);
    vq.notify();
  }

  private complete(vq: Virtqueue, chain: DescriptorChain): void {
    const written = chain.readableLength > 0 && chain.writableLength > 0 ? chain.write(chain.readAll()) : 0;
    this.completed++;
    vq.complete(chain, written);
  }

  async stopQueue(vq: Virtqueue): Promise<void> {
    this.flush(vq);
  }

  /** Migration: a magic, the count of echoed chains, then filler bytes (each byte its index & 0xff). */
  saveState(): Uint8Array {
    const filler = this.options.stateFiller ?? 0;
    const b = Buffer.alloc(16 + filler);
    b.write(ECHO_STATE_MAGIC, 0, 'latin1');
    b.writeBigUInt64LE(BigInt(this.completed), 8);
    for (let i = 0; i < filler; i++) b[16 + i] = i & 0xff;
    return b;
  }

  loadState(state: Uint8Array): void {
    const b = Buffer.from(state.buffer, state.byteOffset, state.byteLength);
    if (b.length < 16 || b.toString('latin1', 0, 8) !== ECHO_STATE_MAGIC) throw new Error('not an echo device state');
    for (let i = 16; i < b.length; i++) if (b[i] !== ((i - 16) & 0xff)) throw new Error(`state byte ${i} is corrupt`);
    this.completed = Number(b.readBigUInt64LE(8));
  }
}
