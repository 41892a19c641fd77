/**
 * The autograd's core: a Tensor (an f32 matrix with a lazily allocated gradient) and a Tape that
 * records one backward closure per operation and replays them in reverse. Operations live in
 * ops.ts; with `recording` off (evaluation) nothing is kept, so the same code is the forward pass.
 */
import type { BufferPool } from './buffer-pool.js';
import type { GradRegion } from './grad-regions.js';
import type { TrainKernels } from './kernels.js';

export class Tensor {
  #grad: Float32Array | undefined;

  readonly data: Float32Array;
  readonly rows: number;
  readonly cols: number;
  readonly requiresGrad: boolean;
  /** A weight's gradient is only needed inside these rectangles (grad-regions.ts); undefined: all of it. */
  readonly gradRegions: readonly GradRegion[] | undefined;

  readonly #alloc: (length: number) => Float32Array;

  /**
   * A rows × cols row-major matrix (a vector is 1 × n). `alloc` makes its gradient buffer (a
   * tape's pool for activations; by default a fresh array, for weights, whose gradients outlive a step).
   */
  constructor(data: Float32Array, rows: number, cols: number, requiresGrad: boolean, options: { readonly alloc?: (length: number) => Float32Array; readonly gradRegions?: readonly GradRegion[] } = {}) {
    this.#alloc = options.alloc ?? ((n) => new Float32Array(n));
    this.gradRegions = options.gradRegions;
    this.data = data;
    this.rows = rows;
    this.cols = cols;
    this.requiresGrad = requiresGrad;
    if (data.length !== rows * cols) throw new RangeError(`Tensor: ${data.length} values for a ${rows} × ${cols} matrix`);
  }

  /** The gradient buffer, allocated (zeroed) on first use. */
  get grad(): Float32Array {
    this.#grad ??= this.#alloc(this.data.length);
    return this.#grad;
  }

  get hasGrad(): boolean {
    return this.#grad !== undefined;
  }

  zeroGrad(): void {
    this.#grad?.fill(0);
  }
}

export class Tape {
  readonly #backward: (() => void)[] = [];

  readonly kernels: TrainKernels;
  readonly threads: number;
  /** False for evaluation: operations record nothing. */
  readonly recording: boolean;

  readonly #pool: BufferPool | null;
  readonly #taken: Float32Array[] = [];

  /** With a pool, the buffers of this tape's tensors come from it and go back on release(). */
  constructor(kernels: TrainKernels, threads: number, recording: boolean, pool: BufferPool | null = null) {
    this.kernels = kernels;
    this.threads = threads;
    this.recording = recording;
    this.#pool = pool;
  }

  /** A zeroed buffer for an operation's output, gradient or scratch, valid until release(). */
  alloc(length: number): Float32Array {
    if (this.#pool === null) return new Float32Array(length);
    const b = this.#pool.take(length);
    this.#taken.push(b);
    return b;
  }

  /** Gives every buffer alloc() handed out back to the pool: no tensor of this tape may be used after. */
  release(): void {
    this.#pool?.give(this.#taken);
    this.#taken.length = 0;
  }

  /** True when an operation on these inputs needs a backward step. */
  tracks(...inputs: readonly Tensor[]): boolean {
    return this.recording && inputs.some((t) => t.requiresGrad);
  }

  record(step: () => void): void {
    this.#backward.push(step);
  }

  /** Runs the recorded steps last to first (the caller has seeded the output's gradient), then forgets them. */
  backward(): void {
    for (let i = this.#backward.length - 1; i >= 0; i--) this.#backward[i]?.();
    this.#backward.length = 0;
  }
}
