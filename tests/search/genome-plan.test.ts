import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseMergeConfig, stringifyMergeConfig } from '../../src/merge/config.js';
import { resolvePlan } from '../../src/merge/plan.js';
import type { TensorTask } from '../../src/merge/task.js';
import { decodeGenome, groupMethods, type GeneDepth, type GenomeSchema } from '../../src/search/genome.js';
import type { Genome } from '../../src/search/genome-vector.js';
import { writeTinyLlama } from '../fixtures/tiny-llama.js';
import { randomGenomes, RICH, schemaOf, SMOOTH, withMethods, constantGenome } from './space-fixtures.js';

/**
 * Decoded genomes go through the real mergekit config parser and planner on tiny checkpoints, and
 * every output tensor's resolved parameters are compared with values computed here from the
 * genes directly: tensor → layer group → class → gene → value (semantics §0.1, §0.2, §2).
 */

const LAYERS = 7;
let dir = '';

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'evomerge-genome-plan-'));
  await writeTinyLlama(path.join(dir, 'base'), { layers: LAYERS, seed: 0 });
  await writeTinyLlama(path.join(dir, 'ft1'), { layers: LAYERS, perturbFrom: { seed: 0, scale: 0.05 }, seed: 1 });
  await writeTinyLlama(path.join(dir, 'ft2'), { layers: LAYERS, perturbFrom: { seed: 0, scale: 0.05 }, seed: 2 });
}, 60_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

function round6(v: number): number {
  return Math.round(v * 1e6) / 1e6;
}

/** The value of one gene in parameter units (with DELLA's window when the method needs it). */
function gene(schema: GenomeSchema, g: Genome, method: string, param: string, depth: GeneDepth, cls: string, source: number | 'base' | null): number {
  const spec = schema.continuous.find((c) => c.param === param && c.depth === depth && c.tensorClass === cls && c.source === source);
  if (!spec) throw new Error(`no gene ${param} ${depth} ${cls} ${source}`);
  const v = round6(spec.min + (g.continuous[spec.index] ?? 0) * (spec.max - spec.min));
  if (param === 'density' && method.startsWith('della')) return Math.min(0.899, Math.max(0.101, v));
  return v;
}

/** Expected value of `param` for a tensor: constant per group, or interpolated between knots. */
function expected(schema: GenomeSchema, g: Genome, method: string, param: string, tensor: string, source: number | 'base' | null): number {
  const sg = schema.space.genome;
  const m = /model\.layers\.(\d+)\./.exec(tensor);
  const last = schema.groups.length - 1;
  if (!m) {
    const pre = tensor.includes('embed_tokens');
    if (sg.embeddings) return gene(schema, g, method, param, pre ? 'pre' : 'post', '*', source);
    // No embedding genes: mergekit evaluates the first / last slice at t = 0 (semantics §0.1).
    const grp = pre ? 0 : last;
    return gene(schema, g, method, param, grp, '*', source);
  }
  const layer = Number(m[1]);
  const grp = schema.groups.find((x) => layer >= x.start && layer < x.end);
  if (!grp) throw new Error(`layer ${layer} in no group`);
  const cls = sg.filters.find((f) => tensor.includes(f)) ?? '*';
  if (!sg.smooth) return gene(schema, g, method, param, grp.index, cls, source);
  const n = grp.end - grp.start;
  const t = n > 1 ? (layer - grp.start) / (n - 1) : 1;
  const a = gene(schema, g, method, param, grp.index, cls, source);
  const b = gene(schema, g, method, param, grp.index + 1, cls, source);
  return t === 1 ? b : (1 - t) * a + t * b;
}

function groupOf(schema: GenomeSchema, tensor: string): number {
  const m = /model\.layers\.(\d+)\./.exec(tensor);
  if (!m) return tensor.includes('embed_tokens') ? 0 : schema.groups.length - 1;
  return Math.floor(Number(m[1]) / schema.space.genome.layerGranularity);
}

async function checkPlan(schema: GenomeSchema, g: Genome): Promise<number> {
  const configFile = path.join(dir, 'decoded.yml');
  const text = stringifyMergeConfig(decodeGenome(schema, g));
  const plan = await resolvePlan(parseMergeConfig(text, configFile).config, { configFile, seed: 1 });
  const methods = groupMethods(schema, g);
  const models = schema.space.models;
  let checked = 0;
  expect(plan.tasks.length).toBe(3 + 9 * LAYERS);
  for (const outer of plan.tasks) {
    const stage = outer.inputs[0];
    const inner: TensorTask = outer.method === 'passthrough' && stage?.kind === 'stage' ? stage.task : outer;
    const method = methods[groupOf(schema, outer.output)] ?? '';
    expect(inner.method, outer.output).toBe(method);
    const want = (param: string, source: number | 'base' | null): number => expected(schema, g, method, param, outer.output, source);
    if (method === 'slerp') {
      expect(inner.params.t, outer.output).toBeCloseTo(want('t', null), 12);
      checked++;
      continue;
    }
    inner.inputs.forEach((input, i) => {
      const p = inner.modelParams[i] ?? {};
      const src = input.model === 'base' ? 'base' : models.indexOf(input.model);
      if (method === 'linear' || src !== 'base') {
        expect(p.weight, `${outer.output} ${input.model}`).toBeCloseTo(want('weight', src), 12);
        checked++;
      }
      if ((method === 'ties' || method.startsWith('della') || method === 'dare_ties') && src !== 'base') {
        expect(p.density, `${outer.output} ${input.model}`).toBeCloseTo(want('density', src), 12);
        checked++;
      }
      if (method === 'della' && src !== 'base') expect(p.epsilon).toBe(0.1);
    });
  }
  return checked;
}

describe('decoded genomes resolve to the expected parameters of every tensor', () => {
  const rich = RICH;
  it('one method over all groups (one document)', async () => {
    const { schema } = schemaOf(rich, LAYERS);
    for (const m of ['ties', 'della', 'linear', 'slerp']) {
      const g = withMethods(schema, randomGenomes(schema, 1, 11)[0] ?? constantGenome(schema, 0.5), [m, m, m]);
      expect(decodeGenome(schema, g).documents.length).toBe(1);
      expect(await checkPlan(schema, g)).toBeGreaterThan(0);
    }
  });

  it('a different method per group (stages + passthrough), random genomes', async () => {
    const { schema } = schemaOf(rich, LAYERS);
    for (const g of randomGenomes(schema, 6, 5)) {
      const mixed = withMethods(schema, g, ['slerp', 'ties', 'linear']);
      expect(decodeGenome(schema, mixed).documents.length).toBe(4);
      await checkPlan(schema, mixed);
      await checkPlan(schema, g);
    }
  });

  it('smooth gradients interpolate between knots inside each slice', async () => {
    const { schema } = schemaOf(SMOOTH, LAYERS);
    for (const g of randomGenomes(schema, 3, 9)) {
      await checkPlan(schema, withMethods(schema, g, ['dare_ties', 'dare_ties', 'dare_ties']));
      await checkPlan(schema, withMethods(schema, g, ['dare_ties', 'task_arithmetic', 'dare_ties']));
    }
  });

  it('smooth with classes and embeddings', async () => {
    const { schema } = schemaOf(RICH.replace('  embeddings: true\n', '  embeddings: true\n  smooth: true\n'), LAYERS);
    for (const g of randomGenomes(schema, 3, 21)) await checkPlan(schema, g);
  });
});
