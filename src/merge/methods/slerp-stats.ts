/**
 * The gram pass of a slerp / nuslerp tensor the pool runs in row chunks: every chunk sends its
 * blocks' sums (gram-blocks.ts), which add up in row order to the whole tensor's, and every chunk
 * is then mixed with the coefficients they give: the same bytes as the tensor computed whole.
 */
import { KERNEL_DTYPE } from '../native/numeric.js';
import type { TensorTask } from '../task.js';
import type { AnyStatPass, ChunkContext, ChunkReply, ChunkStatsCollector } from './chunk-stats.js';
import { type GramCoefficients, type GramVectors, gramBlockRows, gramVectorCount, sumGramBlocks } from './gram-blocks.js';
import { nuslerpVectors, slerpFamilyCoefficients } from './slerp.js';

/** How the task's dot products run, or null when they are per row (its row chunks need no pass). */
export function slerpGramVectors(task: TensorTask): GramVectors | null {
  if (task.method === 'slerp') return 'flat';
  if (task.method === 'nuslerp') return nuslerpVectors(task, task.outShape.length);
  throw new RangeError(`${task.method} is not slerp or nuslerp`);
}

export class SlerpGramCollector implements ChunkStatsCollector {
  readonly #task: TensorTask;
  readonly #perVector: number;
  readonly #blocks: readonly number[];
  #received: (Float64Array | null)[] = [];
  #running = false;
  #coefficients: GramCoefficients | null = null;

  /** `chunkRows`: each chunk's rows, in order; every chunk but the last a whole number of gram blocks. */
  constructor(task: TensorTask, chunkRows: readonly number[]) {
    const vectors = slerpGramVectors(task);
    if (vectors === null) throw new RangeError(`${task.output}: ${task.method} here needs no gram pass`);
    const shape = task.outShape.length === 0 ? [1] : task.outShape;
    const blockRows = gramBlockRows(shape);
    chunkRows.forEach((rows, i) => {
      if (i < chunkRows.length - 1 && rows % blockRows !== 0) throw new RangeError(`${task.output}: chunk ${i} of ${rows} rows is not whole gram blocks of ${blockRows}`);
    });
    this.#task = task;
    this.#perVector = gramVectorCount(shape, vectors);
    this.#blocks = chunkRows.map((rows) => Math.ceil(rows / blockRows));
  }

  get chunks(): number {
    return this.#blocks.length;
  }

  nextPass(): AnyStatPass | null {
    return this.#coefficients === null ? 'gram' : null;
  }

  plannedPasses(): number {
    return this.#coefficients === null ? 1 : 0;
  }

  beginPass(pass: AnyStatPass): void {
    if (pass !== this.nextPass()) throw new Error(`pass ${pass} is not the one needed (${String(this.nextPass())})`);
    this.#running = true;
    this.#received = new Array<Float64Array | null>(this.chunks).fill(null);
  }

  chunkContext(): ChunkContext {
    return { kind: 'gram', coefficients: this.#coefficients };
  }

  absorb(chunk: number, stats: ChunkReply): void {
    if (!this.#running || stats.pass !== 'gram') throw new Error(`reply to pass ${stats.pass}, expected ${this.#running ? 'gram' : 'none'}`);
    const want = (this.#blocks[chunk] ?? 0) * this.#perVector * 3;
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
    this.#coefficients = slerpFamilyCoefficients(this.#task, KERNEL_DTYPE[this.#task.computeDType], sumGramBlocks(all, this.#perVector), this.#perVector);
    this.#running = false;
    this.#received = [];
  }
}
