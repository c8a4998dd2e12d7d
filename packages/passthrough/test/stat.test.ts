// The statx-into-a-buffer path (sys/stat.ts) must give the same record as Node's fstat/lstat, for
// every kind of inode the passthrough holds, through O_PATH fds and by name.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { O_CLOEXEC, O_NOFOLLOW, O_PATH } from '../src/sys/constants';
import { errnoOf } from '../src/sys/errno';
import { statInto, statAtInto } from '../src/sys/libc';
import { decodeStatx, fstatRecord, statAtRecord, statxBuffer, type StatRecord } from '../src/sys/stat';
import { fuse_attr } from '@vfsd/core/abi';
import { tempDir } from './helpers';

const NS = 1_000_000_000n;

/** Seconds and nanoseconds with floor division (a pre-1970 time keeps 0 <= nsec < 1e9). */
function split(ns: bigint): [bigint, number] {
  const sec = ns / NS - (ns % NS < 0n ? 1n : 0n);
  return [sec, Number(ns - sec * NS)];
}

/** fuse_attr's wire bytes as the codec encodes Node's view of the inode (rdev: the low 32 bits of dev_t). */
function nodeAttr(s: fs.BigIntStats): Uint8Array {
  const [atime, atimensec] = split(s.atimeNs);
  const [mtime, mtimensec] = split(s.mtimeNs);
  const [ctime, ctimensec] = split(s.ctimeNs);
  const out = new Uint8Array(fuse_attr.size);
  fuse_attr.encode(
    { ino: s.ino, size: s.size, blocks: s.blocks, atime, mtime, ctime, atimensec, mtimensec, ctimensec, mode: Number(s.mode), nlink: Number(s.nlink), uid: Number(s.uid), gid: Number(s.gid), rdev: Number(BigInt.asUintN(32, s.rdev)), blksize: Number(s.blksize), flags: 0 },
    out,
  );
  return out;
}

function nodeRecord(s: fs.BigIntStats): StatRecord {
  return { dev: s.dev, ino: s.ino, mode: Number(s.mode), attr: nodeAttr(s) };
}

describe('statx into a reused buffer', () => {
  let dir: string;
  beforeAll(() => {
    dir = tempDir();
    fs.writeFileSync(path.join(dir, 'file'), 'hello');
    fs.mkdirSync(path.join(dir, 'sub'));
    fs.symlinkSync('file', path.join(dir, 'link'));
    // A time before 1970 with nanoseconds: the floor split must survive the decoder.
    fs.utimesSync(path.join(dir, 'file'), new Date(-1234567), new Date(1700000000123));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test.each(['file', 'sub', 'link', '.'])('fstatRecord of an O_PATH fd of %s equals Node lstat', (name) => {
    const p = path.join(dir, name);
    const fd = fs.openSync(p, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    try {
      expect(fstatRecord(fd)).toEqual(nodeRecord(fs.lstatSync(p, { bigint: true })));
    } finally {
      fs.closeSync(fd);
    }
  });

  test('a device node: rdev and dev encoded as Node has them', () => {
    const fd = fs.openSync('/dev/null', O_PATH | O_CLOEXEC);
    try {
      expect(fstatRecord(fd)).toEqual(nodeRecord(fs.statSync('/dev/null', { bigint: true })));
    } finally {
      fs.closeSync(fd);
    }
  });

  test('statAtRecord does not follow a final symlink; a missing name is ENOENT', () => {
    const dfd = fs.openSync(dir, O_PATH | O_CLOEXEC);
    try {
      expect(statAtRecord(dfd, Buffer.from('link'))).toEqual(nodeRecord(fs.lstatSync(path.join(dir, 'link'), { bigint: true })));
      expect(() => statAtRecord(dfd, Buffer.from('missing'))).toThrow();
      let errno = 0;
      try {
        statAtRecord(dfd, Buffer.from('missing'));
      } catch (err) {
        errno = errnoOf(err);
      }
      expect(errno).toBe(2);
    } finally {
      fs.closeSync(dfd);
    }
  });

  test('statInto/statAtInto fill a caller buffer in place and return -errno', () => {
    const buf = statxBuffer();
    const fd = fs.openSync(path.join(dir, 'file'), 'r');
    try {
      expect(statInto(fd, buf.bytes)).toBe(0);
      expect(decodeStatx(buf)).toEqual(nodeRecord(fs.fstatSync(fd, { bigint: true })));
      expect(statInto(-1, buf.bytes)).toBe(-9); // EBADF
      expect(statAtInto(-100, Buffer.from(path.join(dir, 'nope')), buf.bytes)).toBe(-2);
    } finally {
      fs.closeSync(fd);
    }
  });
});
