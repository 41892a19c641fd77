/**
 * The gram passes of a tensor the pool runs in row chunks, for the methods whose sums span more
 * than a row (slerp, nuslerp, model_stock: one pass; multislerp: up to four, each needing the
 * last's result; karcher: two, then three per iteration): every chunk sends its blocks' sums
 * (gram-blocks.ts), which add up in row order to the whole tensor's; every chunk then gets those sums and computes its coefficients from them,
 * which gives the bytes of the tensor merged whole.
 */
import type { TensorTask } from '../task.js';
import type { AnyStatPass, ChunkContext, ChunkReply, ChunkStatsCollector } from './chunk-stats.js';
import { type GramVectors, chunkGramBlocks, gramPairs, gramVectorCount, sumGramBlocks } from './gram-blocks.js';
import { karcherPassWidth } from './karcher.js';
import { MULTISLERP_PASSES, multislerpPassWidth } from './multislerp.js';
import { globalNumber } from './task-inputs.js';
import { modelStockVectors } from './model-stock.js';
import { nuslerpVectors } from './slerp.js';

/** How a task's gram runs: over which vectors (null: per row, no pass), of how many tensors, and how many passes to plan for. */
export interface GramPlan {
  readonly vectors: GramVectors | null;
  /** Tensors of the first gram pass (its pairs are the sums per vector). */
  readonly tensors: number;
  readonly passes: number;
}

/** The gram plan of a slerp / nuslerp / model_stock / multislerp / karcher task with something to merge; undefined for other methods. */
export function gramPlanOf(task: TensorTask): GramPlan | undefined {
  const rank = task.outShape.length;
  switch (task.method) {
    case 'slerp':
      return { vectors: 'flat', tensors: 2, passes: 1 };
    case 'nuslerp':
      return { vectors: nuslerpVectors(task, rank), tensors: 2, passes: 1 };
    case 'model_stock':
      return { vectors: modelStockVectors(task, rank), tensors: task.inputs.length - 1, passes: 1 };
    case 'multislerp':
      return { vectors: 'flat', tensors: task.inputs.filter((_, i) => i !== task.baseIndex).length, passes: MULTISLERP_PASSES };
    case 'karcher':
      // The norms and ‖init‖, then the dots, ‖T‖ and ‖u‖ of each iteration: the first is
      // planned, later ones (how many depends on the data) raise the progress total as they come.
      return { vectors: 'flat', tensors: task.inputs.length, passes: 2 + 3 * Math.min(1, Math.max(0, globalNumber(task, 'max_iter'))) };
    default:
      return undefined;
  }
}

/** Sums per gram block of the pass `task` needs after those whose whole-tensor sums are `done`; 0 when it needs none. */
function nextPassWidth(task: TensorTask, done: readonly Float64Array[]): number {
  if (task.method === 'multislerp') return multislerpPassWidth(task, done);
  if (task.method === 'karcher') return karcherPassWidth(task, done);
  if (done.length > 0) return 0;
  const plan = gramPlanOf(task);
  return plan?.vectors == null ? 0 : gramVectorCount(task.outShape, plan.vectors) * gramPairs(plan.tensors);
}

export class GramCollector implements ChunkStatsCollector {
  readonly #task: TensorTask;
  readonly #blocks: readonly number[];
  #received: (Float64Array | null)[] = [];
  #running = false;
  readonly #done: Float64Array[] = [];
  readonly #plannedTotal: number;
  /** Sums per block of the pass running. */
  #width = 0;

  /** `chunkRows`: each chunk's rows, in order; every chunk but the last a whole number of gram blocks. */
  constructor(task: TensorTask, chunkRows: readonly number[]) {
    const plan = gramPlanOf(task);
    if (plan === undefined || plan.vectors === null) throw new RangeError(`${task.output}: ${task.method} here needs no gram pass`);
    this.#task = task;
    this.#blocks = chunkGramBlocks(task.output, task.outShape, chunkRows);
    this.#plannedTotal = plan.passes;
  }

  get chunks(): number {
    return this.#blocks.length;
  }

  nextPass(): AnyStatPass | null {
    return nextPassWidth(this.#task, this.#done) > 0 ? 'gram' : null;
  }

  plannedPasses(): number {
    return this.nextPass() === null ? 0 : Math.max(1, this.#plannedTotal - this.#done.length);
  }

  beginPass(pass: AnyStatPass): void {
    if (pass !== this.nextPass()) throw new Error(`pass ${pass} is not the one needed (${String(this.nextPass())})`);
    this.#running = true;
    this.#received = new Array<Float64Array | null>(this.chunks).fill(null);
    this.#width = nextPassWidth(this.#task, this.#done);
  }

  chunkContext(): ChunkContext {
    return { kind: 'gram', sums: [...this.#done] };
  }

  absorb(chunk: number, stats: ChunkReply): void {
    if (!this.#running || stats.pass !== 'gram') throw new Error(`reply to pass ${stats.pass}, expected ${this.#running ? 'gram' : 'none'}`);
    const blocks = this.#blocks[chunk];
    if (blocks === undefined || this.#received[chunk] !== null) throw new Error(`chunk ${chunk} answered twice or is out of range`);
    if (stats.blocks.length !== blocks * this.#width) throw new Error(`chunk ${chunk} sent ${stats.blocks.length} sums for ${blocks} blocks, expected ${this.#width} per block`);
    this.#received[chunk] = stats.blocks;
  }

  finishPass(): void {
    if (!this.#running) throw new Error('no pass is running');
    const missing = this.#received.indexOf(null);
    if (missing >= 0) throw new Error(`chunk ${missing} has not answered pass gram`);
    this.#done.push(sumGramBlocks(this.#received as readonly Float64Array[], this.#width));
    this.#running = false;
    this.#received = [];
  }
}
