/**
 * tokenizer_source permuting an embedding / lm_head that an earlier stage of the same config
 * computes. mergekit's multimerge writes each stage to disk and loads it back as a model, so the
 * independent expectation is that route: the stage merged on its own, then the later document
 * merged with the written stage as a plain model path. The one-pass output must be byte-identical.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dryRunReport, formatDryRunTask } from '../../src/cli/merge.js';
import { materializePlan } from '../../src/merge/materialize.js';
import { estimateWorkingSetBytes, inputBytesOf } from '../../src/merge/memory-budget.js';
import { rowSplitOf, splitRows } from '../../src/merge/row-chunks.js';
import type { FileTensorInput, PermutedTensorInput, TensorTask } from '../../src/merge/task.js';
import { planYaml, readDir } from './merge-fixtures.js';
import { ensureMergeWorkerBuilt } from './merge-worker-build.js';
import { EMBED, HEAD, TokenizerFixtures } from './tokenizer-fixtures.js';

let fx: TokenizerFixtures;

beforeAll(async () => {
  await ensureMergeWorkerBuilt();
  fx = new TokenizerFixtures('evomerge-stageperm-');
  await fx.model('base', ['a', 'b', 'c'], { seed: 1 });
  await fx.model('ft1', ['b', 'a', 'd'], { seed: 2 });
  await fx.model('ft2', ['a', 'e', 'd', 'f'], { seed: 3 });
  await fx.model('bb', ['a', 'y'], { seed: 20, dtype: 'BF16' });
  await fx.model('x1', ['y', 'a', 'z'], { seed: 21, dtype: 'BF16' });
  await fx.model('x2', ['z', 'q'], { seed: 22, dtype: 'BF16' });
  await fx.model('x3', ['q', 'z'], { seed: 23, dtype: 'BF16' });
}, 180_000);

afterAll(() => {
  fx?.remove();
});

/** A document merging `models` (name: weight) linearly around `base`, into `tokenizer`'s vocabulary. */
function doc(base: string, tokenizer: string, models: Readonly<Record<string, number>>, extra = ''): string {
  const list = Object.entries(models).map(([m, w]) => `{model: ${m}, parameters: {weight: ${w}}}`).join(', ');
  return `merge_method: linear\nbase_model: ${base}\ntokenizer_source: ${tokenizer}\n${extra}models: [${list}]\n`;
}

/** The output's safetensors files and tokenizer.json, by name. */
function modelFiles(dir: string): Map<string, Buffer> {
  return new Map([...readDir(dir)].filter(([n]) => n.endsWith('.safetensors') || n === 'tokenizer.json'));
}

/**
 * Merges the documents in one pass and by multimerge's route: each document on its own, with the
 * earlier documents' names replaced by the folders they were written to. Returns both outputs
 * and the stages' folders of the second route.
 */
async function bothRoutes(docs: readonly { readonly name?: string; readonly text: (ref: (stage: string) => string) => string }[], jobs = 2): Promise<{ onePass: Awaited<ReturnType<TokenizerFixtures['merge']>>; stepwise: string; stages: ReadonlyMap<string, string> }> {
  const onePass = await fx.merge(docs.map((d) => `${d.name === undefined ? '' : `name: ${d.name}\n`}${d.text((s) => s)}`).join('---\n'), jobs);
  const written = new Map<string, string>();
  let last = '';
  for (const d of docs) {
    const { dir } = await fx.merge(d.text((s) => path.basename(written.get(s) ?? s)), jobs);
    if (d.name !== undefined) written.set(d.name, dir);
    last = dir;
  }
  return { onePass, stepwise: last, stages: written };
}

function embedTask(tasks: readonly TensorTask[], output = EMBED): TensorTask {
  const t = tasks.find((x) => x.output === output);
  if (t === undefined) throw new Error(`no task for ${output}`);
  return t;
}

function permuted(task: TensorTask, i: number): PermutedTensorInput {
  const input = task.inputs[i];
  if (input?.kind !== 'permuted') throw new Error(`${task.output} input ${i} is ${input?.kind ?? 'absent'}, not permuted`);
  return input;
}

/** Input `i`'s source rows as [source model, row] per output row (one pair per row: copies only). */
function copiedRows(input: PermutedTensorInput): [string, number][] {
  const out: [string, number][] = [];
  for (let r = 0; r + 1 < input.rowOffsets.length; r++) {
    const at = 2 * (input.rowOffsets[r] ?? 0);
    if ((input.rowOffsets[r + 1] ?? 0) - (input.rowOffsets[r] ?? 0) !== 1) throw new Error(`row ${r} is not one copied row`);
    out.push([input.sources[input.pairs[at] ?? -1]?.model ?? '?', input.pairs[at + 1] ?? -1]);
  }
  return out;
}

const s1 = { name: 's1', text: () => doc('base', 'base', { base: 0.6, ft1: 0.4 }) };

describe('tokenizer_source over a stage tensor', () => {
  it("re-indexes a stage's embedding and untied lm_head as multimerge's written stage would be", async () => {
    // s1 has base's vocabulary (<unk> <s> </s> a b c); ft1's is <unk> <s> </s> b a d.
    const final = { text: (ref: (s: string) => string) => doc(ref('s1'), 'ft1', { [ref('s1')]: 0.7, ft1: 0.3 }) };
    const { onePass, stepwise } = await bothRoutes([s1, final]);
    for (const out of [EMBED, HEAD]) {
      const task = embedTask(onePass.plan.tasks, out);
      const own = permuted(task, 0);
      expect(own.sources.map((s) => [s.model, s.kind])).toEqual([['s1', 'stage'], ['ft1', 'file']]);
      // b and a swap places, d (not in s1) comes from ft1's file: rows really are permuted.
      expect(copiedRows(own)).toEqual([['s1', 0], ['s1', 1], ['s1', 2], ['s1', 4], ['s1', 3], ['ft1', 5]]);
      expect(rowSplitOf(task)).toBe('whole');
    }
    expect(modelFiles(onePass.dir)).toEqual(modelFiles(stepwise));
    expect([...modelFiles(onePass.dir).keys()]).toContain('model.safetensors');
  });

  it('averages and borrows rows of a bf16 stage into a union, beside file sources', async () => {
    // The stage: bb's vocabulary (a y), x1's a and y rows re-indexed. The union adds z (in x1, x2,
    // x3, not the stage: the stage's z row is their bf16 mean) and q (x2, x3).
    const bf16 = 'dtype: bfloat16\n';
    const st = { name: 'sb', text: () => doc('bb', 'base', { bb: 0.5, x1: 0.5 }, bf16) };
    const final = { text: (ref: (s: string) => string) => doc(ref('sb'), 'union', { [ref('sb')]: 0.4, x1: 0.2, x2: 0.2, x3: 0.2 }, bf16) };
    const { onePass, stepwise } = await bothRoutes([st, final]);
    const own = permuted(embedTask(onePass.plan.tasks), 0);
    expect(own.dtype).toBe('BF16');
    expect(own.sources.map((s) => s.kind)).toEqual(['stage', 'file', 'file', 'file']);
    expect(own.stats).toMatchObject({ own: 5, averaged: 2 });
    expect(modelFiles(onePass.dir)).toEqual(modelFiles(stepwise));
  });

  it('writes the same bytes for --jobs 1 and --jobs 4 with tiny row chunks, and for --intermediate-dir', async () => {
    const yaml = `name: s1\n${s1.text()}---\n${doc('s1', 'union', { s1: 0.5, ft2: 0.5 })}`;
    const one = await fx.merge(yaml, 1);
    const four = await fx.merge(yaml, 4, 64);
    expect(readDir(four.dir)).toEqual(readDir(one.dir));
    const plan = await planYaml(fx.root, yaml);
    const out = path.join(fx.root, 'inter-out');
    await materializePlan(plan, { outDir: out, intermediateDir: path.join(fx.root, 'inter'), progress: 'none', jobs: 2, rowChunkBytes: 64 });
    expect(modelFiles(out)).toEqual(modelFiles(one.dir));
    // The stage's rows as written to its folder, loaded back as a model, give the same bytes again.
    const stepwise = await fx.merge(doc('inter/s1', 'union', { 'inter/s1': 0.5, ft2: 0.5 }));
    expect(modelFiles(stepwise.dir)).toEqual(modelFiles(one.dir));
  });

  it('permutes a stage of a stage', async () => {
    // s2 re-indexes s1 into ft1's vocabulary; the final document re-indexes s2 into the union with ft2.
    const s2 = { name: 's2', text: (ref: (s: string) => string) => doc(ref('s1'), 'ft1', { [ref('s1')]: 0.5, ft1: 0.5 }) };
    const final = { text: (ref: (s: string) => string) => doc(ref('s2'), 'union', { [ref('s2')]: 0.6, ft2: 0.4 }) };
    const { onePass, stepwise, stages } = await bothRoutes([s1, s2, final]);
    const outer = permuted(embedTask(onePass.plan.tasks), 0);
    const stage = outer.sources[0];
    expect(stage?.kind).toBe('stage');
    if (stage?.kind !== 'stage') return;
    expect(permuted(stage.task, 0).sources.map((s) => [s.model, s.kind])).toEqual([['s1', 'stage'], ['ft1', 'file']]);
    expect(modelFiles(onePass.dir)).toEqual(modelFiles(stepwise));
    // With --intermediate-dir, s2 reads s1 back from its folder and the final document reads s2's.
    const out = path.join(fx.root, 'nested-out');
    await materializePlan(onePass.plan, { outDir: out, intermediateDir: path.join(fx.root, 'nested-inter'), progress: 'none', jobs: 2 });
    expect(modelFiles(out)).toEqual(modelFiles(stepwise));
    expect(modelFiles(path.join(fx.root, 'nested-inter', 's2'))).toEqual(modelFiles(stages.get('s2') ?? ''));
  });

  it('counts the stage tensor once in the memory estimate and never cuts the task into row chunks', async () => {
    const plan = await planYaml(fx.root, `name: s1\n${s1.text()}---\n${doc('s1', 'union', { s1: 0.5, ft2: 0.5 })}`);
    const task = embedTask(plan.tasks);
    const stage = permuted(task, 0).sources[0];
    if (stage?.kind !== 'stage') throw new Error('expected a stage source');
    // The same task with the stage tensor stored in a file instead: it costs exactly the stage's estimate less.
    const stored: FileTensorInput = { kind: 'file', model: 's1', file: '/s1.safetensors', tensor: EMBED, dtype: stage.task.outDType, shape: stage.task.outShape, byteOffset: 0, byteLength: 4 * (stage.task.outShape[0] ?? 0) * (stage.task.outShape[1] ?? 0) };
    const fromFile = (t: TensorTask): TensorTask => ({ ...t, inputs: t.inputs.map((i) => (i.kind === 'permuted' ? { ...i, sources: i.sources.map((s) => (s.kind === 'stage' ? stored : s)) } : i)) });
    const stageCost = estimateWorkingSetBytes(stage.task);
    expect(stageCost).toBeGreaterThan(0);
    expect(estimateWorkingSetBytes(task) - estimateWorkingSetBytes(fromFile(task))).toBe(stageCost);
    // A third permuted input gathering from the same stage tensor does not count it a second time.
    const again: TensorTask = { ...task, inputs: [...task.inputs, permuted(task, 0)], modelParams: [...task.modelParams, task.modelParams[0] ?? {}] };
    expect(estimateWorkingSetBytes(again) - estimateWorkingSetBytes(fromFile(again))).toBe(stageCost);
    expect(inputBytesOf(task) - inputBytesOf(fromFile(task))).toBe(inputBytesOf(stage.task));
    expect(rowSplitOf(fromFile(task))).toBe('elementwise');
    expect(rowSplitOf(task)).toBe('whole');
    expect(splitRows(task, 1)).toHaveLength(1);
  });

  it('describes stage sources in --dry-run', async () => {
    const plan = await planYaml(fx.root, `name: s1\n${s1.text()}---\n${doc('s1', 'ft1', { s1: 0.7, ft1: 0.3 })}`);
    const report = dryRunReport(plan);
    const embed = report.tasks.find((t) => t.output === EMBED);
    expect(embed?.inputs.map((i) => [i.kind, i.fromStage])).toEqual([['permuted', true], ['permuted', undefined]]);
    expect(embed && formatDryRunTask(embed)).toBe(`${EMBED} [6×8] F32 linear normalize=true ← s1:${EMBED} (weight=0.7) [permuted: 5 own, 1 borrowed, 0 averaged, 0 zero], ft1 (weight=0.3) [permuted: 6 own, 0 borrowed, 0 averaged, 0 zero]`);
  });
});
