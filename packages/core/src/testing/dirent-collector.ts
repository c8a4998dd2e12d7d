// A DirentSink that keeps the entries as objects, for tests that call a filesystem's readdir directly.
import type { DirentSink } from '../filesystem';
import { direntplusSize, direntSize, type FuseEntryOutReply } from '../fuse';

/** One entry as a filesystem added it. */
export interface ListedEntry {
  ino: bigint;
  /** Cookie of the next entry. */
  off: bigint;
  type: number;
  name: Buffer;
  /** READDIRPLUS: the entry_out it came with. */
  entry?: FuseEntryOutReply;
}

/** Takes entries while their records (the sizes the server packs) fit `room` bytes. */
export class DirentCollector implements DirentSink {
  readonly entries: ListedEntry[] = [];
  left: number;

  constructor(
    readonly plus: boolean,
    room: number,
  ) {
    this.left = room;
  }

  fits(nameLen: number): boolean {
    return (this.plus ? direntplusSize(nameLen) : direntSize(nameLen)) <= this.left;
  }

  add(ino: bigint, off: bigint, type: number, name: Uint8Array, entry?: FuseEntryOutReply): boolean {
    if (!this.fits(name.length)) return false;
    this.left -= this.plus ? direntplusSize(name.length) : direntSize(name.length);
    this.entries.push({ ino, off, type, name: Buffer.from(name), entry });
    return true;
  }
}
