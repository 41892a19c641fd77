import type { Rng } from './rng.js';

/**
 * The plain vector form of a genome, which is all an optimizer sees: continuous genes normalized
 * to [0, 1] and categorical genes as choice indices. What each gene means (and how it decodes to
 * a mergekit config) is genome.ts's business; optimizers need only the GenomeShape.
 */
export interface Genome {
  /** Continuous genes, each in [0, 1]; the schema maps 0 and 1 to its gene's search bounds. */
  readonly continuous: readonly number[];
  /** Categorical genes, each an integer index into its gene's choices. */
  readonly categorical: readonly number[];
}

/** How many genes of each kind a genome has. */
export interface GenomeShape {
  readonly continuous: number;
  /** Number of choices of each categorical gene (each ≥ 1). */
  readonly categorical: readonly number[];
}

/** An exact identity of a genome's vector (two genomes with the same key are the same point). */
export function genomeKey(g: Genome): string {
  return JSON.stringify([g.continuous, g.categorical]);
}

/** A uniformly random genome. */
export function randomGenome(shape: GenomeShape, rng: Rng): Genome {
  const continuous = Array.from({ length: shape.continuous }, () => rng.next());
  const categorical = shape.categorical.map((n) => rng.int(n));
  return { continuous, categorical };
}

/** Whether `g` fits `shape`: lengths, continuous genes finite in [0, 1], categorical indices in range. */
export function fitsShape(g: Genome, shape: GenomeShape): boolean {
  if (g.continuous.length !== shape.continuous || g.categorical.length !== shape.categorical.length) return false;
  if (!g.continuous.every((x) => Number.isFinite(x) && x >= 0 && x <= 1)) return false;
  return g.categorical.every((c, i) => Number.isInteger(c) && c >= 0 && c < (shape.categorical[i] ?? 0));
}

/** Throws RangeError naming the first problem when `g` does not fit `shape`. */
export function assertFitsShape(g: Genome, shape: GenomeShape, what = 'genome'): void {
  if (g.continuous.length !== shape.continuous) {
    throw new RangeError(`${what}: expected ${shape.continuous} continuous genes, got ${g.continuous.length}`);
  }
  if (g.categorical.length !== shape.categorical.length) {
    throw new RangeError(`${what}: expected ${shape.categorical.length} categorical genes, got ${g.categorical.length}`);
  }
  g.continuous.forEach((x, i) => {
    if (!Number.isFinite(x) || x < 0 || x > 1) throw new RangeError(`${what}: continuous gene ${i} must be in [0, 1], got ${x}`);
  });
  g.categorical.forEach((c, i) => {
    const n = shape.categorical[i] ?? 0;
    if (!Number.isInteger(c) || c < 0 || c >= n) throw new RangeError(`${what}: categorical gene ${i} must be an integer in [0, ${n - 1}], got ${c}`);
  });
}

/** Clamps to [0, 1]. */
export function clamp01(x: number): number {
  return x < 0 ? 0 : x > 1 ? 1 : x;
}
