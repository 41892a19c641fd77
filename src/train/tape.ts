/**
 * The autograd's core: a Tensor (an f32 matrix with a lazily allocated gradient) and a Tape that
 * records one backward closure per operation and replays them in reverse. Operations live in
 * ops.ts; with `recording` off (evaluation) nothing is kept, so the same code is the forward pass.
 */
import type { TrainKernels } from './kernels.js';

export class Tensor {
  #grad: Float32Array | undefined;

  readonly data: Float32Array;
  readonly rows: number;
  readonly cols: number;
  readonly requiresGrad: boolean;

  /** A rows × cols row-major matrix (a vector is 1 × n). */
  constructor(data: Float32Array, rows: number, cols: number, requiresGrad: boolean) {
    this.data = data;
    this.rows = rows;
    this.cols = cols;
    this.requiresGrad = requiresGrad;
    if (data.length !== rows * cols) throw new RangeError(`Tensor: ${data.length} values for a ${rows} × ${cols} matrix`);
  }

  /** The gradient buffer, allocated (zeroed) on first use. */
  get grad(): Float32Array {
    this.#grad ??= new Float32Array(this.data.length);
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

  constructor(kernels: TrainKernels, threads: number, recording: boolean) {
    this.kernels = kernels;
    this.threads = threads;
    this.recording = recording;
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
