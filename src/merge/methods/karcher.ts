/**
 * karcher (semantics §1.3): the equal-weight Riemannian mean of the inputs' unit directions by
 * mergekit's fixed-point iteration, scaled by the mean norm. Following its torch code:
 *
 *   nᵢ = ‖xᵢ‖ in f32; models with nᵢ ≤ tol take no part in the direction (all: zeros out);
 *   u = R(Σ aᵢ·R(xᵢ/nᵢ)) over those (aᵢ = 1/V), normalised unless ‖u‖ < tol (then u = unit₀);
 *   up to max_iter times: dotᵢ = clamp(R(u·unitᵢ)), θᵢ = R(acos dotᵢ), skipped when θᵢ < tol;
 *     T = Σ R(aᵢ·R(θᵢ / R(sin θᵢ)))·R(unitᵢ − R(dotᵢ·u)); stop when ‖T‖ < tol;
 *     u = R(R(cos‖T‖)·u) + R(R(sin‖T‖)·R(T/‖T‖)), then u / ‖u‖ when ‖u‖ > tol;
 *   out = (Σ nᵢ/N) · u.
 *
 * The scalar steps run here (norms from the gram kernel's exact f64 sums). The dots are torch.dot
 * of the ROUNDED vectors u and unitᵢ = R(xᵢ/nᵢ) (the karcherDots kernel): in bf16 a dot near 1
 * is 1 or 1 − 2⁻⁸, so taking it from the unrounded vectors picks the other value and changes
 * which models the θ < tol rule skips. cos‖T‖ and sin‖T‖ are f32 0-d tensors on the LEFT of a
 * product, so torch narrows them to the compute dtype first (only a right-hand scalar of mul/div
 * is read in f32). The karcher kernels compute the tangent sum and the update per element. Sums
 * that torch accumulates in place round after each model.
 *
 * Every sum (the norms, ‖init‖, and per iteration the dots, ‖T‖ and ‖u‖) runs in gram blocks
 * (gram-blocks.ts), and the scalar steps are a pure function of the sums so far
 * (karcherSchedule). A tensor merged whole walks u forward once; a row chunk of a tensor the pool
 * cuts (a gram pass per sum, gram-stats.ts) walks its rows of u from the start at each pass with
 * the scalars of the steps before it: more compute, memory of its rows only, the same bytes.
 */
import { flatLayout } from '../native/layout.js';
import { KERNEL_DTYPE, roundTo } from '../native/numeric.js';
import type { TensorTask } from '../task.js';
import { type GramStats, gramBlockRows, gramPairs, gramSums, passSums, rowElements, sumGramBlocks } from './gram-blocks.js';
import {
  castOut,
  commonShapes,
  dtypeCodes,
  elementCount,
  f32Scratch,
  globalNumber,
  MergeComputeError,
  outputBuffer,
  type FamilyContext,
  type TensorData,
} from './task-inputs.js';

type KarcherPass = 'gram' | 'init' | 'dots' | 'tangent' | 'unorm';

/** One iteration's scalars: the models it moves toward (indices into the valid ones), their coefficients and dots. */
interface KarcherMove {
  readonly active: readonly number[];
  readonly coefs: Float32Array;
  readonly dots: Float32Array;
}

/** A finished iteration: its move, ‖T‖ and the divisor of u after the step. */
interface KarcherStep extends KarcherMove {
  readonly normT: number;
  readonly uDiv: number;
}

/** Where karcher stands after the passes whose whole-tensor sums are `done`. */
interface KarcherSchedule {
  /** The pass needed next, or null when the result can be written. */
  readonly next: KarcherPass | null;
  /** Every model's f32 norm, once the gram pass has run. */
  readonly norms: readonly number[] | null;
  /** Indices of the models with norm > tol, their norms and weights aᵢ. */
  readonly valid: readonly number[];
  readonly vNorms: Float32Array;
  readonly a: Float32Array;
  /** After the init pass: whether u is unit₀ (‖init‖ < tol), and u's divisor. */
  readonly init: { readonly unitOnly: boolean; readonly uDiv: number } | null;
  readonly steps: readonly KarcherStep[];
  /** The current iteration's move once its dots are known, and its ‖T‖ once that is. */
  readonly pending: KarcherMove | null;
  readonly pendingNormT: number | null;
}

/** The scalar course of karcher given the sums so far: a pure function of the task and `done`. */
function karcherSchedule(task: TensorTask, done: readonly Float64Array[]): KarcherSchedule {
  const c = KERNEL_DTYPE[task.computeDType];
  const count = task.inputs.length;
  const tol = globalNumber(task, 'tol');
  const maxIter = globalNumber(task, 'max_iter');
  const empty = { valid: [], vNorms: new Float32Array(0), a: new Float32Array(0), init: null, steps: [], pending: null, pendingNormT: null };
  const g = done[0];
  if (g === undefined) return { next: 'gram', norms: null, ...empty };
  const norms = Array.from({ length: count }, (_, i) => Math.fround(Math.sqrt(g[i * count - (i * (i - 1)) / 2] ?? 0)));
  const valid = norms.map((v, i) => ({ v, i })).filter(({ v }) => v > tol);
  if (valid.length === 0) return { next: null, norms, ...empty };
  const alpha = 1 / count;
  let alphaSum = 0;
  for (let k = 0; k < valid.length; k++) alphaSum += alpha;
  const base = { norms, valid: valid.map(({ i }) => i), vNorms: Float32Array.from(valid, ({ v }) => v), a: Float32Array.from(valid, () => alpha / alphaSum) };
  const initSums = done[1];
  if (initSums === undefined) return { next: 'init', ...base, init: null, steps: [], pending: null, pendingNormT: null };
  const initNorm = Math.fround(Math.sqrt(initSums[0] ?? 0));
  const init = initNorm < tol ? { unitOnly: true, uDiv: 1 } : { unitOnly: false, uDiv: initNorm };
  const steps: KarcherStep[] = [];
  const at = (next: KarcherPass | null, pending: KarcherMove | null = null, pendingNormT: number | null = null): KarcherSchedule => ({ next, ...base, init, steps, pending, pendingNormT });
  for (let k = 2; steps.length < maxIter; k += 3) {
    const unitDots = done[k];
    if (unitDots === undefined) return at('dots');
    // torch.dot(ū, unitᵢ) of the rounded vectors, R to the compute dtype, clamped to [−1, 1].
    const active: number[] = [];
    const coefs: number[] = [];
    const dots: number[] = [];
    for (let i = 0; i < valid.length; i++) {
      const dot = Math.min(1, Math.max(-1, roundTo(c, unitDots[i] ?? 0)));
      const theta = roundTo(c, Math.acos(dot));
      if (theta < tol) continue;
      active.push(i);
      coefs.push(roundTo(c, (base.a[i] ?? 0) * roundTo(c, theta / roundTo(c, Math.sin(theta)))));
      dots.push(dot);
    }
    if (active.length === 0) return at(null);
    const move = { active, coefs: Float32Array.from(coefs), dots: Float32Array.from(dots) };
    const tangent = done[k + 1];
    if (tangent === undefined) return at('tangent', move);
    const normT = Math.fround(Math.sqrt(tangent[0] ?? 0));
    if (normT < tol) return at(null);
    const uSums = done[k + 2];
    if (uSums === undefined) return at('unorm', move, normT);
    const uNorm = Math.fround(Math.sqrt(uSums[0] ?? 0));
    steps.push({ ...move, normT, uDiv: uNorm > tol ? uNorm : 1 });
  }
  return at(null);
}

/** Sums per gram block of the pass karcher needs after `done` (0 when none). */
export function karcherPassWidth(task: TensorTask, done: readonly Float64Array[]): number {
  const s = karcherSchedule(task, done);
  switch (s.next) {
    case null:
      return 0;
    case 'gram':
      return gramPairs(task.inputs.length);
    case 'dots':
      return s.valid.length;
    default:
      return 1;
  }
}

/**
 * u and the tangent sum t over the rows of `tensors` (a whole tensor, or a row chunk starting on a
 * gram block boundary), walked forward step by step; every sum is taken per gram block.
 */
class KarcherWalk {
  readonly #ctx: FamilyContext;
  readonly #tensors: readonly TensorData[];
  readonly #n: number;
  readonly #blockElements: number;
  #u: Float32Array;
  #t: Float32Array;
  #uDiv = 1;
  /** Steps applied to u; -1 before the init. */
  #applied = -1;
  /** Whether u is past the init's unit₀ rule. */
  #settled = false;
  /** The step whose tangent t holds (so the step itself need not compute it again), or -1. */
  #tangentOf = -1;

  constructor(ctx: FamilyContext, tensors: readonly TensorData[]) {
    const first = tensors[0];
    if (first === undefined) throw new MergeComputeError('MERGE_INPUT', ctx.task.output, 'karcher needs at least one model');
    this.#ctx = ctx;
    this.#tensors = tensors;
    this.#n = elementCount(first.shape);
    this.#blockElements = gramBlockRows(first.shape) * rowElements(first.shape);
    this.#u = f32Scratch(ctx, this.#n);
    this.#t = f32Scratch(ctx, this.#n);
  }

  /** fn over each gram block [j, j + count), its results concatenated. */
  #perBlock(width: number, fn: (j: number, count: number, out: Float64Array) => void): Float64Array {
    const blocks = Math.max(1, Math.ceil(this.#n / this.#blockElements));
    const out = new Float64Array(blocks * width);
    for (let b = 0; b < blocks; b++) {
      const j = b * this.#blockElements;
      fn(j, Math.min(this.#blockElements, this.#n - j), out.subarray(b * width, (b + 1) * width));
    }
    return out;
  }

  #slice(t: TensorData, j: number, count: number): Uint8Array {
    const size = t.bytes.byteLength / Math.max(1, this.#n);
    return t.bytes.subarray(j * size, (j + count) * size);
  }

  /** t = the tangent sum of `move` (over valid models) around ū, per block; returns the blocks' Σt². */
  #tangent(s: KarcherSchedule, move: KarcherMove): Float64Array {
    const vs = move.active.map((i) => this.#tensors[s.valid[i] ?? -1]).filter((x): x is TensorData => x !== undefined);
    const dtypes = dtypeCodes(this.#ctx, vs);
    const norms = Float32Array.from(move.active, (i) => s.vNorms[i] ?? 1);
    return this.#perBlock(1, (j, count, out) => {
      this.#ctx.kernels.karcherTangent({
        inputs: vs.map((x) => this.#slice(x, j, count)),
        dtypes,
        computeDType: this.#ctx.compute,
        count,
        norms,
        coefs: move.coefs,
        dots: move.dots,
        u: this.#u.subarray(j, j + count),
        uDiv: this.#uDiv,
        t: this.#t.subarray(j, j + count),
        out,
      });
    });
  }

  #swap(): void {
    [this.#u, this.#t] = [this.#t, this.#u];
  }

  /** The initial guess Σ aᵢ·unitᵢ (a tangent sum with dots 0 around u = 0) into u; returns the blocks' Σ of its squares. */
  #init(s: KarcherSchedule): Float64Array {
    const all = s.valid.map((_, i) => i);
    const sums = this.#tangent(s, { active: all, coefs: s.a, dots: new Float32Array(all.length) });
    this.#swap();
    this.#applied = 0;
    this.#settled = false;
    this.#tangentOf = -1;
    return sums;
  }

  /** Once ‖init‖ is known: u = unit₀ when it is below tol (the same sum over the first model alone, around u = 0 again). */
  #settleInit(s: KarcherSchedule): void {
    if (this.#settled || s.init === null) return;
    if (s.init.unitOnly) {
      this.#swap();
      this.#tangent(s, { active: [0], coefs: Float32Array.of(1), dots: Float32Array.of(0) });
      this.#swap();
    }
    this.#settled = true;
  }

  /** u = the step with `move` and ‖T‖ = normT (its tangent recomputed unless t holds it); returns the blocks' Σu². */
  #step(s: KarcherSchedule, index: number, move: KarcherMove, normT: number): Float64Array {
    const c = this.#ctx.compute;
    if (this.#tangentOf !== index) this.#tangent(s, move);
    this.#ctx.kernels.karcherStep({ computeDType: c, count: this.#n, u: this.#u, uDiv: this.#uDiv, t: this.#t, cosN: roundTo(c, Math.cos(normT)), sinN: roundTo(c, Math.sin(normT)), normT });
    this.#applied = index + 1;
    this.#tangentOf = -1;
    const uBytes = new Uint8Array(this.#u.buffer, this.#u.byteOffset, this.#u.byteLength);
    const uData: TensorData = { dtype: 'F32', shape: [this.#n], bytes: uBytes };
    return this.#perBlock(1, (j, count, out) => {
      gramSums(this.#ctx, [{ ...uData, shape: [count], bytes: uBytes.subarray(j * 4, (j + count) * 4) }], undefined, flatLayout(count), out);
    });
  }

  /** Walks u to the state `s` describes (its finished steps), from wherever it is. */
  #catchUp(s: KarcherSchedule): void {
    const init = s.init;
    if (init === null) return;
    if (this.#applied < 0) this.#init(s);
    this.#settleInit(s);
    const divisorAfter = (k: number): number => (k < 0 ? init.uDiv : (s.steps[k]?.uDiv ?? 1));
    for (let k = this.#applied; k < s.steps.length; k++) {
      const step = s.steps[k];
      if (step === undefined) break;
      this.#uDiv = divisorAfter(k - 1);
      this.#step(s, k, step, step.normT);
    }
    this.#uDiv = divisorAfter(s.steps.length - 1);
  }

  /** The blocks' sums of the pass `s` asks for next. */
  passSums(s: KarcherSchedule): Float64Array {
    if (s.next === 'gram') {
      return this.#perBlock(gramPairs(this.#tensors.length), (j, count, out) => {
        gramSums(this.#ctx, this.#tensors.map((x) => ({ ...x, shape: [count], bytes: this.#slice(x, j, count) })), undefined, flatLayout(count), out);
      });
    }
    if (s.next === 'init') return this.#init(s);
    this.#catchUp(s);
    if (s.next === 'dots') {
      const vs = s.valid.map((i) => this.#tensors[i]).filter((x): x is TensorData => x !== undefined);
      const dtypes = dtypeCodes(this.#ctx, vs);
      return this.#perBlock(vs.length, (j, count, out) => {
        this.#ctx.kernels.karcherDots({ inputs: vs.map((x) => this.#slice(x, j, count)), dtypes, computeDType: this.#ctx.compute, count, norms: s.vNorms, u: this.#u.subarray(j, j + count), uDiv: this.#uDiv, out });
      });
    }
    const move = s.pending;
    if (move === null) throw new MergeComputeError('MERGE_INPUT', this.#ctx.task.output, `karcher's ${String(s.next)} pass has no dots`);
    if (s.next === 'tangent') {
      const sums = this.#tangent(s, move);
      this.#tangentOf = s.steps.length;
      return sums;
    }
    if (s.next === 'unorm' && s.pendingNormT !== null) return this.#step(s, s.steps.length, move, s.pendingNormT);
    throw new MergeComputeError('MERGE_INPUT', this.#ctx.task.output, `karcher has no ${String(s.next)} pass here`);
  }

  /** u after every finished step, scaled by Σ aᵢnᵢ over every model, in the output dtype. */
  result(s: KarcherSchedule, out: TensorData): TensorData {
    this.#catchUp(s);
    const c = this.#ctx.compute;
    const alpha = 1 / this.#tensors.length;
    let scale = 0;
    for (const v of s.norms ?? []) scale += alpha * v;
    this.#ctx.kernels.karcherStep({ computeDType: c, count: this.#n, u: this.#u, uDiv: this.#uDiv, t: null, cosN: scale, sinN: 0, normT: 1 });
    const uBytes = new Uint8Array(this.#u.buffer, this.#u.byteOffset, this.#u.byteLength);
    this.#ctx.kernels.convertDType({ src: uBytes, srcDType: KERNEL_DTYPE.F32, roundDType: c, out: out.bytes, outDType: this.#ctx.outCode, start: 0, end: this.#n });
    return out;
  }
}

/** The whole tensor, or a row chunk with the whole tensor's sums of every pass (ctx.chunk). */
export function computeKarcher(ctx: FamilyContext): TensorData {
  const { task } = ctx;
  const tensors = commonShapes(ctx, ctx.inputs);
  const first = tensors[0];
  if (first === undefined) throw new MergeComputeError('MERGE_INPUT', task.output, 'karcher needs at least one model');
  if (tensors.length === 1) return castOut(ctx, first);
  const walk = new KarcherWalk(ctx, tensors);
  const given = passSums(ctx);
  const done: Float64Array[] = given === undefined ? [] : [...given];
  let s = karcherSchedule(task, done);
  if (given !== undefined && s.next !== null) throw new MergeComputeError('MERGE_INPUT', task.output, 'karcher chunk merged before its sums are known');
  while (s.next !== null) {
    const width = karcherPassWidth(task, done);
    done.push(sumGramBlocks(walk.passSums(s), width));
    s = karcherSchedule(task, done);
  }
  const out = outputBuffer(ctx, first.shape);
  if (s.valid.length === 0) {
    out.bytes.fill(0);
    return out;
  }
  return walk.result(s, out);
}

/** The next gram pass over a row chunk of a karcher tensor the pool runs in chunks: its blocks' sums. */
export function computeKarcherGramStats(ctx: FamilyContext): GramStats {
  const tensors = commonShapes(ctx, ctx.inputs);
  const s = karcherSchedule(ctx.task, passSums(ctx) ?? []);
  if (tensors.length < 2 || s.next === null) throw new MergeComputeError('MERGE_INPUT', ctx.task.output, 'karcher needs no gram pass here');
  return { pass: 'gram', blocks: new KarcherWalk(ctx, tensors).passSums(s) };
}
