/**
 * Vocabularies and the embedding permutation of `tokenizer_source` (semantics §1.5): which rows
 * of which models make up each row of a model's embedding (or lm_head) once it is re-indexed into
 * the output vocabulary. Pure functions of token maps; reading tokenizer.json is the one I/O edge.
 */
import { readFileSync } from 'node:fs';
import { EvoError } from '../errors.js';

/** Token string → id, from tokenizer.json's model.vocab plus its added_tokens. */
export type Vocabulary = ReadonlyMap<string, number>;

/**
 * Where one row of a permuted tensor comes from: `[sourceIndex, row]` pairs into the task's list of
 * source tensors. One pair copies that row, several are averaged, none means a zero row.
 */
export type RowSource = readonly (readonly [number, number])[];

/**
 * The source index of a padded row's single pair (`[PAD_MEAN, 0]`): the mean of the permuted
 * tensor's real rows (`tokenizer.pad_to_multiple_of`), not a row of any source.
 */
export const PAD_MEAN = -1;

/** Rows a model contributes, in the permuted tensor's row order. */
export interface PermutationStats {
  /** Rows the model has itself. */
  readonly own: number;
  /** Rows it lacks that are taken from a single other model (or the base). */
  readonly borrowed: number;
  /** Rows it lacks that are the mean over the models having the token. */
  readonly averaged: number;
  /** Rows no model has: zeros. */
  readonly zero: number;
  /** Rows a `tokenizer.tokens` entry sets (the model lacks the token, or the entry has force). */
  readonly overridden: number;
  /** Rows added by `pad_to_multiple_of`: the mean of the model's real rows. */
  readonly padded: number;
}

/** A `tokenizer.tokens` entry resolved against a task's models: the row source every model lacking the token (all, with force) gets. */
export interface RowOverride {
  readonly source: RowSource;
  readonly force: boolean;
}

/** A parsed tokenizer.json: the document, its vocabulary, and its added_tokens entries by content. */
export interface ParsedTokenizer {
  readonly file: string;
  readonly json: Readonly<Record<string, unknown>>;
  readonly vocab: Vocabulary;
  readonly added: ReadonlyMap<string, Readonly<Record<string, unknown>>>;
}

/** Parses tokenizer.json text (model.vocab plus added_tokens); `file` names it in errors. */
export function parseTokenizerJson(text: string, file: string): ParsedTokenizer & { readonly vocab: Map<string, number> } {
  const bad = (what: string): EvoError => new EvoError('TOKENIZER_INVALID', `${file}: ${what}`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw bad(`not valid JSON (${err instanceof Error ? err.message : String(err)}); expected a Hugging Face tokenizers file with model.vocab`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw bad('expected a JSON object with model.vocab');
  const doc = json as { model?: { vocab?: unknown }; added_tokens?: unknown };
  const vocab = doc.model?.vocab;
  const out = new Map<string, number>();
  const added = new Map<string, Readonly<Record<string, unknown>>>();
  const put = (token: unknown, id: unknown, where: string): void => {
    if (typeof token !== 'string' || typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
      throw bad(`${where}: expected a token string and a non-negative integer id`);
    }
    out.set(token, id);
  };
  if (Array.isArray(vocab)) {
    // Unigram: [[piece, score], ...], the id is the position.
    vocab.forEach((entry: unknown, i) => put(Array.isArray(entry) ? entry[0] : undefined, i, `model.vocab[${i}]`));
  } else if (vocab !== null && typeof vocab === 'object') {
    for (const [token, id] of Object.entries(vocab)) put(token, id, `model.vocab[${JSON.stringify(token)}]`);
  } else {
    throw bad('has no model.vocab (expected an object of token → id, or a Unigram list)');
  }
  if (doc.added_tokens !== undefined) {
    if (!Array.isArray(doc.added_tokens)) throw bad('added_tokens: expected a list');
    doc.added_tokens.forEach((t: unknown, i) => {
      const entry = (t ?? {}) as { id?: unknown; content?: unknown };
      put(entry.content, entry.id, `added_tokens[${i}]`);
      if (!added.has(entry.content as string)) added.set(entry.content as string, entry as Record<string, unknown>);
    });
  }
  return { file, json: json as Record<string, unknown>, vocab: out, added };
}

/** Reads and parses a tokenizer.json; errors name the file. */
export function readTokenizerJson(file: string): ParsedTokenizer {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new EvoError('TOKENIZER_MISSING', `${file}: cannot read (${err instanceof Error ? err.message : String(err)}); tokenizer_source needs every model's tokenizer.json`);
  }
  return parseTokenizerJson(text, file);
}

/**
 * The output vocabulary as a list indexed by id (1 + the largest id entries; an id no token has is
 * undefined and gets a zero row).
 */
export function tokensById(vocab: Vocabulary): (string | undefined)[] {
  let max = -1;
  for (const id of vocab.values()) if (id > max) max = id;
  const out: (string | undefined)[] = new Array<string | undefined>(max + 1).fill(undefined);
  for (const [token, id] of vocab) out[id] = token;
  return out;
}

/** One input model of a permuted tensor: its vocabulary and the rows its stored tensor has. */
export interface PermutationModel {
  readonly vocab: Vocabulary;
  readonly rows: number;
}

/**
 * Row sources of every model's permuted tensor (semantics §1.5, mergekit's PermutedEmbeddings):
 * a model keeps its own row for each token it has (an id at or past its tensor's rows counts as
 * absent). A token it lacks gets the shared default: the row of the one model having it; else
 * the base's row when the base has it; else the mean over the models having it (in model order);
 * zeros when none has it. A token with an entry in `overrides` (by output id) gets the entry's
 * source instead of that default, and with `force` even in the models having it. Rows from
 * `outTokens.length` up to `rows` are padding (`[PAD_MEAN, 0]`). Source indexes are positions in `models`.
 */
export function permutationRows(
  outTokens: readonly (string | undefined)[],
  models: readonly PermutationModel[],
  baseIndex: number | null,
  options: { readonly overrides?: ReadonlyMap<number, RowOverride>; readonly rows?: number } = {},
): { readonly rows: RowSource[][]; readonly stats: PermutationStats[]; readonly missing: number } {
  const rows: RowSource[][] = models.map(() => []);
  const counts = models.map(() => ({ own: 0, borrowed: 0, averaged: 0, zero: 0, overridden: 0, padded: 0 }));
  let missing = 0;
  const zero: RowSource = [];
  for (const [outId, token] of outTokens.entries()) {
    const override = options.overrides?.get(outId);
    const have: [number, number][] = [];
    models.forEach((m, i) => {
      const id = token === undefined ? undefined : m.vocab.get(token);
      if (id !== undefined && id < m.rows) have.push([i, id]);
    });
    let fallback: RowSource;
    let kind: 'borrowed' | 'averaged' | 'zero' | 'overridden';
    const fromBase = baseIndex === null ? undefined : have.find(([i]) => i === baseIndex);
    if (override !== undefined) {
      fallback = override.source;
      kind = 'overridden';
    } else if (have.length === 0) {
      fallback = zero;
      kind = 'zero';
      missing++;
    } else if (have.length === 1 || fromBase !== undefined) {
      fallback = [fromBase ?? (have[0] as [number, number])];
      kind = 'borrowed';
    } else {
      fallback = have;
      kind = 'averaged';
    }
    models.forEach((_m, i) => {
      const own = override?.force === true ? undefined : have.find(([j]) => j === i);
      const list = rows[i] as RowSource[];
      const c = counts[i] as Record<keyof PermutationStats, number>;
      if (own !== undefined) {
        list.push([own]);
        c.own++;
      } else {
        list.push(fallback);
        c[kind]++;
      }
    });
  }
  const pad: RowSource = [[PAD_MEAN, 0]];
  for (let r = outTokens.length; r < (options.rows ?? 0); r++) {
    rows.forEach((list, i) => {
      list.push(pad);
      (counts[i] as Record<keyof PermutationStats, number>).padded++;
    });
  }
  return { rows, stats: counts, missing };
}

/** mergekit's padded vocabulary size: `n` rounded up to a multiple of `multiple` (n itself when it is one, or no multiple is given). */
export function paddedRows(n: number, multiple: number | undefined): number {
  return multiple === undefined || n % multiple === 0 ? n : (Math.floor(n / multiple) + 1) * multiple;
}

/** True when model `index`'s row sources are exactly its own rows 0..n-1 and it has n rows. */
export function isIdentity(rows: readonly RowSource[], index: number, storedRows: number): boolean {
  if (rows.length !== storedRows) return false;
  return rows.every((r, i) => r.length === 1 && r[0]?.[0] === index && r[0][1] === i);
}

/**
 * Row sources packed for a task: row r's `[source, row]` pairs are
 * `pairs[2k], pairs[2k+1]` for k in [rowOffsets[r], rowOffsets[r+1]). Typed arrays, so that a task
 * crossing to a worker is copied in one piece instead of as one small array per row.
 */
export interface PackedRows {
  readonly rowOffsets: Uint32Array;
  readonly pairs: Int32Array;
}

export function packRows(rows: readonly RowSource[]): PackedRows {
  const rowOffsets = new Uint32Array(rows.length + 1);
  let n = 0;
  rows.forEach((r, i) => {
    n += r.length;
    rowOffsets[i + 1] = n;
  });
  const pairs = new Int32Array(2 * n);
  let k = 0;
  for (const r of rows) {
    for (const [src, row] of r) {
      pairs[k++] = src;
      pairs[k++] = row;
    }
  }
  return { rowOffsets, pairs };
}

/** Rows [start, start + count) of packed rows, offsets rebased to 0. */
export function slicePackedRows(packed: PackedRows, start: number, count: number): PackedRows {
  const from = packed.rowOffsets[start] ?? 0;
  const to = packed.rowOffsets[start + count] ?? from;
  const rowOffsets = packed.rowOffsets.slice(start, start + count + 1).map((o) => o - from);
  return { rowOffsets, pairs: packed.pairs.slice(2 * from, 2 * to) };
}
