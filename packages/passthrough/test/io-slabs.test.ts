import { IoSlabs } from '../src/io-slabs';

test('slabs are made on demand up to the cap, reused once given back, and replaced once dropped', () => {
  const slabs = new IoSlabs(4096, 2);
  const a = slabs.take()!;
  const b = slabs.take()!;
  expect(a.byteLength).toBe(4096);
  expect(b).not.toBe(a);
  expect(slabs.take()).toBeUndefined(); // all in use: the caller does without
  expect(slabs.inUse).toBe(2);
  slabs.give(a);
  expect(slabs.take()).toBe(a);
  // A failed op's slab is never reused; a fresh one may be made in its place.
  slabs.drop();
  const c = slabs.take()!;
  expect(c).not.toBe(a);
  expect(c).not.toBe(b);
  expect(slabs.take()).toBeUndefined();
});
