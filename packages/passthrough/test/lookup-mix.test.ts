import { LookupMix } from '../src/lookup-mix';

describe('LookupMix', () => {
  test('stats first until lookups mostly find new names, and again once they find known ones', () => {
    const mix = new LookupMix();
    expect(mix.statFirst).toBe(true);
    let misses = 0;
    while (mix.statFirst) {
      mix.record(false);
      misses++;
    }
    // Not on one miss: a burst of new names among known ones does not flip it.
    expect(misses).toBeGreaterThan(5);
    expect(misses).toBeLessThan(32);
    for (let i = 0; i < 200; i++) mix.record(false);
    expect(mix.statFirst).toBe(false);
    let hits = 0;
    while (!mix.statFirst) {
      mix.record(true);
      hits++;
    }
    expect(hits).toBeLessThan(32);
  });

  test('a steady share of known names above a third keeps it stat-first, below keeps it open-first', () => {
    const half = new LookupMix();
    for (let i = 0; i < 1000; i++) half.record(i % 2 === 0);
    expect(half.statFirst).toBe(true);
    const fifth = new LookupMix();
    for (let i = 0; i < 1000; i++) fifth.record(i % 5 === 0);
    expect(fifth.statFirst).toBe(false);
  });
});
