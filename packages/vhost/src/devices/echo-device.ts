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
  logger?: Logger;
}

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
}
