/**
 * Pareto dominance for MAXIMIZED objectives (the optimizers' convention: the runner negates an
 * objective the user minimizes). Points are arrays of equal length.
 */

/** Whether `a` is dominated by `b`: b is at least as good everywhere and better somewhere. */
export function isDominated(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) throw new RangeError(`isDominated: ${a.length} vs ${b.length} objectives`);
  let better = false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (y < x) return false;
    if (y > x) better = true;
  }
  return better;
}

/**
 * Fast non-dominated sorting (Deb et al. 2002): the fronts as lists of point indices, best
 * first; each front is in ascending index order. Equal points share a front.
 */
export function nonDominatedSort(points: readonly (readonly number[])[]): number[][] {
  const n = points.length;
  const dominates: number[][] = Array.from({ length: n }, () => []);
  const dominatedBy = new Array<number>(n).fill(0);
  for (let p = 0; p < n; p++) {
    const pp = points[p] ?? [];
    for (let q = p + 1; q < n; q++) {
      const qq = points[q] ?? [];
      if (isDominated(qq, pp)) {
        dominates[p]?.push(q);
        dominatedBy[q] = (dominatedBy[q] ?? 0) + 1;
      } else if (isDominated(pp, qq)) {
        dominates[q]?.push(p);
        dominatedBy[p] = (dominatedBy[p] ?? 0) + 1;
      }
    }
  }
  const fronts: number[][] = [];
  let current = [...Array(n).keys()].filter((i) => dominatedBy[i] === 0);
  while (current.length > 0) {
    fronts.push(current);
    const next: number[] = [];
    for (const p of current) {
      for (const q of dominates[p] ?? []) {
        dominatedBy[q] = (dominatedBy[q] ?? 0) - 1;
        if (dominatedBy[q] === 0) next.push(q);
      }
    }
    current = next.sort((a, b) => a - b);
  }
  return fronts;
}

/**
 * Crowding distance of each member of `front` (indices into `points`), aligned with `front`:
 * per objective, the two extreme points get Infinity and the others add the gap between their
 * neighbours divided by the objective's range on the front. An objective with zero or
 * non-finite range adds nothing. Ties in sorting keep front order, so the result is deterministic.
 */
export function crowdingDistance(points: readonly (readonly number[])[], front: readonly number[]): number[] {
  const size = front.length;
  const dist = new Array<number>(size).fill(0);
  if (size <= 2) return dist.fill(Number.POSITIVE_INFINITY);
  const m = points[front[0] ?? 0]?.length ?? 0;
  const value = (k: number, obj: number): number => points[front[k] ?? 0]?.[obj] ?? 0;
  for (let obj = 0; obj < m; obj++) {
    const order = [...Array(size).keys()].sort((a, b) => value(a, obj) - value(b, obj) || a - b);
    const lo = value(order[0] ?? 0, obj);
    const hi = value(order[size - 1] ?? 0, obj);
    dist[order[0] ?? 0] = Number.POSITIVE_INFINITY;
    dist[order[size - 1] ?? 0] = Number.POSITIVE_INFINITY;
    const range = hi - lo;
    if (!(range > 0) || !Number.isFinite(range)) continue;
    for (let k = 1; k < size - 1; k++) {
      const i = order[k] ?? 0;
      dist[i] = (dist[i] ?? 0) + (value(order[k + 1] ?? 0, obj) - value(order[k - 1] ?? 0, obj)) / range;
    }
  }
  return dist;
}

/** Indices of the non-dominated points (the first front), ascending. */
export function paretoFront(points: readonly (readonly number[])[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < points.length; i++) {
    const p = points[i] ?? [];
    if (!points.some((q, j) => j !== i && isDominated(p, q))) out.push(i);
  }
  return out;
}
