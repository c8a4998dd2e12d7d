// The inode table's index by host identity: (st_dev, st_ino), and the mount id for a directory when
// mounts are told apart. Keyed by the inode number as a JS number: a string of the 64-bit values cost
// 255 ns a lookup here, a number 42-65 ns (node 20, 100,000 keys). Inodes whose numbers meet (other
// devices or mounts, numbers past 2^53) share a slot as a short list.

export interface KeyedInode {
  readonly dev: bigint;
  readonly ino: bigint;
  readonly mntId?: bigint;
}

function same(e: KeyedInode, dev: bigint, ino: bigint, mntId: bigint | undefined): boolean {
  return e.ino === ino && e.dev === dev && e.mntId === mntId;
}

export class InodeKeys<E extends KeyedInode> {
  private readonly slots = new Map<number, E | E[]>();

  get(dev: bigint, ino: bigint, mntId?: bigint): E | undefined {
    const v = this.slots.get(Number(ino));
    if (v === undefined) return undefined;
    if (!Array.isArray(v)) return same(v, dev, ino, mntId) ? v : undefined;
    for (const e of v) if (same(e, dev, ino, mntId)) return e;
    return undefined;
  }

  /** Indexes `e`, in place of an entry with the same identity. */
  set(e: E): void {
    const slot = Number(e.ino);
    const v = this.slots.get(slot);
    if (v === undefined || (!Array.isArray(v) && same(v, e.dev, e.ino, e.mntId))) this.slots.set(slot, e);
    else if (!Array.isArray(v)) this.slots.set(slot, [v, e]);
    else {
      const i = v.findIndex((x) => same(x, e.dev, e.ino, e.mntId));
      if (i >= 0) v[i] = e;
      else v.push(e);
    }
  }

  /** Removes `e` if it is the entry indexed for its identity (a newer one stays). */
  delete(e: E): void {
    const slot = Number(e.ino);
    const v = this.slots.get(slot);
    if (v === e) this.slots.delete(slot);
    else if (Array.isArray(v)) {
      const i = v.indexOf(e);
      if (i < 0) return;
      v.splice(i, 1);
      if (v.length === 1) this.slots.set(slot, v[0]);
    }
  }

  clear(): void {
    this.slots.clear();
  }
}
