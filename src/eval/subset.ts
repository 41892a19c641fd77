import seedrandom from 'seedrandom';

/**
 * Seeded item subsets. A subset is a prefix of a seeded order of the split's items, so the
 * subset for n items is contained in the subset for m > n: racing rungs are prefixes, and
 * raising `limit` only adds items. Every candidate of a generation gets the same seed
 * (`generationSeed(runSeed, generation)`) and therefore answers the same questions.
 */

/** 32-bit FNV-1a of a string: a stable, platform-independent hash for seeds. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The subset seed of a generation: a pure function of the run's seed and the generation number. */
export function generationSeed(runSeed: number, generation: number): number {
  return fnv1a(`evomerge-subset:${runSeed}:${generation}`);
}

/** A uniform [0, 1) stream for a seed and a label (independent streams for independent labels). */
function stream(seed: number, label: string): () => number {
  const prng = seedrandom.alea(`${seed}:${label}`);
  return () => prng.double();
}

/** The items in a seeded random order (Fisher–Yates); the input is not changed. */
export function seededOrder<T>(items: readonly T[], seed: number, label = ''): T[] {
  const out = [...items];
  const rand = stream(seed, `order:${label}`);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.min(i, Math.floor(rand() * (i + 1)));
    const t = out[i] as T;
    out[i] = out[j] as T;
    out[j] = t;
  }
  return out;
}

/**
 * A seeded order in which every prefix is stratified proportionally: each stratum is shuffled
 * on its own stream, then item k of a stratum of size s gets the key (k + u)/s with a per-stratum
 * random offset u, and items are merged by key. A prefix of length n then holds n·s/N ± 1 items
 * of each stratum (systematic allocation), so its plain mean estimates the split's micro average.
 */
export function stratifiedOrder<T>(items: readonly T[], stratumOf: (item: T) => string, seed: number): T[] {
  const strata = new Map<string, T[]>();
  for (const item of items) {
    const k = stratumOf(item);
    const list = strata.get(k);
    if (list === undefined) strata.set(k, [item]);
    else list.push(item);
  }
  const names = seededOrder([...strata.keys()].sort(), seed, 'strata');
  const keyed: { key: number; rank: number; item: T }[] = [];
  names.forEach((name, rank) => {
    const members = seededOrder(strata.get(name) ?? [], seed, `stratum:${name}`);
    const u = stream(seed, `offset:${name}`)();
    members.forEach((item, k) => keyed.push({ key: (k + u) / members.length, rank, item }));
  });
  keyed.sort((a, b) => a.key - b.key || a.rank - b.rank);
  return keyed.map((x) => x.item);
}

/** The first `limit` entries of an order (all of them for Infinity). */
export function takeSubset<T>(order: readonly T[], limit: number): T[] {
  if (!(limit >= 0)) throw new RangeError(`limit must be ≥ 0, got ${limit}`);
  return order.slice(0, Number.isFinite(limit) ? Math.floor(limit) : order.length);
}
