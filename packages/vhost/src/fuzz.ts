// Test tooling: fast-check targets run under jest (see testing.ts).
// Each fuzz target runs twice: with a fixed seed (the same inputs on every run, so that a failure in
// CI reproduces anywhere) and with a fresh seed, in the test's name and in fast-check's error (with
// the path to the shrunk case), so a failure it finds can be replayed: FUZZ_SEED=<seed> reruns it.
import fc from 'fast-check';

export const FIXED_SEED = 20261202;

function freshSeed(): number {
  const env = process.env.FUZZ_SEED;
  return env !== undefined && env !== '' ? Number(env) : (Math.random() * 0x7fffffff) | 0;
}

/** Registers the two runs of `property`, each `numRuns` cases long. */
export function fuzz<Ts>(name: string, property: fc.IRawProperty<Ts>, numRuns: number, timeoutMs = 30_000): void {
  for (const [label, seed] of [
    ['fixed seed', FIXED_SEED],
    ['random seed', freshSeed()],
  ] as const) {
    test(`${name} (${label} ${seed})`, async () => {
      await fc.assert(property, { seed, numRuns });
    }, timeoutMs);
  }
}
