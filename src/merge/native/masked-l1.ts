import type { MaskedL1Args } from './binding.js';
import { blockMasker } from './mask-rule.js';
import { BLOCK, elementReader, loadBlock, roundBlock, scratch } from './numeric.js';

/**
 * TypeScript twin of masked-l1.cc: out[0] = Σ|δ|, out[1] = Σ|δ| over kept entries, δ = R(x − base),
 * summed in f64 in four lanes by element index (j mod 4), combined as (l0 + l1) + (l2 + l3).
 */
export function maskedL1(a: MaskedL1Args): void {
  const c = a.computeDType;
  const base = elementReader(a.base, a.baseDType, a.count, 'base');
  const x = elementReader(a.x, a.xDType, a.count, 'x');
  const masker = blockMasker(a.mask, 0, a.count, 'mask');
  if (a.out.length < 2) throw new TypeError('out must hold 2 elements');
  const b = scratch();
  const v = scratch();
  const all = [0, 0, 0, 0];
  const kept = [0, 0, 0, 0];
  for (let j = 0; j < a.count; j += BLOCK) {
    const n = Math.min(BLOCK, a.count - j);
    loadBlock(base, j, n, b.f, b.u, c);
    loadBlock(x, j, n, v.f, v.u, c);
    for (let k = 0; k < n; k++) v.f[k] = (v.f[k] ?? 0) - (b.f[k] ?? 0);
    roundBlock(c, v.f, n);
    const m = masker.active ? masker.block(j, n, v.u) : null;
    for (let k = 0; k < n; k++) {
      const d = Math.abs(v.f[k] ?? 0);
      const lane = (j + k) & 3;
      all[lane] = (all[lane] ?? 0) + d;
      if (m === null || m[k] !== 0) kept[lane] = (kept[lane] ?? 0) + d;
    }
  }
  a.out[0] = ((all[0] ?? 0) + (all[1] ?? 0)) + ((all[2] ?? 0) + (all[3] ?? 0));
  a.out[1] = ((kept[0] ?? 0) + (kept[1] ?? 0)) + ((kept[2] ?? 0) + (kept[3] ?? 0));
}
