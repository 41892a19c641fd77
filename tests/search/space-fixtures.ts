import { buildGenomeSchema, type GenomeSchema } from '../../src/search/genome.js';
import type { Genome } from '../../src/search/genome-vector.js';
import { RngStreams } from '../../src/search/rng.js';
import { parseSpace, type SearchSpace } from '../../src/search/space.js';
import { randomGenome } from '../../src/search/genome-vector.js';

/** Search spaces and genomes shared by the genome tests. */

/** Every gene kind: several methods incl. slerp and linear, classes, embeddings. */
export const RICH = `name: rich
base_model: base
models: [ft1, ft2]
genome:
  methods: [ties, slerp, linear, della]
  layer_granularity: 3
  filters: [self_attn, mlp]
  embeddings: true
  weight: {min: 0.1, max: 1.5}
  density: {min: 0.1, max: 1}
  parameters:
    della: {epsilon: 0.1}
objectives: [{name: a, evaluator: x}]
dtype: float32
`;

/** Smooth gradients over depth, one method, no classes. */
export const SMOOTH = `name: smooth
base_model: base
models: [ft1, ft2]
genome:
  methods: [dare_ties, task_arithmetic]
  layer_granularity: 3
  smooth: true
  weight: {min: 0, max: 1}
  density: {min: 0.2, max: 0.9}
objectives: [{name: a, evaluator: x}]
dtype: float32
`;

export function schemaOf(yaml: string, layers: number): { space: SearchSpace; schema: GenomeSchema } {
  const space = parseSpace(yaml);
  return { space, schema: buildGenomeSchema(space, layers) };
}

export function randomGenomes(schema: GenomeSchema, n: number, seed: number): Genome[] {
  const rng = new RngStreams(seed).stream('g');
  return Array.from({ length: n }, () => randomGenome(schema.shape, rng));
}

/** A genome with every continuous gene at x and every categorical gene at c (clipped to its range). */
export function constantGenome(schema: GenomeSchema, x: number, c = 0): Genome {
  return { continuous: schema.continuous.map(() => x), categorical: schema.shape.categorical.map((k) => Math.min(c, k - 1)) };
}

/** Sets a group's method gene. */
export function withMethods(schema: GenomeSchema, g: Genome, methods: readonly string[]): Genome {
  const categorical = [...g.categorical];
  methods.forEach((m, gi) => {
    const idx = schema.methodGene[gi];
    if (idx !== null && idx !== undefined) categorical[idx] = schema.space.genome.methods.indexOf(m as never);
  });
  return { continuous: g.continuous, categorical };
}
