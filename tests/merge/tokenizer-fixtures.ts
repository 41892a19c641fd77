/**
 * Micro models with their own word-level tokenizer.json, for the tokenizer_source tests: each model
 * has the three special tokens, then its words at ids 3.., and remembers its tensors' values so
 * that a test can name the source row an output row must equal.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { materializePlan } from '../../src/merge/materialize.js';
import { PlanError } from '../../src/merge/plan-error.js';
import type { MergePlan } from '../../src/merge/task.js';
import { decodeToF32 } from '../../src/tensors/dtype.js';
import { writeTinyLlama, type TinyLlamaInfo } from '../fixtures/tiny-llama.js';
import { planYaml, readTensors } from './merge-fixtures.js';

export const HIDDEN = 8;
export const SPECIAL = ['<unk>', '<s>', '</s>'];
export const EMBED = 'model.embed_tokens.weight';
export const HEAD = 'lm_head.weight';
export const ZERO: readonly number[] = new Array<number>(HIDDEN).fill(0);

/**
 * Writes a tokenizer.json whose vocabulary is `words` at ids 3.. after the three special tokens:
 * a WordLevel model, or with `merges` a BPE one.
 */
function writeVocab(dir: string, words: readonly string[], extraAdded: readonly { content: string; id: number }[] = [], merges?: readonly (string | readonly string[])[]): void {
  const vocab: Record<string, number> = {};
  [...SPECIAL, ...words].forEach((w, i) => (vocab[w] = i));
  const added = [...SPECIAL.map((content, id) => ({ id, content })), ...extraAdded].map((a) => ({ ...a, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
  const model = merges === undefined ? { type: 'WordLevel', vocab, unk_token: '<unk>' } : { type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab, merges };
  const tok = { version: '1.0', added_tokens: added, normalizer: null, pre_tokenizer: { type: 'Whitespace' }, model };
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tok));
}

export interface VocabModelOptions {
  readonly tied?: boolean;
  readonly seed: number;
  readonly extraAdded?: { content: string; id: number }[];
  readonly rows?: number;
  readonly dtype?: 'BF16';
  /** A BPE tokenizer with these merges (else WordLevel). */
  readonly merges?: readonly (string | readonly string[])[];
}

/** A temp directory of vocabulary models and the merges written into it. */
export class TokenizerFixtures {
  readonly root: string;
  readonly #infos = new Map<string, TinyLlamaInfo>();
  #outCount = 0;

  constructor(prefix: string) {
    this.root = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  }

  async model(name: string, words: readonly string[], opts: VocabModelOptions): Promise<void> {
    const dir = path.join(this.root, name);
    const vocab = opts.rows ?? SPECIAL.length + words.length;
    const info = await writeTinyLlama(dir, { layers: 1, hidden: HIDDEN, intermediate: 16, heads: 2, vocab, seed: opts.seed, tied: opts.tied ?? false, dtype: opts.dtype ?? 'F32' });
    writeVocab(dir, words, opts.extraAdded, opts.merges);
    this.#infos.set(name, info);
  }

  /** Row `r` of a model's stored tensor (lm_head of a tied model is its embedding). */
  row(name: string, tensor: string, r: number): number[] {
    const info = this.#infos.get(name);
    const values = info?.values.get(tensor) ?? info?.values.get(EMBED);
    if (!values) throw new Error(`no ${tensor} in ${name}`);
    return [...values.subarray(r * HIDDEN, (r + 1) * HIDDEN)];
  }

  async merge(yaml: string, jobs = 2, rowChunkBytes?: number, maxMemoryBytes?: number): Promise<{ dir: string; plan: MergePlan; warnings: string[]; bytesRead: number }> {
    const warnings: string[] = [];
    const plan = await planYaml(this.root, yaml, 7, warnings);
    const dir = path.join(this.root, `out-${this.#outCount++}`);
    const summary = await materializePlan(plan, {
      outDir: dir,
      progress: 'none',
      jobs,
      ...(rowChunkBytes === undefined ? {} : { rowChunkBytes }),
      ...(maxMemoryBytes === undefined ? {} : { maxMemoryBytes }),
    });
    return { dir, plan, warnings, bytesRead: summary.bytesRead };
  }

  /** The PlanError that planning `yaml` throws; anything else fails the test. */
  async planError(yaml: string): Promise<PlanError> {
    try {
      await planYaml(this.root, yaml);
    } catch (err) {
      if (err instanceof PlanError) return err;
      throw err;
    }
    throw new Error('expected a PlanError');
  }

  remove(): void {
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}

/** The output tensor's rows as numbers. */
export function rowsOf(dir: string, tensor: string): number[][] {
  const t = readTensors(dir).get(tensor);
  if (!t) throw new Error(`output has no ${tensor}`);
  const v = decodeToF32(t.dtype as 'F32' | 'BF16', new Uint8Array(t.bytes));
  const n = t.shape[0] ?? 0;
  return Array.from({ length: n }, (_x, r) => [...v.subarray(r * HIDDEN, (r + 1) * HIDDEN)]);
}

/** mergekit's in-dtype mean of a token's rows in f32: round after every add and after the division. */
export function mean(...rows: number[][]): number[] {
  return (rows[0] ?? []).map((_v, j) => Math.fround(rows.reduce((acc, r) => Math.fround(acc + (r[j] ?? 0)), 0) / rows.length));
}
