/**
 * The training kernels as the autograd sees them: the C++ addon (build/Release/
 * evomerge_train_kernels.node) when it loads, else the TypeScript twins (gemm.ts, attention.ts)
 * with a one-time warning. `threads` only splits independent outputs, so it never changes a result.
 */
import { loadAddon } from '../native-addon.js';
import { type AttentionShape, attentionBackwardReference, attentionForwardReference } from './attention.js';
import { type GemmArgs, gemmReference } from './gemm.js';

export interface TrainKernels {
  readonly native: boolean;
  gemm(g: GemmArgs, threads: number): void;
  attentionForward(s: AttentionShape, q: Float32Array, k: Float32Array, v: Float32Array, o: Float32Array, p: Float32Array, threads: number): void;
  attentionBackward(
    s: AttentionShape,
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    p: Float32Array,
    dout: Float32Array,
    dq: Float32Array,
    dk: Float32Array,
    dv: Float32Array,
    threads: number,
  ): void;
}

export const TS_TRAIN_KERNELS: TrainKernels = {
  native: false,
  gemm: (g) => gemmReference(g),
  attentionForward: (s, q, k, v, o, p) => attentionForwardReference(s, q, k, v, o, p),
  attentionBackward: (s, q, k, v, p, dout, dq, dk, dv) => attentionBackwardReference(s, q, k, v, p, dout, dq, dk, dv),
};

/** The addon's functions, positional for speed (see native/train-binding.cc). */
interface TrainAddon {
  gemm(...args: [Float32Array, number, number, number, Float32Array, number, number, Float32Array, number, number, number, number, number, boolean, number]): void;
  attentionForward(...args: [number, number, number, number, number, Float32Array, Float32Array, Float32Array, Float32Array, Float32Array, number]): void;
  attentionBackward(
    ...args: [number, number, number, number, number, Float32Array, Float32Array, Float32Array, Float32Array, Float32Array, Float32Array, Float32Array, Float32Array, number]
  ): void;
}

function nativeKernels(addon: TrainAddon): TrainKernels {
  return {
    native: true,
    gemm: (g, threads) => addon.gemm(g.a, g.aOffset, g.sam, g.sak, g.b, g.bOffset, g.ldb, g.c, g.cOffset, g.ldc, g.m, g.n, g.k, g.accumulate, threads),
    attentionForward: (s, q, k, v, o, p, threads) => addon.attentionForward(s.batch, s.seq, s.heads, s.kvHeads, s.headDim, q, k, v, o, p, threads),
    attentionBackward: (s, q, k, v, p, dout, dq, dk, dv, threads) =>
      addon.attentionBackward(s.batch, s.seq, s.heads, s.kvHeads, s.headDim, q, k, v, p, dout, dq, dk, dv, threads),
  };
}

let loaded: TrainKernels | undefined;

/** The addon's kernels when it loads (once per process), else the twins; EVOMERGE_KERNELS=ts forces the twins. */
export function loadTrainKernels(logger: (message: string) => void = (m) => process.stderr.write(`${m}\n`)): TrainKernels {
  if (loaded !== undefined) return loaded;
  const r = loadAddon('evomerge_train_kernels', 1, ['gemm', 'attentionForward', 'attentionBackward']);
  if ('module' in r) {
    // The one cast of the addon: loadAddon checked its functions by name.
    loaded = nativeKernels(r.module as unknown as TrainAddon);
  } else {
    loaded = TS_TRAIN_KERNELS;
    logger(`evomerge: native training kernels unavailable (${r.reason}); using the TypeScript kernels (much slower).`);
  }
  return loaded;
}
