/**
 * TIES / DARE / breadcrumbs / DELLA tensors cut into row chunks (statistics passes first, then each
 * chunk merged on its own) give the bytes of the same tensors merged whole, for every stored dtype,
 * thread count, chunk size and task order; the deltas are quantized so that many |δ| tie at the
 * rank thresholds, where the lower-index-first rule must hold across chunk boundaries.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MaterializeOptions } from '../../src/merge/materialize.js';
import { estimateWorkingSetBytes } from '../../src/merge/memory-budget.js';
import { rowSplitOf } from '../../src/merge/row-chunks.js';
import type { MergePlan } from '../../src/merge/task.js';
import { writeTinyLlama } from '../fixtures/tiny-llama.js';
import { mergeWeights, planYaml, shuffleTasks } from './merge-fixtures.js';
import { ensureMergeWorkerBuilt } from './merge-worker-build.js';

const DTYPES = [
  { stored: 'BF16', yaml: 'bfloat16' },
  { stored: 'F16', yaml: 'float16' },
  { stored: 'F32', yaml: 'float32' },
] as const;

const SHAPE = { layers: 1, hidden: 32, intermediate: 48, vocab: 80, heads: 4, kvHeads: 2 };

let root: string;
let outCount = 0;

beforeAll(async () => {
  await ensureMergeWorkerBuilt();
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'evomerge-two-pass-'));
  for (const { stored } of DTYPES) {
    const dir = path.join(root, stored);
    await writeTinyLlama(path.join(dir, 'base'), { ...SHAPE, dtype: stored, seed: 0 });
    for (let i = 1; i <= 3; i++) {
      await writeTinyLlama(path.join(dir, `ft${i}`), { ...SHAPE, dtype: stored, seed: 10 + i, perturbFrom: { seed: 0, scale: 0.2 }, deltaStep: 0.05 });
    }
  }
}, 180_000);

afterAll(() => {
  if (root !== undefined) fs.rmSync(root, { recursive: true, force: true });
});

function merge(plan: MergePlan, options: Omit<MaterializeOptions, 'outDir'>): Promise<{ weights: Buffer; reread: boolean }> {
  return mergeWeights(plan, path.join(root, `out-${outCount++}`), options);
}

function config(method: string, dtype: string, model: (i: number) => string, global = ''): string {
  const models = [1, 2, 3].map((i) => `  - model: ft${i}\n    parameters: {${model(i)}}`).join('\n');
  return `merge_method: ${method}\nbase_model: base\nmodels:\n${models}\n${global}dtype: ${dtype}\n`;
}

const weight = (i: number): string => `weight: ${[0.5, -0.3, 0.4][i - 1]}`;
const density = (i: number): string => `density: ${[0.3, 0.55, 0.8][i - 1]}`;

const CASES: readonly { name: string; yaml: (dtype: string) => string }[] = [
  { name: 'ties', yaml: (d) => config('ties', d, (i) => `${weight(i)}, ${density(i)}`) },
  { name: 'ties with rescale (rank passes, then L1)', yaml: (d) => config('ties', d, (i) => `${weight(i)}, ${density(i)}`, 'parameters: {rescale: true}\n') },
  { name: 'dare_ties', yaml: (d) => config('dare_ties', d, (i) => `${weight(i)}, ${density(i)}`) },
  { name: 'dare_linear', yaml: (d) => config('dare_linear', d, (i) => `${weight(i)}, ${density(i)}`) },
  { name: 'breadcrumbs', yaml: (d) => config('breadcrumbs', d, (i) => `${weight(i)}, ${density(i)}, gamma: 0.05`) },
  { name: 'breadcrumbs_ties', yaml: (d) => config('breadcrumbs_ties', d, (i) => `${weight(i)}, ${density(i)}, gamma: 0.1`) },
  { name: 'della', yaml: (d) => config('della', d, (i) => `${weight(i)}, ${density(i).replace('0.8', '0.7')}, epsilon: 0.1`) },
  { name: 'della_linear', yaml: (d) => config('della_linear', d, (i) => `${weight(i)}, ${density(i).replace('0.8', '0.7')}, epsilon: 0.2`) },
];

describe('two-pass row chunks (real workers)', () => {
  for (const { stored, yaml: dtype } of DTYPES) {
    // Every method in bf16; in f16 / f32 (where keys differ in their low bits: the 'rank-low'
    // pass) one of each sparsifier.
    const cases = stored === 'BF16' ? CASES : CASES.filter((c) => ['ties with rescale (rank passes, then L1)', 'dare_ties', 'breadcrumbs_ties', 'della'].includes(c.name));
    for (const c of cases) {
      it(`${c.name}, ${stored}: chunked bytes equal whole-tensor bytes for jobs 1 and 4 and two chunk sizes`, async () => {
        const plan = await planYaml(path.join(root, stored), c.yaml(dtype), 4242);
        // The test means something only if tensors really are cut: the embedding, lm_head and the
        // matrices are two-pass and larger than the chunks asked for.
        const cut = plan.tasks.filter((t) => rowSplitOf(t) === 'two-pass' && estimateWorkingSetBytes(t) > 1024);
        expect(cut.map((t) => t.output)).toContain('model.embed_tokens.weight');
        expect(cut.length).toBeGreaterThanOrEqual(5);
        const whole = await merge(plan, { jobs: 2, rowChunkBytes: 1 << 30 });
        expect(whole.reread).toBe(false);
        // A budget this small makes every such tensor larger than a thread's share: it is cut.
        const one = await merge(plan, { jobs: 1, rowChunkBytes: 1024, maxMemoryBytes: 4096 });
        expect(one.reread).toBe(true);
        expect(one.weights.equals(whole.weights)).toBe(true);
        const four = await merge(shuffleTasks(plan, 17), { jobs: 4, rowChunkBytes: 333, maxMemoryBytes: 4096 });
        expect(four.reread).toBe(true);
        expect(four.weights.equals(whole.weights)).toBe(true);
      }, 60_000);
    }
  }
});
