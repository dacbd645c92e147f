/**
 * How many cases a fuzz target runs. The suite (CI) runs a short pass; `scripts/fuzz.sh` runs
 * the same targets long by setting THUNDERPAC_FUZZ_RUNS (a multiplier of each target's short
 * count) and THUNDERPAC_FUZZ_SEED (to reproduce a run). Every fuzz test file is named
 * `test/fuzz-*.test.ts` so the script can find them all.
 */

const multiplier = Number(process.env.THUNDERPAC_FUZZ_RUNS ?? '1');
const seedText = process.env.THUNDERPAC_FUZZ_SEED;

/** The number of cases for a target whose short (CI) run is `short` cases. */
export function fuzzRuns(short: number): number {
  if (!Number.isFinite(multiplier) || multiplier < 1) return short;
  return Math.max(1, Math.round(short * multiplier));
}

/** fast-check parameters for a fuzz target: its run count and, when set, the fixed seed. */
export function fuzzParams(short: number): { numRuns: number; seed?: number } {
  const seed = seedText === undefined ? undefined : Number(seedText);
  return seed === undefined || !Number.isFinite(seed)
    ? { numRuns: fuzzRuns(short) }
    : { numRuns: fuzzRuns(short), seed };
}

/** A long fuzz run needs more time per test than the suite's default. */
export function fuzzTimeoutMs(shortMs: number): number {
  return Math.max(
    shortMs,
    Math.round(shortMs * (Number.isFinite(multiplier) && multiplier > 1 ? multiplier : 1)),
  );
}
