import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { computeTask } from '../../src/merge/compute.js';
import { SafetensorsReader } from '../../src/tensors/safetensors.js';
import { describeWithShared } from '../shared-dir.js';
import { countMismatches, loadGoldenCase, toF32 } from './golden-arith-cases.js';

interface CaseEntry {
  readonly name: string;
  readonly tolerance: { readonly atol: number; readonly rtol: number };
  readonly masks?: string;
}

/** The cases computeTask covers without the planner (multi-stage / passthrough need plan.ts). */
const ARITH_CASES = [
  'linear',
  'linear_no_normalize',
  'linear_bf16',
  'slerp_gradient_filters',
  'task_arithmetic',
  'ties',
  'ties_bf16',
  'breadcrumbs_ties',
  'model_stock',
  'nuslerp',
  'nuslerp_base',
  'ties_per_layer_slices',
];

describeWithShared('computeTask reproduces mergekit-golden outputs', (shared) => {
  const golden = path.join(shared, 'mergekit-golden');
  const entries = (JSON.parse(readFileSync(path.join(golden, 'cases.json'), 'utf8')) as { cases: CaseEntry[] }).cases;
  for (const kernels of ['native', 'ts'] as const) {
    for (const name of ARITH_CASES) {
      it(`${name} (${kernels} kernels)`, async () => {
        const entry = entries.find((c) => c.name === name);
        expect(entry, `cases.json lists ${name}`).toBeDefined();
        if (entry === undefined) return;
        const tensors = await loadGoldenCase(golden, name);
        expect(tensors.length).toBe(39);
        const masks = entry.masks === undefined ? undefined : await SafetensorsReader.open(path.join(golden, entry.masks));
        try {
          let bad = 0;
          const failing: string[] = [];
          for (const c of tensors) {
            const maskOf = (i: number): Uint8Array | undefined => {
              const key = `${c.modelNames[i] ?? ''}/${c.task.output}`;
              return masks?.has(key) ? masks.readTensorSync(key) : undefined;
            };
            const out = computeTask(c.task, c.inputs, { kernels, ...(masks ? { maskOverride: maskOf } : {}) });
            expect(out.dtype).toBe(c.expected.dtype);
            expect(out.shape).toEqual(c.expected.shape);
            const n = countMismatches(toF32(out), toF32(c.expected), entry.tolerance.atol, entry.tolerance.rtol);
            if (n > 0) failing.push(`${c.task.output}: ${n}`);
            bad += n;
          }
          expect(failing, 'tensors with elements outside tolerance').toEqual([]);
          expect(bad).toBe(0);
        } finally {
          await masks?.close();
        }
      });
    }
  }
});
