/**
 * The whole-tensor statistics of the task-vector sparsifiers (semantics §0.4, §0.5), gathered in
 * passes over a tensor's row chunks so that every chunk can then be merged on its own:
 * - 'rank-top' / 'rank-low': the radix-select histograms of a magnitude rank window
 *   (rank-window.ts), for ties / breadcrumbs;
 * - 'l1': the exact L1 sums of each delta before and after its mask, for `rescale`.
 * DARE and DELLA masks need none: their draws are keyed by the element's index in the whole
 * tensor (a chunk passes its offset), and DELLA ranks within rows, which a row chunk holds whole.
 *
 * A whole tensor is one chunk: computeTaskVector runs these same passes in-process, so the chunked
 * and whole-tensor paths share every rule and give the same bytes.
 */
import { keepThreshold, streamKey } from '../random.js';
import type { RankRule } from '../native/binding.js';
import { addL1Bins, L1_BINS, l1FromBins } from '../native/masked-l1.js';
import { KERNEL_DTYPE, roundTo, type ComputeCode } from '../native/numeric.js';
import type { Sparsifier } from '../method-spec.js';
import type { TensorTask } from '../task.js';
import { chunkRankRules, selectBounds, selectTop, type RankBounds, type RankLowCounts, type RankTopCounts, type TopSelection } from './rank-window.js';
import { globalFlag, MergeComputeError, modelParam } from './task-inputs.js';
import type { AnyStatPass, ChunkReply, ChunkStatsCollector } from './chunk-stats.js';

export type StatPass = 'rank-top' | 'rank-low' | 'l1';

/** How one input is sparsified, from its parameters and the tensor's element count alone. */
export type SparsityPlan =
  | { readonly kind: 'keep' }
  /** DELLA with density 0: mergekit returns zeros, unrescaled. */
  | { readonly kind: 'drop' }
  | { readonly kind: 'rank'; readonly lo: number; readonly hi: number; readonly descending: boolean }
  | { readonly kind: 'bernoulli'; readonly key0: number; readonly key1: number; readonly threshold: number }
  | {
      readonly kind: 'della';
      readonly key0: number;
      readonly key1: number;
      readonly lowP: number;
      readonly eps: number;
      readonly workDType: ComputeCode;
    }
  /** Test hook (ComputeOptions.maskOverride): a forced whole-tensor mask; never chunked. */
  | { readonly kind: 'mask'; readonly bytes: Uint8Array };

export interface InputSparsity {
  readonly plan: SparsityPlan;
  /** Whether the L1 rescale applies (the `rescale` flag, for a plan that may be rescaled). */
  readonly rescale: boolean;
}

/** What one chunk knows about one input after the passes so far. Plain data: it goes to workers. */
export interface ChunkInput extends InputSparsity {
  /** The top buckets of a rank plan, once selected (for the 'rank-low' pass). */
  readonly buckets: { readonly lo: number; readonly hi: number } | null;
  /** This chunk's rank rule, once the bounds are known. */
  readonly rank: RankRule | null;
  /** The L1 rescale factor, once known (1 when not rescaled). */
  readonly scale: number | null;
}

export interface ChunkSparsity {
  /** Flattened index of the chunk's first element in the whole tensor. */
  readonly elementOffset: number;
  /** Elements of the whole tensor. */
  readonly elementCount: number;
  /** Per task input; null for the base and inputs that take no part. */
  readonly inputs: readonly (ChunkInput | null)[];
}

/** One chunk's result of one pass, per task input (null where the pass has nothing to count). */
export interface ChunkStats {
  readonly pass: StatPass;
  readonly top: readonly (RankTopCounts | null)[];
  readonly low: readonly (RankLowCounts | null)[];
  /** 2 × L1_BINS exact bins (masked-l1.ts): Σ|δ|, then Σ|δ| over kept entries. */
  readonly l1: readonly (BigInt64Array | null)[];
}

/** The dtype mergekit's sparsifier works in: F16 upcasts to F32 for the random draws (§1.2). */
export function sparsifyDType(sparsifier: Sparsifier, compute: ComputeCode): ComputeCode {
  if (compute === KERNEL_DTYPE.F16 && (sparsifier === 'random' || sparsifier === 'della_magprune')) return KERNEL_DTYPE.F32;
  return compute;
}

/**
 * The plan of input `index` of `task` in a tensor of `count` elements. Selection rules where
 * mergekit's unstable sorts leave ties implementation-defined are rank-window.ts's (lower index
 * first). Throws MERGE_PARAM for densities that select nothing or leave DELLA's band.
 */
export function sparsityPlan(task: TensorTask, sparsifier: Sparsifier | undefined, compute: ComputeCode, index: number, count: number): InputSparsity {
  const density = modelParam(task, index, 'density') ?? 1;
  // Every mergekit sparsifier returns the delta untouched when density >= 1 (nothing is drawn).
  if (sparsifier === undefined || density >= 1) return { plan: { kind: 'keep' }, rescale: false };
  const rescale = globalFlag(task, 'rescale');
  const model = task.inputs[index]?.model ?? `input ${index}`;
  const n = count;
  switch (sparsifier) {
    case 'magnitude': {
      const k = Math.trunc(density * n);
      if (k <= 0) {
        throw new MergeComputeError('MERGE_PARAM', task.output, `density ${density} of ${model} keeps int(density·${n}) = 0 elements`);
      }
      return { plan: { kind: 'rank', lo: 0, hi: Math.min(k, n), descending: true }, rescale };
    }
    case 'magnitude_outliers': {
      const gamma = modelParam(task, index, 'gamma') ?? 0.01;
      const target = Math.trunc(density * n);
      let nTop = Math.trunc(gamma * n);
      let nBot = n - target - nTop;
      if (nBot < 0) {
        nTop += nBot;
        nBot = 0;
      }
      // Python's indices[n_bot:-n_top] is empty when n_top == 0: the whole delta is dropped (§0.6).
      const lo = nTop > 0 ? Math.min(nBot, n) : 0;
      const hi = nTop > 0 ? Math.min(Math.max(nBot, n - nTop), n) : 0;
      return { plan: { kind: 'rank', lo, hi, descending: false }, rescale };
    }
    case 'random': {
      // The keep probability is density in the work dtype (bf16(0.3) = 0.30078125).
      const p = roundTo(sparsifyDType(sparsifier, compute), density);
      const key = streamKey(task.randomKey.seed, task.randomKey.tensor, index);
      return { plan: { kind: 'bernoulli', ...key, threshold: keepThreshold(p) }, rescale };
    }
    case 'della_magprune': {
      if (density <= 0) return { plan: { kind: 'drop' }, rescale: false };
      const epsilon = modelParam(task, index, 'epsilon') ?? 0.15;
      if (density + epsilon >= 1 || density - epsilon <= 0) {
        throw new MergeComputeError(
          'MERGE_PARAM',
          task.output,
          `della needs density ± epsilon inside (0, 1) for ${model}, got density ${density}, epsilon ${epsilon}`,
        );
      }
      const key = streamKey(task.randomKey.seed, task.randomKey.tensor, index);
      return { plan: { kind: 'della', ...key, lowP: density - epsilon, eps: epsilon, workDType: sparsifyDType(sparsifier, compute) }, rescale };
    }
    default: {
      const never: never = sparsifier;
      return never;
    }
  }
}

/** L1 rescale factor from the summed bins: before / after in the work dtype, 1 when a norm is below 1e-7 (never 1/density). */
function rescaleFactor(work: ComputeCode, bins: BigInt64Array): number {
  const before = roundTo(work, l1FromBins(bins, 0));
  const after = roundTo(work, l1FromBins(bins, L1_BINS));
  const eps = roundTo(work, 1e-7);
  if (before < eps || after < eps) return 1;
  return roundTo(work, before / after);
}

interface InputState {
  readonly sparsity: InputSparsity;
  top: (RankTopCounts | null)[];
  low: (RankLowCounts | null)[] | null;
  selection: TopSelection | null;
  rules: RankRule[] | null;
  l1: BigInt64Array | null;
  scale: number | null;
}

function isEmptyWindow(p: SparsityPlan): boolean {
  return p.kind === 'rank' && p.lo >= p.hi;
}

/**
 * Gathers one tensor's statistics over its chunks: ask nextPass(), run it on every chunk (in any
 * order, each with chunkSparsity(c)), absorb each reply, then finishPass(); when nextPass() is null
 * chunkSparsity(c) holds all a chunk needs to be merged. Lives for one tensor's passes.
 */
export class TensorStatsCollector implements ChunkStatsCollector {
  readonly #chunkOffsets: readonly number[];
  readonly #count: number;
  readonly #work: ComputeCode;
  readonly #inputs: readonly (InputState | null)[];
  #pass: StatPass | null = null;
  #received: boolean[] = [];

  /**
   * `inputs`: per task input, its sparsity (null for the base and inputs that take no part);
   * `chunkElements`: the element count of each chunk, in tensor order. `work` is the sparsifier's
   * work dtype (sparsifyDType).
   */
  constructor(inputs: readonly (InputSparsity | null)[], chunkElements: readonly number[], work: ComputeCode) {
    const offsets: number[] = [];
    let at = 0;
    for (const n of chunkElements) {
      offsets.push(at);
      at += n;
    }
    this.#chunkOffsets = offsets;
    this.#count = at;
    this.#work = work;
    const chunks = chunkElements.length;
    this.#inputs = inputs.map((s): InputState | null => {
      if (s === null) return null;
      const p = s.plan;
      if (p.kind === 'mask' && chunks !== 1) throw new Error('a forced mask cannot be chunked');
      return {
        sparsity: s,
        top: new Array<RankTopCounts | null>(chunks).fill(null),
        low: null,
        selection: null,
        rules: p.kind === 'rank' && p.lo >= p.hi ? chunkRankRules(p, null, [], null, chunks) : null,
        l1: null,
        scale: s.rescale ? null : 1,
      };
    });
  }

  get chunks(): number {
    return this.#chunkOffsets.length;
  }

  /** The pass still needed, or null when every chunk can be merged. */
  nextPass(): StatPass | null {
    const states = this.#inputs.filter((s): s is InputState => s !== null);
    const rank = states.filter((s) => s.sparsity.plan.kind === 'rank' && !isEmptyWindow(s.sparsity.plan));
    if (rank.some((s) => s.selection === null)) return 'rank-top';
    if (rank.some((s) => s.rules === null)) return 'rank-low';
    if (states.some((s) => s.scale === null)) return 'l1';
    return null;
  }

  /** The passes nextPass() will ask for if no 'rank-low' pass is needed (for progress totals). */
  plannedPasses(): number {
    const states = this.#inputs.filter((s): s is InputState => s !== null);
    const rank = states.some((s) => s.sparsity.plan.kind === 'rank' && !isEmptyWindow(s.sparsity.plan) && s.selection === null);
    return (rank ? 1 : 0) + (states.some((s) => s.scale === null) ? 1 : 0);
  }

  /** Starts `pass` (nextPass()): replies for it are then absorbed. */
  beginPass(pass: AnyStatPass): void {
    if (pass === 'gram' || pass !== this.nextPass()) throw new Error(`pass ${pass} is not the one needed (${String(this.nextPass())})`);
    this.#pass = pass;
    this.#received = new Array<boolean>(this.chunks).fill(false);
  }

  chunkContext(chunk: number): ChunkSparsity {
    return this.chunkSparsity(chunk);
  }

  chunkSparsity(chunk: number): ChunkSparsity {
    const offset = this.#chunkOffsets[chunk];
    if (offset === undefined) throw new RangeError(`chunk ${chunk} of ${this.chunks}`);
    return {
      elementOffset: offset,
      elementCount: this.#count,
      inputs: this.#inputs.map((s): ChunkInput | null => {
        if (s === null) return null;
        const sel = s.selection;
        return {
          ...s.sparsity,
          buckets: sel === null ? null : { lo: sel.bucketLo, hi: sel.bucketHi },
          rank: s.rules?.[chunk] ?? null,
          scale: s.scale,
        };
      }),
    };
  }

  /** Takes one chunk's reply to the current pass. */
  absorb(chunk: number, stats: ChunkReply): void {
    if (this.#pass === null || stats.pass === 'gram' || stats.pass !== this.#pass) throw new Error(`reply to pass ${stats.pass}, expected ${String(this.#pass)}`);
    if (this.#received[chunk] !== false) throw new Error(`chunk ${chunk} answered twice or is out of range`);
    this.#received[chunk] = true;
    this.#inputs.forEach((s, i) => {
      if (s === null) return;
      if (stats.pass === 'rank-top' && s.selection === null) s.top[chunk] = stats.top[i] ?? null;
      if (stats.pass === 'rank-low' && s.selection !== null && s.rules === null) {
        s.low ??= new Array<RankLowCounts | null>(this.chunks).fill(null);
        s.low[chunk] = stats.low[i] ?? null;
      }
      if (stats.pass === 'l1' && s.scale === null) {
        const bins = stats.l1[i];
        if (bins === null || bins === undefined) throw new Error(`chunk ${chunk} sent no L1 sums for input ${i}`);
        if (s.l1 === null) s.l1 = new BigInt64Array(2 * L1_BINS);
        addL1Bins(s.l1, bins);
      }
    });
  }

  /** Ends the current pass once every chunk has answered: selects, finds bounds, rescales. */
  finishPass(): void {
    const pass = this.#pass;
    if (pass === null) throw new Error('no pass is running');
    const missing = this.#received.indexOf(false);
    if (missing >= 0) throw new Error(`chunk ${missing} has not answered pass ${pass}`);
    this.#pass = null;
    for (const s of this.#inputs) {
      if (s === null) continue;
      const p = s.sparsity.plan;
      if (pass === 'rank-top' && p.kind === 'rank' && s.selection === null && p.lo < p.hi) {
        const top = s.top.map((t, c) => {
          if (t === null) throw new Error(`chunk ${c} sent no top histogram`);
          return t;
        });
        s.selection = selectTop(p, top);
        if (s.selection.uniformLow !== null) s.rules = chunkRankRules(p, selectBounds(p, s.selection, null), top, null, this.chunks);
      } else if (pass === 'rank-low' && p.kind === 'rank' && s.selection !== null && s.rules === null) {
        const low = (s.low ?? []).map((l, c) => {
          if (l === null) throw new Error(`chunk ${c} sent no low histogram`);
          return l;
        });
        const top = s.top as readonly RankTopCounts[];
        const bounds: RankBounds = selectBounds(p, s.selection, low);
        s.rules = chunkRankRules(p, bounds, top, low, this.chunks);
        s.low = null;
      } else if (pass === 'l1' && s.scale === null && s.l1 !== null) {
        s.scale = rescaleFactor(this.#work, s.l1);
      }
      if (s.rules !== null) s.top = [];
    }
  }
}
