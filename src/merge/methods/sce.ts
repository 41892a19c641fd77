/**
 * sce (semantics §1.4), mergekit's easy_define function, with τᵢ = R(xᵢ − base):
 *
 *   select_topk < 1: keep the k = int(nnz(var)·select_topk) positions of largest across-model
 *     variance (population variance, in f64 as torch's CPU var, then rounded); the rest of every
 *     τᵢ is zeroed. Among equal variances at the cut, LOWER indices are kept first (torch's topk
 *     leaves ties unspecified).
 *   cᵢ = mean(τᵢ²) / Σⱼ mean(τⱼ²), or 1/N when that sum is below 1e-6 (no user weights);
 *   elected sign = sign of Σᵢ τᵢ (unweighted, 0 counts as +); eᵢ = sign(τᵢ) == elected;
 *   out = base + Σ cᵢeᵢτᵢ / max(Σ cᵢeᵢ, 1e-6).
 *
 * The variance is the sce-variance kernel, the selection the TIES rank rule (rank-window.ts), the energies the
 * gram kernel (with each square rounded to the compute dtype first, as torch's `tvs**2` is) and the
 * rest the task-vector kernel with its SCE election and divisor clamp.
 *
 * A tensor the pool cuts into row chunks gathers the same statistics over its chunks first
 * (SceCollector, in the pool's passes): the variance's rank histograms ('sce-top', then 'sce-low'
 * when the keys differ in their low bits; integer counts, so chunking cannot change them), then the
 * energies in gram blocks ('gram'; gram-blocks.ts). A tensor merged whole runs the same passes in
 * process as one chunk, so both give the same bytes.
 */
import { flatLayout } from '../native/layout.js';
import { BLOCK, KERNEL_DTYPE, roundTo } from '../native/numeric.js';
import { blockMasker } from '../native/mask-rule.js';
import type { RankRule } from '../native/binding.js';
import type { TensorTask } from '../task.js';
import type { AnyStatPass, ChunkReply, ChunkStatsCollector } from './chunk-stats.js';
import { chunkGramBlocks, gramPairs, gramSums, perGramBlock, sumGramBlocks } from './gram-blocks.js';
import { chunkRankRules, type RankLowCounts, type RankTopCounts, type RankWindow, selectBounds, selectTop, sparseCounts, type TopSelection } from './rank-window.js';
import {
  castOut,
  dtypeCodes,
  elementCount,
  f32Scratch,
  globalNumber,
  kernelCode,
  MergeComputeError,
  outputBuffer,
  requireBase,
  requireEqualShapes,
  type FamilyContext,
  type TensorData,
} from './task-inputs.js';

/** What a chunk of an sce tensor gets: how its positions are kept, and the weights once known. */
export interface ChunkSce {
  readonly kind: 'sce';
  /** 'all': select_topk keeps every position; 'none': none; 'pending' until the rank passes end; else this chunk's rank rule. */
  readonly keep: 'all' | 'none' | 'pending' | RankRule;
  /** The top buckets of the rank window once selected (for the 'sce-low' pass). */
  readonly buckets: { readonly lo: number; readonly hi: number } | null;
  /** The whole tensor's gram sums of the kept squares once the energy pass has run. */
  readonly energy: Float64Array | null;
  /** Elements of the whole tensor (the energies are means over it). */
  readonly elements: number;
}

/** A chunk's reply to an sce rank pass. */
export type SceStats = { readonly pass: 'sce-top'; readonly nonzero: number; readonly top: RankTopCounts } | { readonly pass: 'sce-low'; readonly low: RankLowCounts };

/** The base and the task vectors' inputs, or the base alone when there is nothing to merge. */
function sceOperands(ctx: FamilyContext): { base: TensorData; tvs: TensorData[] } {
  const { base, index } = requireBase(ctx);
  const tvs = ctx.inputs.filter((_, i) => i !== index);
  if (tvs.length > 0) requireEqualShapes(ctx, [base, ...tvs]);
  return { base, tvs };
}

/** The per-element variance across the task vectors (rounded to the compute dtype), and how many are non-zero. */
function variance(ctx: FamilyContext, base: TensorData, tvs: readonly TensorData[]): { values: Float32Array; nonzero: number } {
  const n = elementCount(base.shape);
  const values = f32Scratch(ctx, n);
  const stats = new Float64Array(1);
  ctx.kernels.sceVariance({ base: base.bytes, baseDType: kernelCode(ctx, base.dtype), inputs: tvs.map((t) => t.bytes), dtypes: dtypeCodes(ctx, tvs), computeDType: ctx.compute, count: n, variance: values, out: stats });
  return { values, nonzero: stats[0] ?? 0 };
}

/** The rank kernels' arguments that order the variance itself (its |δ| against a zero base). */
function varianceKeys(ctx: FamilyContext, values: Float32Array): { base: Uint8Array; baseDType: 1; x: Uint8Array; xDType: 0; computeDType: 0; count: number; descending: true } {
  const n = values.length;
  return { base: ctx.alloc(n * 2).fill(0), baseDType: KERNEL_DTYPE.F16, x: new Uint8Array(values.buffer, values.byteOffset, values.byteLength), xDType: KERNEL_DTYPE.F32, computeDType: KERNEL_DTYPE.F32, count: n, descending: true };
}

/** The kept positions (1 = kept) under this chunk's rule, or null when every position is kept. */
function keptMask(ctx: FamilyContext, base: TensorData, tvs: readonly TensorData[], keep: ChunkSce['keep']): Uint8Array | null {
  if (keep === 'all') return null;
  const n = elementCount(base.shape);
  const mask = ctx.alloc(n);
  if (keep === 'none') return mask.fill(0);
  if (keep === 'pending') throw new MergeComputeError('MERGE_INPUT', ctx.task.output, 'the variance selection is not known yet');
  const { values } = variance(ctx, base, tvs);
  const bits = new Uint32Array(values.buffer, values.byteOffset, n);
  const masker = blockMasker(keep, 0, n, 'sce variance mask');
  for (let j = 0; j < n; j += BLOCK) {
    const m = Math.min(BLOCK, n - j);
    mask.set(masker.block(j, m, bits.subarray(j, j + m)).subarray(0, m), j);
  }
  return mask;
}

/** One chunk's statistics for `pass` (the whole tensor is one chunk). */
function sceStats(ctx: FamilyContext, pass: AnyStatPass, chunk: ChunkSce): SceStats | { readonly pass: 'gram'; readonly blocks: Float64Array } {
  const { base, tvs } = sceOperands(ctx);
  if (pass === 'sce-top' || pass === 'sce-low') {
    const { values, nonzero } = variance(ctx, base, tvs);
    const args = varianceKeys(ctx, values);
    if (pass === 'sce-top') {
      const top = new Uint32Array(65536);
      const lowBits = new Uint32Array(2);
      ctx.kernels.rankHistogram({ ...args, top, lowBits });
      return { pass, nonzero, top: { top: sparseCounts(top), lowOr: lowBits[0] ?? 0, lowAnd: lowBits[1] ?? 0 } };
    }
    if (chunk.buckets === null) throw new MergeComputeError('MERGE_INPUT', ctx.task.output, 'the variance buckets are not known yet');
    const lowLo = new Uint32Array(65536);
    const lowHi = new Uint32Array(65536);
    ctx.kernels.rankLowHistogram({ ...args, bucketLo: chunk.buckets.lo, bucketHi: chunk.buckets.hi, lowLo, lowHi });
    return { pass, low: { lowLo: sparseCounts(lowLo), lowHi: sparseCounts(lowHi) } };
  }
  if (pass !== 'gram') throw new MergeComputeError('UNSUPPORTED_METHOD', ctx.task.output, `sce has no ${pass} pass`);
  // Σ R((maskᵢ·τᵢ)²) per gram block: the gram diagonal, squares rounded as `tvs**2` is.
  const mask = keptMask(ctx, base, tvs, chunk.keep);
  const maskData: TensorData[] = mask === null ? [] : [{ dtype: 'U8', shape: base.shape, bytes: mask }];
  const blocks = perGramBlock([...tvs, ...maskData], base, (part, b, count) => {
    const xs = mask === null ? part : part.slice(0, -1);
    const blockMask = mask === null ? null : (part[part.length - 1]?.bytes ?? null);
    return gramSums(ctx, xs, b, flatLayout(count), undefined, { mask: blockMask, roundProducts: true });
  });
  return { pass: 'gram', blocks };
}

/** cᵢ from the whole tensor's Σ R((maskᵢ·τᵢ)²) over its n elements, rounded as torch does. */
function energyWeights(compute: 0 | 1 | 2, g: Float64Array, m: number, n: number): Float32Array {
  const c = compute;
  const energy = Array.from({ length: m }, (_, a) => roundTo(c, (g[a * m - (a * (a - 1)) / 2] ?? 0) / n));
  let sum = 0;
  for (const e of energy) sum = Math.fround(sum + e);
  sum = roundTo(c, sum);
  if (Math.abs(sum) < 1e-6) return Float32Array.from(energy, () => roundTo(c, 1 / m));
  return Float32Array.from(energy, (e) => roundTo(c, e / sum));
}

/**
 * One sce tensor's statistics over its chunks (in row order; all but the last whole gram blocks):
 * the variance's rank passes, then the energies.
 */
export class SceCollector implements ChunkStatsCollector {
  readonly #task: TensorTask;
  readonly #blocks: readonly number[];
  readonly #elements: number;
  #keep: readonly ChunkSce['keep'][];
  #top: (RankTopCounts | null)[];
  #nonzero = 0;
  #selection: TopSelection | null = null;
  #low: (RankLowCounts | null)[] = [];
  /** The rank window [0, k) once k is known. */
  #window: RankWindow | null = null;
  #gram: (Float64Array | null)[] = [];
  #energy: Float64Array | null = null;
  #pass: AnyStatPass | null = null;

  constructor(task: TensorTask, chunkRows: readonly number[]) {
    this.#task = task;
    this.#blocks = chunkGramBlocks(task.output, task.outShape, chunkRows);
    const topk = globalNumber(task, 'select_topk');
    const keep: ChunkSce['keep'] = topk >= 1 ? 'all' : topk <= 0 ? 'none' : 'pending';
    this.#keep = chunkRows.map(() => keep);
    this.#top = chunkRows.map(() => null);
    this.#elements = elementCount(task.outShape);
  }

  get chunks(): number {
    return this.#blocks.length;
  }

  nextPass(): AnyStatPass | null {
    const keep = this.#keep[0];
    if (keep === 'none') return null;
    if (keep === 'pending') return this.#selection === null ? 'sce-top' : 'sce-low';
    return this.#energy === null ? 'gram' : null;
  }

  plannedPasses(): number {
    const keep = this.#keep[0];
    if (keep === 'none') return 0;
    return (keep === 'pending' && this.#selection === null ? 1 : 0) + (this.#energy === null ? 1 : 0);
  }

  beginPass(pass: AnyStatPass): void {
    if (pass !== this.nextPass()) throw new Error(`pass ${pass} is not the one needed (${String(this.nextPass())})`);
    this.#pass = pass;
    if (pass === 'sce-top') this.#top = this.#top.map(() => null);
    if (pass === 'sce-low') this.#low = this.#keep.map(() => null);
    if (pass === 'gram') this.#gram = this.#keep.map(() => null);
  }

  chunkContext(chunk: number): ChunkSce {
    const keep = this.#keep[chunk];
    if (keep === undefined) throw new RangeError(`chunk ${chunk} of ${this.chunks}`);
    const sel = this.#selection;
    return { kind: 'sce', keep, buckets: sel === null ? null : { lo: sel.bucketLo, hi: sel.bucketHi }, energy: this.#energy, elements: this.#elements };
  }

  absorb(chunk: number, stats: ChunkReply): void {
    if (this.#pass === null || stats.pass !== this.#pass) throw new Error(`reply to pass ${stats.pass}, expected ${String(this.#pass)}`);
    const blocks = this.#blocks[chunk];
    if (blocks === undefined) throw new Error(`chunk ${chunk} is out of range`);
    const slot = stats.pass === 'sce-top' ? this.#top : stats.pass === 'sce-low' ? this.#low : this.#gram;
    if (slot[chunk] !== null) throw new Error(`chunk ${chunk} answered twice`);
    if (stats.pass === 'sce-top') {
      this.#top[chunk] = stats.top;
      this.#nonzero += stats.nonzero;
    } else if (stats.pass === 'sce-low') {
      this.#low[chunk] = stats.low;
    } else if (stats.pass === 'gram') {
      const width = gramPairs(this.#task.inputs.length - 1);
      if (stats.blocks.length !== blocks * width) throw new Error(`chunk ${chunk} sent ${stats.blocks.length} sums for ${blocks} blocks, expected ${width} per block`);
      this.#gram[chunk] = stats.blocks;
    } else {
      throw new Error(`sce has no ${stats.pass} pass`);
    }
  }

  finishPass(): void {
    const pass = this.#pass;
    if (pass === null) throw new Error('no pass is running');
    const slot: readonly unknown[] = pass === 'sce-top' ? this.#top : pass === 'sce-low' ? this.#low : this.#gram;
    const missing = slot.indexOf(null);
    if (missing >= 0) throw new Error(`chunk ${missing} has not answered pass ${pass}`);
    this.#pass = null;
    const tops = this.#top as readonly RankTopCounts[];
    if (pass === 'sce-top') {
      // int(count_nonzero(var) * select_topk): an int64 0-d tensor times a float is an f32 product.
      const k = Math.trunc(Math.fround(Math.fround(this.#nonzero) * Math.fround(globalNumber(this.#task, 'select_topk'))));
      if (k === 0) {
        this.#keep = this.#keep.map(() => 'none');
        return;
      }
      const w: RankWindow = { lo: 0, hi: k, descending: true };
      this.#window = w;
      const selection = selectTop(w, tops);
      this.#selection = selection;
      if (selection.uniformLow !== null) this.#keep = chunkRankRules(w, selectBounds(w, selection, null), tops, null, this.chunks);
    } else if (pass === 'sce-low') {
      const w = this.#window;
      if (w === null || this.#selection === null) throw new Error('the low pass came before the top pass');
      const low = this.#low as readonly RankLowCounts[];
      this.#keep = chunkRankRules(w, selectBounds(w, this.#selection, low), tops, low, this.chunks);
    } else {
      this.#energy = sumGramBlocks(this.#gram as readonly Float64Array[], gramPairs(this.#task.inputs.length - 1));
    }
  }
}

function sceChunk(ctx: FamilyContext): ChunkSce | undefined {
  const chunk = ctx.chunk;
  if (chunk === undefined) return undefined;
  if (!('kind' in chunk) || chunk.kind !== 'sce') throw new MergeComputeError('MERGE_INPUT', ctx.task.output, 'sce got another method\'s chunk');
  return chunk;
}

/** The whole tensor (its passes run here, as one chunk), or a row chunk with the whole tensor's statistics (ctx.chunk). */
export function computeSce(ctx: FamilyContext): TensorData {
  const { base, tvs } = sceOperands(ctx);
  if (tvs.length === 0) return castOut(ctx, base);
  let chunk = sceChunk(ctx);
  if (chunk === undefined) {
    const collector = new SceCollector(ctx.task, [base.shape[0] ?? 1]);
    for (let pass = collector.nextPass(); pass !== null; pass = collector.nextPass()) {
      collector.beginPass(pass);
      collector.absorb(0, sceStats(ctx, pass, collector.chunkContext(0)));
      collector.finishPass();
    }
    chunk = collector.chunkContext(0);
  }
  // Nothing selected: every task vector is zeroed and the output is the base.
  if (chunk.keep === 'none') return castOut(ctx, base);
  if (chunk.energy === null) throw new MergeComputeError('MERGE_INPUT', ctx.task.output, 'the sce energies are not known yet');
  const mask = keptMask(ctx, base, tvs, chunk.keep);
  const weights = energyWeights(ctx.compute, chunk.energy, tvs.length, chunk.elements);
  const out = outputBuffer(ctx, base.shape);
  ctx.kernels.taskVectorMerge({
    base: base.bytes,
    baseDType: kernelCode(ctx, base.dtype),
    inputs: tvs.map((t) => t.bytes),
    dtypes: dtypeCodes(ctx, tvs),
    masks: tvs.map(() => mask),
    scales: Float32Array.from(tvs, () => 1),
    sparsifyDType: ctx.compute,
    weights,
    consensus: true,
    electOnRaw: true,
    minDivisor: 1e-6,
    normalize: true,
    divisor: 1,
    lambda: 1,
    computeDType: ctx.compute,
    out: out.bytes,
    outDType: ctx.outCode,
    start: 0,
    end: elementCount(base.shape),
  });
  return out;
}

/** One statistics pass over a row chunk of an sce tensor the pool runs in chunks. */
export function computeSceStats(ctx: FamilyContext, pass: AnyStatPass): SceStats | { readonly pass: 'gram'; readonly blocks: Float64Array } {
  const chunk = sceChunk(ctx);
  if (chunk === undefined) throw new MergeComputeError('MERGE_INPUT', ctx.task.output, 'sce statistics passes need the chunk\'s selection');
  return sceStats(ctx, pass, chunk);
}
