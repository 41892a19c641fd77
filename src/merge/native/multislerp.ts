import type { MultislerpInputs, MultislerpMixArgs, MultislerpMomentsArgs, MultislerpTangentArgs } from './binding.js';
import { BLOCK, addSquares, dtypeAt, elementReader, elementWriter, laneTotal, loadBlock, roundBlock, roundTo, scratch, storeBlock, type Scratch } from './numeric.js';

/**
 * Recomputes m and τ of elements [j, j + n) as multislerp.cc does (see binding.ts MultislerpArgs):
 * normaliseMean needs `meanNorm`, compute also `dots`; the moments pass gives neither or only meanNorm.
 */
function blockComputer(p: MultislerpInputs & { readonly meanNorm?: number; readonly dots?: Float32Array }): {
  b: Scratch;
  u: Scratch[];
  mean: Scratch;
  tau: Scratch;
  loadMean: (j: number, n: number) => void;
  normaliseMean: (n: number) => void;
  compute: (j: number, n: number) => void;
} {
  const c = p.computeDType;
  const m = p.inputs.length;
  if (m < 1) throw new TypeError('multislerp: inputs must not be empty');
  for (const [name, arr] of [['divisors', p.divisors], ['weights', p.weights], ['dots', p.dots ?? p.weights]] as const) {
    if (arr.length < m) throw new TypeError(`${name} holds ${arr.length} elements, needs ${m}`);
  }
  const readers = p.inputs.map((bytes, i) => elementReader(bytes, dtypeAt(p.dtypes, i), p.count, `inputs[${i}]`));
  const base = p.base === null ? undefined : elementReader(p.base, p.baseDType, p.count, 'base');
  const b = scratch();
  const u: Scratch[] = readers.map(() => scratch());
  const mean = scratch();
  const tau = scratch();
  const meanNorm = p.meanNorm === undefined ? undefined : Math.fround(p.meanNorm);
  const dots = p.dots;
  // uᵢ and mean = R(Σ R(uᵢ·wᵢ)), before the division by the mean norm.
  const loadMean = (j: number, n: number): void => {
    if (base) loadBlock(base, j, n, b.f, b.u, c);
    mean.f.fill(0, 0, n);
    readers.forEach((r, i) => {
      const s = u[i];
      if (s === undefined) return;
      loadBlock(r, j, n, s.f, s.u, c);
      if (base) {
        for (let k = 0; k < n; k++) s.f[k] = (s.f[k] ?? 0) - (b.f[k] ?? 0);
        roundBlock(c, s.f, n);
      }
      const dv = p.divisors[i] ?? 1;
      const w = p.weights[i] ?? 0;
      for (let k = 0; k < n; k++) {
        const uk = roundTo(c, (s.f[k] ?? 0) / dv);
        s.f[k] = uk;
        mean.f[k] = (mean.f[k] ?? 0) + roundTo(c, uk * w);
      }
    });
    roundBlock(c, mean.f, n);
  };
  const normaliseMean = (n: number): void => {
    if (meanNorm === undefined) throw new TypeError('meanNorm must be a number');
    for (let k = 0; k < n; k++) mean.f[k] = roundTo(c, (mean.f[k] ?? 0) / meanNorm);
  };
  const compute = (j: number, n: number): void => {
    if (dots === undefined) throw new TypeError('dots must be a Float32Array');
    loadMean(j, n);
    normaliseMean(n);
    tau.f.fill(0, 0, n);
    u.forEach((s, i) => {
      const di = dots[i] ?? 0;
      const w = p.weights[i] ?? 0;
      for (let k = 0; k < n; k++) {
        tau.f[k] = (tau.f[k] ?? 0) + roundTo(c, roundTo(c, (s.f[k] ?? 0) - roundTo(c, di * (mean.f[k] ?? 0))) * w);
      }
    });
    roundBlock(c, tau.f, n);
  };
  return { b, u, mean, tau, loadMean, normaliseMean, compute };
}

/** TypeScript twin of multislerp.cc multislerp_moments: out = [Σ mean², then with withDots Σ R(uᵢ·m)]. */
export function multislerpMoments(p: MultislerpMomentsArgs): void {
  const c = p.computeDType;
  const m = p.inputs.length;
  const sets = p.withDots ? 1 + m : 1;
  if (p.out.length < sets) throw new TypeError(`out holds ${p.out.length} elements, needs ${sets}`);
  const blk = blockComputer(p);
  const lanes = new Float64Array(sets * 4);
  for (let j = 0; j < p.count; j += BLOCK) {
    const n = Math.min(BLOCK, p.count - j);
    blk.loadMean(j, n);
    addSquares(lanes, blk.mean.f, j, n);
    if (!p.withDots) continue;
    blk.normaliseMean(n);
    blk.u.forEach((s, i) => {
      for (let k = 0; k < n; k++) {
        const l = (1 + i) * 4 + ((j + k) & 3);
        lanes[l] = (lanes[l] ?? 0) + roundTo(c, (s.f[k] ?? 0) * (blk.mean.f[k] ?? 0));
      }
    });
  }
  for (let e = 0; e < sets; e++) {
    p.out[e] = laneTotal(lanes, e);
  }
}

/** TypeScript twin of multislerp.cc multislerp_tangent: out[0] = Σ τ² (f64, four lanes by index). */
export function multislerpTangent(p: MultislerpTangentArgs): void {
  if (p.out.length < 1) throw new TypeError('out must hold 1 element');
  const blk = blockComputer(p);
  const lanes = new Float64Array(4);
  for (let j = 0; j < p.count; j += BLOCK) {
    const n = Math.min(BLOCK, p.count - j);
    blk.compute(j, n);
    addSquares(lanes, blk.tau.f, j, n);
  }
  p.out[0] = laneTotal(lanes);
}

/** TypeScript twin of multislerp.cc multislerp_mix: out = R(R(R(m·cosT) + R(τ·sincT))·scale) (+ base). */
export function multislerpMix(p: MultislerpMixArgs): void {
  if (!(p.start <= p.end && p.end <= p.count)) throw new TypeError('multislerpMix: bad element range');
  const c = p.computeDType;
  const blk = blockComputer(p);
  const w = elementWriter(p.out, p.outDType, p.start, p.end, 'out');
  const cosT = Math.fround(p.cosT);
  const sincT = Math.fround(p.sincT);
  const scale = Math.fround(p.scale);
  const r = blk.mean;
  for (let j = p.start; j < p.end; j += BLOCK) {
    const n = Math.min(BLOCK, p.end - j);
    blk.compute(j, n);
    for (let k = 0; k < n; k++) {
      r.f[k] = roundTo(c, roundTo(c, roundTo(c, (r.f[k] ?? 0) * cosT) + roundTo(c, (blk.tau.f[k] ?? 0) * sincT)) * scale);
    }
    if (p.base !== null) {
      for (let k = 0; k < n; k++) r.f[k] = (r.f[k] ?? 0) + (blk.b.f[k] ?? 0);
      roundBlock(c, r.f, n);
    }
    storeBlock(r.f, r.u, n, w, j);
  }
  w.finish();
}
