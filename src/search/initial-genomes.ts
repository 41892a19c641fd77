import type { Genome } from './genome-vector.js';
import { GenomeError, type ContinuousGene, type GenomeSchema } from './genome.js';
import { geneFraction } from './genome-encode.js';
import { methodGenes } from './method-genes.js';
import type { InitialKind } from './space-schema.js';

/**
 * Genomes a search starts from besides random ones (`optimizer.initial`), so that the first
 * generation already holds the models a user would try by hand and the optimizer can only improve
 * on them: `sources` is each source model alone (weight 1 for it, 0 for the others, no
 * sparsification), `uniform` every source at weight 1 (plain task arithmetic, or linear's mean),
 * `ablations` the uniform genome once per tensor class (each `genome.filters` entry, the catch-all,
 * pre and post) with that class left at the base in every layer: the merge a user tries when one
 * kind of tensor carries a fine-tune's side effects. `source-ablations` does the same for one
 * source at a time (source by source, class by class): for when one fine-tune's class carries side
 * effects and the other's the skill.
 */

/** The normalized gene value for `value`, which must lie in the gene's search range. */
function geneValue(gene: ContinuousGene, value: number, kind: InitialKind): number {
  const x = geneFraction(value, gene.min, gene.max);
  if (x !== undefined) return x;
  const lo = Math.min(gene.min, gene.max);
  const hi = Math.max(gene.min, gene.max);
  throw new GenomeError('NOT_REPRESENTABLE', `optimizer.initial '${kind}': gene ${gene.name} needs ${gene.param} ${value}, outside its search range [${lo}, ${hi}] (widen genome.${gene.param})`);
}

/** One genome with every group on `method`, source weights from `weightOf`, densities at their most. */
function weightedGenome(schema: GenomeSchema, method: string, weightOf: (source: number | 'base', gene: ContinuousGene) => number, kind: InitialKind): Genome {
  const categorical = schema.categorical.map((c) => (c.role === 'method' ? c.choices.indexOf(method) : 0));
  const continuous = schema.continuous.map((gene) => {
    switch (gene.param) {
      case 'weight':
        return geneValue(gene, weightOf(gene.source ?? 'base', gene), kind);
      case 'density':
        // Density 1 keeps the whole task vector: the source exactly, not a sparsified copy.
        return geneValue(gene, Math.max(gene.min, gene.max), kind);
      default:
        return 0.5; // t: read by slerp only, which these genomes never use
    }
  });
  return { continuous, categorical };
}

/** A weight gene's tensor class for `ablations`: pre and post are classes of their own. */
function classOf(gene: ContinuousGene): string {
  return gene.depth === 'pre' || gene.depth === 'post' ? gene.depth : gene.tensorClass;
}

/** The genomes of `kinds`, in order (sources in the space's model order); [] for none. */
export function initialGenomes(schema: GenomeSchema, kinds: readonly InitialKind[]): Genome[] {
  if (kinds.length === 0) return [];
  const methods = schema.space.genome.methods;
  const method = methods.find((m) => {
    const g = methodGenes(m);
    return g.weight && !g.t;
  });
  if (method === undefined) {
    throw new GenomeError('NOT_REPRESENTABLE', `optimizer.initial: needs a method with per-model weights (linear, task_arithmetic, ties, ...) in genome.methods, got ${methods.join(', ')}`);
  }
  const out: Genome[] = [];
  for (const kind of kinds) {
    if (kind === 'sources') schema.space.models.forEach((_, k) => out.push(weightedGenome(schema, method, (s) => (s === k ? 1 : 0), kind)));
    else if (kind === 'uniform') out.push(weightedGenome(schema, method, (s) => (s === 'base' ? 0 : 1), kind));
    else {
      const classes = [...new Set(schema.continuous.filter((g) => g.param === 'weight').map(classOf))];
      // Whose class is left out: every source at once ('all'), or each source in turn.
      const targets: readonly (number | 'all')[] = kind === 'ablations' ? ['all'] : schema.space.models.map((_, k) => k);
      for (const target of targets) {
        for (const c of classes) out.push(weightedGenome(schema, method, (s, gene) => (s === 'base' || ((target === 'all' || s === target) && classOf(gene) === c) ? 0 : 1), kind));
      }
    }
  }
  return out;
}
