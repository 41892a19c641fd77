import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseMergeConfig, stringifyMergeConfig } from '../../src/merge/config.js';
import { encodeConfig } from '../../src/search/genome-encode.js';
import { activeCategoricalGenes, activeContinuousGenes, decodeGenome, type GenomeSchema } from '../../src/search/genome.js';
import type { Genome } from '../../src/search/genome-vector.js';
import { RICH, schemaOf, SMOOTH } from './space-fixtures.js';

/** genome → config → YAML → config → genome → config is the identity on configs (semantics of style.md §3). */

function genomeArb(schema: GenomeSchema): fc.Arbitrary<Genome> {
  const x = fc.oneof(fc.double({ min: 0, max: 1, noNaN: true }), fc.constantFrom(0, 1, 0.5));
  return fc.record({
    continuous: fc.array(x, { minLength: schema.shape.continuous, maxLength: schema.shape.continuous }),
    categorical: fc.tuple(...schema.shape.categorical.map((k) => fc.integer({ min: 0, max: k - 1 }))),
  });
}

const CASES: [string, string, number][] = [
  ['rich (classes, embeddings, 4 methods incl. slerp/linear/della)', RICH, 7],
  ['smooth gradients', SMOOTH, 7],
  ['smooth with classes, embeddings, slerp and della', RICH.replace('  embeddings: true\n', '  embeddings: true\n  smooth: true\n'), 8],
  ['one group', RICH, 3],
];

describe.each(CASES)('round trip: %s', (_name, yaml, layers) => {
  const { schema } = schemaOf(yaml, layers);

  it('decode ∘ encode ∘ parse ∘ stringify ∘ decode = decode', () => {
    fc.assert(
      fc.property(genomeArb(schema), (g) => {
        const config = decodeGenome(schema, g);
        const parsed = parseMergeConfig(stringifyMergeConfig(config)).config;
        const back = encodeConfig(schema, parsed);
        expect(decodeGenome(schema, back)).toEqual(config);
      }),
      { numRuns: 80 },
    );
  });

  it('encode recovers every active gene (up to the 6-decimal rounding of values)', () => {
    fc.assert(
      fc.property(genomeArb(schema), (g) => {
        const back = encodeConfig(schema, decodeGenome(schema, g));
        const activeC = activeContinuousGenes(schema, g);
        const activeK = activeCategoricalGenes(schema, g);
        schema.categorical.forEach((gene, i) => {
          if (activeK[i]) expect(back.categorical[i]).toBe(g.categorical[i]);
        });
        schema.continuous.forEach((gene, i) => {
          if (!activeC[i]) return;
          // A repaired (clamped) gene comes back as its repaired value; compare in value space.
          const span = gene.max - gene.min;
          const v = gene.min + (g.continuous[i] ?? 0) * span;
          const w = gene.min + (back.continuous[i] ?? 0) * span;
          const clamped = gene.param === 'density' && (v < 0.102 || v > 0.898);
          if (!clamped) expect(Math.abs(v - w)).toBeLessThanOrEqual(5e-7 + 1e-12);
        });
      }),
      { numRuns: 80 },
    );
  });
});
