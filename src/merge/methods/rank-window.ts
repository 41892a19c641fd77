/**
 * The rank window of a magnitude sparsifier (TIES' top-k, breadcrumbs' band) over a tensor that
 * may be cut into row chunks. Ranks order the keys of |δ| (mask-rule.h order_key); among equal
 * keys the LOWER flattened index ranks first, in the whole tensor, whatever the chunking.
 *
 * The bounds come by radix select from histograms that add up over chunks: the top 16 bits of
 * every key (rankHistogram), then, unless every key has the same low 16 bits (always so under
 * bf16 compute), the low 16 bits of the keys in the two top buckets holding ranks lo and hi − 1
 * (rankLowHistogram). A chunk then needs the ranks its first bound-equal keys take: the count of
 * smaller keys plus the equal keys of earlier chunks, read from the same histograms. A whole
 * tensor is the one-chunk case of the same code.
 */
import type { RankRule } from '../native/binding.js';

const BUCKETS = 65536;

/** The non-zero entries of a 65536-bucket histogram, by ascending bucket. */
export interface SparseCounts {
  readonly bucket: Uint16Array;
  readonly count: Uint32Array;
}

export function sparseCounts(hist: Uint32Array): SparseCounts {
  let n = 0;
  for (let i = 0; i < BUCKETS; i++) if ((hist[i] ?? 0) !== 0) n++;
  const bucket = new Uint16Array(n);
  const count = new Uint32Array(n);
  let at = 0;
  for (let i = 0; i < BUCKETS; i++) {
    const c = hist[i] ?? 0;
    if (c === 0) continue;
    bucket[at] = i;
    count[at] = c;
    at++;
  }
  return { bucket, count };
}

function countAt(s: SparseCounts, bucket: number): number {
  let lo = 0;
  let hi = s.bucket.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((s.bucket[mid] ?? 0) < bucket) lo = mid + 1;
    else hi = mid;
  }
  return s.bucket[lo] === bucket ? (s.count[lo] ?? 0) : 0;
}

function addInto(total: Float64Array, s: SparseCounts): void {
  for (let i = 0; i < s.bucket.length; i++) {
    const b = s.bucket[i] ?? 0;
    total[b] = (total[b] ?? 0) + (s.count[i] ?? 0);
  }
}

/** One chunk's rankHistogram of one input. */
export interface RankTopCounts {
  readonly top: SparseCounts;
  readonly lowOr: number;
  readonly lowAnd: number;
}

/** One chunk's rankLowHistogram of one input. */
export interface RankLowCounts {
  readonly lowLo: SparseCounts;
  readonly lowHi: SparseCounts;
}

/** Ranks [lo, hi) of the keys of |δ| in ascending or descending magnitude are kept. */
export interface RankWindow {
  readonly lo: number;
  readonly hi: number;
  readonly descending: boolean;
}

/** Where ranks lo and hi − 1 fall among the top-16-bit buckets. */
export interface TopSelection {
  readonly bucketLo: number;
  readonly bucketHi: number;
  /** Keys in buckets below bucketLo / bucketHi. */
  readonly cumLo: number;
  readonly cumHi: number;
  /** The low 16 bits every key shares, or null when they differ (a low pass is then needed). */
  readonly uniformLow: number | null;
}

/** The keys at ranks lo and hi − 1 and the counts of smaller keys in the whole tensor. */
export interface RankBounds {
  readonly keyLo: number;
  readonly keyHi: number;
  readonly beforeLo: number;
  readonly beforeHi: number;
}

/** The bucket holding rank r and the count of entries in earlier buckets. */
function findBucket(hist: Float64Array, r: number): { bucket: number; before: number } {
  let cum = 0;
  for (let i = 0; i < hist.length; i++) {
    const h = hist[i] ?? 0;
    if (cum + h > r) return { bucket: i, before: cum };
    cum += h;
  }
  return { bucket: hist.length - 1, before: cum };
}

function checkWindow(w: RankWindow): void {
  if (!(w.lo < w.hi)) throw new RangeError(`rank window [${w.lo}, ${w.hi}) is empty: nothing to select`);
}

/** The top buckets of ranks lo and hi − 1 from every chunk's top histogram (lo < hi). */
export function selectTop(w: RankWindow, chunks: readonly RankTopCounts[]): TopSelection {
  checkWindow(w);
  const total = new Float64Array(BUCKETS);
  let or = 0;
  let and = 0xffff;
  for (const c of chunks) {
    addInto(total, c.top);
    or |= c.lowOr;
    and &= c.lowAnd;
  }
  const bl = findBucket(total, w.lo);
  const bh = findBucket(total, w.hi - 1);
  return { bucketLo: bl.bucket, bucketHi: bh.bucket, cumLo: bl.before, cumHi: bh.before, uniformLow: or === (and & 0xffff) ? or : null };
}

/** The bounds: from the top selection alone when the low bits are uniform, else with every chunk's low histograms. */
export function selectBounds(w: RankWindow, top: TopSelection, low: readonly RankLowCounts[] | null): RankBounds {
  checkWindow(w);
  if (top.uniformLow !== null) {
    return {
      keyLo: ((top.bucketLo << 16) | top.uniformLow) >>> 0,
      keyHi: ((top.bucketHi << 16) | top.uniformLow) >>> 0,
      beforeLo: top.cumLo,
      beforeHi: top.cumHi,
    };
  }
  if (low === null) throw new Error('rank bounds need the low histograms: the keys differ in their low 16 bits');
  const lowLo = new Float64Array(BUCKETS);
  const lowHi = new Float64Array(BUCKETS);
  for (const c of low) {
    addInto(lowLo, c.lowLo);
    addInto(lowHi, c.lowHi);
  }
  const wl = findBucket(lowLo, w.lo - top.cumLo);
  const wh = findBucket(lowHi, w.hi - 1 - top.cumHi);
  return {
    keyLo: ((top.bucketLo << 16) | wl.bucket) >>> 0,
    keyHi: ((top.bucketHi << 16) | wh.bucket) >>> 0,
    beforeLo: top.cumLo + wl.before,
    beforeHi: top.cumHi + wh.before,
  };
}

/**
 * The rank rule of each chunk, in chunk order: the window and bounds, with beforeLo / beforeHi
 * advanced past the bound-equal keys of the chunks before it (one equal to both bounds counts
 * against the lower, as mark_rank_block does). An empty window needs no histograms.
 */
export function chunkRankRules(
  w: RankWindow,
  bounds: RankBounds | null,
  top: readonly RankTopCounts[],
  low: readonly RankLowCounts[] | null,
  chunks: number,
): RankRule[] {
  const rule = (b: RankBounds): RankRule => ({ kind: 'rank', lo: w.lo, hi: w.hi, descending: w.descending, ...b });
  if (w.lo >= w.hi || bounds === null) {
    if (w.lo < w.hi) throw new Error('a non-empty rank window needs its bounds');
    return Array.from({ length: chunks }, () => rule({ keyLo: 0, keyHi: 0, beforeLo: 0, beforeHi: 0 }));
  }
  const distinct = bounds.keyHi !== bounds.keyLo;
  const rules: RankRule[] = [];
  let nextLo = bounds.beforeLo;
  let nextHi = bounds.beforeHi;
  for (let c = 0; c < chunks; c++) {
    rules.push(rule({ keyLo: bounds.keyLo, keyHi: bounds.keyHi, beforeLo: nextLo, beforeHi: nextHi }));
    if (low === null) {
      // Uniform low bits (selectBounds needed no low pass): a key is its top bucket.
      const t = top[c];
      if (t === undefined) throw new Error(`no top histogram for chunk ${c}`);
      nextLo += countAt(t.top, bounds.keyLo >>> 16);
      if (distinct) nextHi += countAt(t.top, bounds.keyHi >>> 16);
    } else {
      const l = low?.[c];
      if (l === undefined) throw new Error(`no low histogram for chunk ${c}`);
      nextLo += countAt(l.lowLo, bounds.keyLo & 0xffff);
      if (distinct) nextHi += countAt(l.lowHi, bounds.keyHi & 0xffff);
    }
  }
  return rules;
}
