import { InodeKeys, type KeyedInode } from '../src/inode-keys';

describe('InodeKeys', () => {
  test('finds by (dev, ino, mount id); inodes whose numbers meet share a slot and stay apart', () => {
    const keys = new InodeKeys<KeyedInode & { name: string }>();
    const big = 2n ** 60n;
    const a = { dev: 1n, ino: 5n, name: 'a' };
    const b = { dev: 2n, ino: 5n, name: 'b' };
    const c = { dev: 1n, ino: 5n, mntId: 9n, name: 'c' };
    // Past 2^53 these two convert to the same number.
    const d = { dev: 1n, ino: big, name: 'd' };
    const e = { dev: 1n, ino: big + 1n, name: 'e' };
    expect(Number(d.ino)).toBe(Number(e.ino));
    for (const x of [a, b, c, d, e]) keys.set(x);
    expect([keys.get(1n, 5n), keys.get(2n, 5n), keys.get(1n, 5n, 9n), keys.get(1n, big), keys.get(1n, big + 1n)].map((x) => x?.name)).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(keys.get(3n, 5n)).toBeUndefined();
    expect(keys.get(1n, 6n)).toBeUndefined();
    // A newer entry of the same identity replaces the old; deleting the old one then leaves it.
    const a2 = { dev: 1n, ino: 5n, name: 'a2' };
    keys.set(a2);
    keys.delete(a);
    expect(keys.get(1n, 5n)?.name).toBe('a2');
    keys.delete(a2);
    keys.delete(c);
    expect(keys.get(1n, 5n)).toBeUndefined();
    expect(keys.get(2n, 5n)?.name).toBe('b');
    keys.delete(d);
    expect(keys.get(1n, big)).toBeUndefined();
    expect(keys.get(1n, big + 1n)?.name).toBe('e');
    // One alone in its slot: replaced in place too.
    const f = { dev: 7n, ino: 70n, name: 'f' };
    keys.set(f);
    keys.set({ ...f, name: 'f2' });
    expect(keys.get(7n, 70n)?.name).toBe('f2');
    keys.delete(f);
    expect(keys.get(7n, 70n)?.name).toBe('f2');
  });
});
