import { cp, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { convertLlama2cToHf } from '../../src/convert/llama2c.js';
import { runSearch } from '../../src/search/runner.js';
import type { SearchEvent } from '../../src/search/run-events.js';
import { openSqliteRunStore } from '../../src/store/sqlite-store.js';
import { openCheckpoint } from '../../src/tensors/checkpoint.js';
import { decodeToF32, encodeFromF32 } from '../../src/tensors/dtype.js';
import { readTensorBytesSync } from '../../src/tensors/safetensors.js';
import { writeSafetensors } from '../../src/tensors/safetensors-writer.js';
import { openSync, closeSync } from 'node:fs';
import { ensureMergeWorkerBuilt } from '../merge/merge-worker-build.js';
import { buildDist } from '../model/build-dist.js';
import { describeWithShared } from '../shared-dir.js';

/**
 * A search scored by a built-in evaluator on a real inference engine: stories260K (llama2.c →
 * HF) and two perturbed copies are merged, each candidate's GGUF is written during its build,
 * llama.cpp loads it, and the `generic` evaluator scores a two-item task of this model's own
 * greedy story. Checked: the plumbing (registry → backend → store), not the scores.
 */

let dir = '';

/** A copy of `src` with every weight moved by a small deterministic amount (a stand-in fine-tune). */
async function perturbed(src: string, out: string, seed: number): Promise<void> {
  await cp(src, out, { recursive: true });
  const ck = await openCheckpoint(src);
  const tensors = [...ck.tensors.values()].map((t) => {
    const fd = openSync(t.file, 'r');
    let values: Float32Array;
    try {
      values = decodeToF32(t.dtype, readTensorBytesSync(fd, t.byteOffset, t.byteLength, undefined, t.file));
    } finally {
      closeSync(fd);
    }
    for (let i = 0; i < values.length; i++) values[i] = (values[i] ?? 0) * (1 + 0.02 * Math.sin(seed * 7919 + i));
    return { name: t.name, dtype: t.dtype, shape: t.shape, data: encodeFromF32(t.dtype, values) };
  });
  await writeSafetensors(path.join(out, 'model.safetensors'), tensors, { format: 'pt' });
}

describeWithShared('a search scored by llama.cpp through a built-in evaluator', (shared) => {
  beforeAll(async () => {
    await ensureMergeWorkerBuilt();
    await buildDist();
    dir = await mkdtemp(path.join(os.tmpdir(), 'evomerge-runner-llamacpp-'));
    const src = path.join(shared, 'models', 'stories260K');
    await convertLlama2cToHf(path.join(src, 'stories260K.bin'), path.join(src, 'tok512.bin'), path.join(dir, 'base'));
    await perturbed(path.join(dir, 'base'), path.join(dir, 'ft1'), 1);
    await perturbed(path.join(dir, 'base'), path.join(dir, 'ft2'), 2);
    const task = path.join(dir, 'story-task');
    await mkdir(task);
    const items = [
      { id: 'name', prompt: 'Once upon a time, there was a little girl named', answer: 'Lily' },
      { id: 'place', prompt: 'Once upon a time, there was a little girl named Lily. She loved to play outside in the', answer: 'park' },
    ];
    await writeFile(path.join(task, 'task.yaml'), 'type: generate\nstop: [".", ","]\nmax_tokens: 8\nnormalize: [trim]\n');
    await writeFile(path.join(task, 'search.jsonl'), `${items.map((i) => JSON.stringify(i)).join('\n')}\n`);
    await writeFile(path.join(task, 'test.jsonl'), `${JSON.stringify(items[0])}\n`);
    await writeFile(
      path.join(dir, 'space.yaml'),
      [
        'name: stories',
        'base_model: ./base',
        'models: [./ft1, ./ft2]',
        'genome: {methods: [task_arithmetic], layer_granularity: 5}',
        'objectives:',
        '  - {name: story, evaluator: generic, options: {task: ./story-task}}',
        'optimizer: {kind: ga, population: 3, generations: 2, elitism: 1, seed: 2}',
        'dtype: float32',
        '',
      ].join('\n'),
    );
  }, 240_000);

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('writes each candidate\'s GGUF during its build and records item results with intervals', async () => {
    const events: SearchEvent[] = [];
    const runsDir = path.join(dir, 'runs');
    const done = await runSearch({ spaceFile: path.join(dir, 'space.yaml'), runsDir, jobs: 1, onEvent: (e) => events.push(e) });
    expect(done.status).toBe('finished');
    expect(done.candidates).toBe(5);
    expect(done.failures).toBe(0);
    const store = openSqliteRunStore(path.join(runsDir, 'stories', 'run.db'), { readonly: true });
    try {
      for (const r of await store.results()) {
        const s = r.scores.story;
        expect(s?.n).toBe(2);
        expect(s?.ciLow).not.toBeNull();
        expect((s?.ciLow ?? 2) <= (s?.value ?? -1) && (s?.value ?? 2) <= (s?.ciHigh ?? -1)).toBe(true);
        expect((await store.itemResults(r.candidateId)).map((i) => i.itemId).sort()).toEqual(['name', 'place']);
      }
    } finally {
      await store.close();
    }
    expect(await readdir(path.join(runsDir, 'stories', 'candidates'))).toEqual([]);
    const t = done.timing;
    console.log(
      `[stories260K search] ${t.candidates} candidates: build+gguf ${(t.buildSeconds / t.candidates).toFixed(3)} s, ` +
        `load+evaluate ${(t.evaluateSeconds / t.candidates).toFixed(3)} s per candidate; evaluator idle ${(100 * t.evaluatorIdleFraction).toFixed(1)}%, overlap ×${t.overlapSpeedup.toFixed(2)}`,
    );
  });
});
