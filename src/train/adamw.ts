/**
 * AdamW (decoupled weight decay, bias-corrected moments, PyTorch's formula) with a global
 * gradient-norm clip and a linear warm-up + cosine learning-rate schedule. Arithmetic in f64,
 * parameters stored back as f32, tensors visited in one fixed order: deterministic.
 */
export interface AdamWSettings {
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
  readonly weightDecay: number;
  readonly gradClipNorm: number;
}

export interface ScheduleSettings {
  readonly steps: number;
  readonly learningRate: number;
  readonly warmupSteps: number;
  readonly minLrRatio: number;
}

/** The learning rate of step `step` (0-based): linear warm-up to the peak, then cosine down to peak · minLrRatio at the last step. */
export function learningRateAt(s: ScheduleSettings, step: number): number {
  if (step < s.warmupSteps) return (s.learningRate * (step + 1)) / s.warmupSteps;
  const span = Math.max(1, s.steps - 1 - s.warmupSteps);
  const progress = Math.min(1, (step - s.warmupSteps) / span);
  const floor = s.learningRate * s.minLrRatio;
  return floor + (s.learningRate - floor) * 0.5 * (1 + Math.cos(Math.PI * progress));
}

export interface AdamWParameter {
  readonly name: string;
  readonly data: Float32Array;
  readonly grad: Float32Array;
  /** Matrices decay; norm weights do not. */
  readonly decay: boolean;
  /** 1 where an element may change; 0 keeps it exactly as it is (no update, no decay, not in the clip norm). Absent: every element. */
  readonly mask?: Uint8Array;
}

export class AdamW {
  readonly #m = new Map<string, Float64Array>();
  readonly #v = new Map<string, Float64Array>();
  #t = 0;

  readonly settings: AdamWSettings;

  constructor(settings: AdamWSettings) {
    this.settings = settings;
  }

  /** One update of every parameter; returns the gradient norm before clipping. */
  step(params: readonly AdamWParameter[], learningRate: number): number {
    const { beta1, beta2, epsilon, weightDecay, gradClipNorm } = this.settings;
    let sq = 0;
    for (const p of params) {
      const mask = p.mask;
      if (mask === undefined) for (const g of p.grad) sq += g * g;
      else for (let i = 0; i < p.grad.length; i++) if (mask[i] === 1) sq += (p.grad[i] ?? 0) ** 2;
    }
    const norm = Math.sqrt(sq);
    const clip = gradClipNorm > 0 && norm > gradClipNorm ? gradClipNorm / norm : 1;
    this.#t++;
    const c1 = 1 - beta1 ** this.#t;
    const c2 = 1 - beta2 ** this.#t;
    for (const p of params) {
      let m = this.#m.get(p.name);
      let v = this.#v.get(p.name);
      if (m === undefined || v === undefined) {
        m = new Float64Array(p.data.length);
        v = new Float64Array(p.data.length);
        this.#m.set(p.name, m);
        this.#v.set(p.name, v);
      }
      const decay = p.decay ? 1 - learningRate * weightDecay : 1;
      const mask = p.mask;
      for (let i = 0; i < p.data.length; i++) {
        if (mask !== undefined && mask[i] !== 1) continue;
        const g = (p.grad[i] ?? 0) * clip;
        const mi = beta1 * (m[i] ?? 0) + (1 - beta1) * g;
        const vi = beta2 * (v[i] ?? 0) + (1 - beta2) * g * g;
        m[i] = mi;
        v[i] = vi;
        p.data[i] = (p.data[i] ?? 0) * decay - (learningRate * (mi / c1)) / (Math.sqrt(vi / c2) + epsilon);
      }
    }
    return norm;
  }
}
