// Which way to look a name up, from what lookups have been finding lately. A name whose inode the table
// holds costs one statx by name (its stat finds the entry; the entry's open fd keeps the inode and its
// number alive), where opening it first costs openat, statx and a close of the second fd. A name never
// seen costs openat and statx opened first, one statx more stat-first. Stat-first pays once more than a
// third of lookups find a known inode: a guest walking known paths (cache=never looks up every
// component) gets it, one listing new files or forgetting each listing does not pay for it.

/** Lookups remembered, about (the weight of the newest one is 1/WINDOW). */
const WINDOW = 32;

export class LookupMix {
  /** The share of recent lookups that found a known inode (an exponentially weighted average). */
  private knownShare = 0.5;

  /** Whether the next lookup should stat the name first. */
  get statFirst(): boolean {
    return this.knownShare > 1 / 3;
  }

  /** One lookup's outcome: it found an inode the table held, or a new one. */
  record(known: boolean): void {
    this.knownShare += ((known ? 1 : 0) - this.knownShare) / WINDOW;
  }
}
