/**
 * The gram pass of a tensor the pool runs in row chunks, for the methods whose dot products span
 * more than a row (slerp, nuslerp, model_stock): every chunk sends its blocks' sums
 * (gram-blocks.ts), which add up in row order to the whole tensor's; every chunk then gets those
 * sums and computes its coefficients from them, which gives the bytes of the tensor merged whole.
 */
import type { TensorTask } from '../task.js';
import type { AnyStatPass, ChunkContext, ChunkReply, ChunkStatsCollector } from './chunk-stats.js';
import { type GramVectors, gramBlockRows, gramPairs, gramVectorCount, sumGramBlocks } from './gram-blocks.js';
import { modelStockVectors } from './model-stock.js';
import { nuslerpVectors } from './slerp.js';

/** How a task's gram runs: over which vectors (null: per row) and how many tensors (so pairs). */
export interface GramPlan {
  readonly vectors: GramVectors | null;
  readonly tensors: number;
}

/** The gram plan of a slerp / nuslerp / model_stock task with something to merge; undefined for other methods. */
export function gramPlanOf(task: TensorTask): GramPlan | undefined {
  const rank = task.outShape.length;
  switch (task.method) {
    case 'slerp':
      return { vectors: 'flat', tensors: 2 };
    case 'nuslerp':
      return { vectors: nuslerpVectors(task, rank), tensors: 2 };
    case 'model_stock':
      return { vectors: modelStockVectors(task, rank), tensors: task.inputs.length - 1 };
    default:
      return undefined;
  }
}

export class GramCollector implements ChunkStatsCollector {
  readonly #width: number;
  readonly #blocks: readonly number[];
  #received: (Float64Array | null)[] = [];
  #running = false;
  #sums: Float64Array | null = null;

  /** `chunkRows`: each chunk's rows, in order; every chunk but the last a whole number of gram blocks. */
  constructor(task: TensorTask, chunkRows: readonly number[]) {
    const plan = gramPlanOf(task);
    if (plan?.vectors == null) throw new RangeError(`${task.output}: ${task.method} here needs no gram pass`);
    const shape = task.outShape.length === 0 ? [1] : task.outShape;
    const blockRows = gramBlockRows(shape);
    chunkRows.forEach((rows, i) => {
      if (i < chunkRows.length - 1 && rows % blockRows !== 0) throw new RangeError(`${task.output}: chunk ${i} of ${rows} rows is not whole gram blocks of ${blockRows}`);
    });
    this.#width = gramVectorCount(shape, plan.vectors) * gramPairs(plan.tensors);
    this.#blocks = chunkRows.map((rows) => Math.ceil(rows / blockRows));
  }

  get chunks(): number {
    return this.#blocks.length;
  }

  nextPass(): AnyStatPass | null {
    return this.#sums === null ? 'gram' : null;
  }

  plannedPasses(): number {
    return this.#sums === null ? 1 : 0;
  }

  beginPass(pass: AnyStatPass): void {
    if (pass !== this.nextPass()) throw new Error(`pass ${pass} is not the one needed (${String(this.nextPass())})`);
    this.#running = true;
    this.#received = new Array<Float64Array | null>(this.chunks).fill(null);
  }

  chunkContext(): ChunkContext {
    return { kind: 'gram', sums: this.#sums };
  }

  absorb(chunk: number, stats: ChunkReply): void {
    if (!this.#running || stats.pass !== 'gram') throw new Error(`reply to pass ${stats.pass}, expected ${this.#running ? 'gram' : 'none'}`);
    const want = (this.#blocks[chunk] ?? 0) * this.#width;
    if (this.#received[chunk] !== null) throw new Error(`chunk ${chunk} answered twice or is out of range`);
    if (stats.blocks.length !== want) throw new Error(`chunk ${chunk} sent ${stats.blocks.length} sums, expected ${want}`);
    this.#received[chunk] = stats.blocks;
  }

  finishPass(): void {
    if (!this.#running) throw new Error('no pass is running');
    const missing = this.#received.indexOf(null);
    if (missing >= 0) throw new Error(`chunk ${missing} has not answered pass gram`);
    const all = new Float64Array(this.#received.reduce((n, b) => n + (b?.length ?? 0), 0));
    let at = 0;
    for (const b of this.#received) {
      if (b === null) continue;
      all.set(b, at);
      at += b.length;
    }
    this.#sums = sumGramBlocks(all, this.#width);
    this.#running = false;
    this.#received = [];
  }
}
