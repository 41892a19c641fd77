import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { parseMergeConfig } from '../../src/merge/config.js';
import { resolvePlan } from '../../src/merge/plan.js';
import type { TensorTask } from '../../src/merge/task.js';
import { readSafetensorsHeader } from '../../src/tensors/safetensors.js';
import { describeWithShared } from '../shared-dir.js';

/**
 * Data-driven parity of parameter resolution: every golden case's config is parsed and planned
 * against the golden inputs, and each task's method, dtype, base and resolved parameters are
 * compared with the params.json mergekit wrote (values compared exactly: our gradient arithmetic
 * performs the same double operations as mergekit's evaluate_setting).
 */

interface GoldenCase {
  readonly name: string;
  readonly dir: string;
  readonly config: string;
  readonly expected: string;
  readonly params: string;
}

type GoldenEntry = Record<string, unknown> & {
  task: string;
  out_dtype: string;
  tensor_parameters?: Record<string, Record<string, number | boolean | null>>;
  base_model?: string | null;
};

const TASK_METHOD: Readonly<Record<string, string>> = {
  LinearMergeTask: 'linear',
  SlerpTask: 'slerp',
  NuSlerpTask: 'nuslerp',
  ModelStockMergeTask: 'model_stock',
  PassthroughMergeTask: 'passthrough',
};

/** params.json's spelling of a global parameter → ours (the YAML key), with its value mapped. */
function globalParam(key: string, value: unknown): [string, number | boolean] | undefined {
  switch (key) {
    case 'lambda_':
      return ['lambda', value as number];
    case 'rescale_norm':
      return ['rescale', value !== null];
    case 'flatten':
      return ['nuslerp_flatten', value as boolean];
    case 'row_wise':
      return ['nuslerp_row_wise', value as boolean];
    case 'exec_index':
    case 'out_dtype':
    case 'task':
    case 'method':
    case 'base_model':
    case 'tensor_parameters':
      return undefined;
    default:
      return [key, value as number | boolean];
  }
}

const DTYPE: Readonly<Record<string, string>> = { float32: 'F32', bfloat16: 'BF16', float16: 'F16' };

function expectTaskMatches(task: TensorTask, golden: GoldenEntry): void {
  const where = task.output;
  expect(task.method, where).toBe(typeof golden['method'] === 'string' ? golden['method'] : TASK_METHOD[golden.task]);
  expect(task.outDType, where).toBe(DTYPE[golden.out_dtype]);
  const globals: Record<string, number | boolean> = {};
  for (const [k, v] of Object.entries(golden)) {
    const mapped = globalParam(k, v);
    if (mapped) globals[mapped[0]] = mapped[1];
  }
  expect({ ...task.params }, where).toEqual(globals);
  if ('base_model' in golden) {
    const base = task.baseIndex === null ? null : (task.inputs[task.baseIndex]?.model ?? null);
    expect(base, where).toBe(golden.base_model ?? null);
  }
  if (golden.tensor_parameters) {
    const ours: Record<string, Record<string, number | boolean>> = {};
    task.inputs.forEach((input, i) => {
      ours[input.model] = { ...task.modelParams[i] };
    });
    const theirs: Record<string, Record<string, number | boolean>> = {};
    for (const [model, params] of Object.entries(golden.tensor_parameters)) {
      // mergekit's None (a base model's weight, passthrough's unset scale) is "not set" here.
      theirs[model] = Object.fromEntries(Object.entries(params).filter(([, v]) => v !== null)) as Record<string, number | boolean>;
    }
    expect(ours, where).toEqual(theirs);
  }
}

async function expectPlanMatches(tasks: readonly TensorTask[], paramsFile: string, expectedFile: string | undefined): Promise<void> {
  const golden = JSON.parse(readFileSync(paramsFile, 'utf8')) as Record<string, GoldenEntry>;
  expect(tasks.map((t) => t.output).sort()).toEqual(Object.keys(golden).sort());
  for (const task of tasks) {
    const g = golden[task.output];
    if (g) expectTaskMatches(task, g);
  }
  if (expectedFile) {
    const header = await readSafetensorsHeader(expectedFile);
    for (const task of tasks) expect(task.outShape, task.output).toEqual(header.tensors.get(task.output)?.shape);
  }
}

describeWithShared('resolvePlan on every mergekit golden case', (shared) => {
  const goldenDir = path.join(shared, 'mergekit-golden');
  const cases = (JSON.parse(readFileSync(path.join(goldenDir, 'cases.json'), 'utf8')) as { cases: GoldenCase[] }).cases;
  it('has cases to check', () => {
    expect(cases.length).toBeGreaterThanOrEqual(14);
  });
  for (const c of cases) {
    it(c.name, async () => {
      const dir = goldenDir;
      const configFile = path.join(dir, c.config);
      const parsed = parseMergeConfig(readFileSync(configFile, 'utf8'), configFile);
      expect(parsed.warnings).toEqual([]);
      const plan = await resolvePlan(parsed.config, { configFile, seed: 1, configText: parsed.text });
      await expectPlanMatches(plan.tasks, path.join(dir, c.params), path.join(dir, c.expected));
      const layers = plan.outputConfig['num_hidden_layers'];
      expect(layers).toBe(c.name === 'passthrough_frankenmerge' ? 6 : 4);
      if (c.name === 'multi_stage') {
        expect(plan.stages.map((s) => s.name).sort()).toEqual(['stage_slerp', 'stage_ties']);
        for (const stage of plan.stages) {
          await expectPlanMatches(stage.tasks, path.join(dir, c.dir, 'stages', `${stage.name}.params.json`), path.join(dir, c.dir, 'stages', `${stage.name}.safetensors`));
          expect(stage.outputConfig['num_hidden_layers']).toBe(2);
        }
        // The final tasks read the stages in memory, not from files.
        const embed = plan.tasks.find((t) => t.output === 'model.embed_tokens.weight');
        expect(embed?.inputs[0]?.kind).toBe('stage');
        const layer3 = plan.tasks.find((t) => t.output === 'model.layers.3.mlp.up_proj.weight');
        const input = layer3?.inputs[0];
        expect(input?.kind === 'stage' ? input.task.output : undefined).toBe('model.layers.1.mlp.up_proj.weight');
        expect(input?.kind === 'stage' ? input.task.method : undefined).toBe('ties');
      }
    });
  }
});
