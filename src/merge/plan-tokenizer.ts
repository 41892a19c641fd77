import { readFileSync } from 'node:fs';
import path from 'node:path';
import { tensorRole } from '../tensors/tensor-role.js';
import { documentModelRefs } from './config-validate.js';
import type { MergeDocument } from './config.js';
import type { PlanIssue } from './plan-error.js';
import type { PlanSource } from './plan-source.js';

/**
 * Which tokenizer files the output gets, and whether `tokenizer_source` can be honoured.
 * Without it, the files of the base model (else the first model) are copied, as mergekit does.
 * With `tokenizer_source: base | <model>`, mergekit permutes every model's embeddings into that
 * tokenizer's vocabulary (semantics §1.5). evomerge does not implement the permutation yet, so it
 * accepts the option only where the permutation is the identity: every model has the same
 * tokenizer and as many embedding rows as it has tokens. Anything else is UNSUPPORTED.
 */
export function checkTokenizerSource(
  doc: MergeDocument,
  sources: ReadonlyMap<string, PlanSource>,
  donorRef: string,
  push: (i: PlanIssue) => void,
): { dir: string | null; files: readonly string[] } {
  const requested = doc.tokenizer_source ?? doc.tokenizer?.source;
  const ref = requested === undefined ? donorRef : requested === 'base' ? (doc.base_model ?? donorRef) : requested;
  const donor = sources.get(ref);
  const result = { dir: donor?.tokenizerDir ?? null, files: donor?.tokenizerFiles ?? [] };
  if (requested === undefined || !donor) return result;

  const unsupported = (why: string): void => {
    push({ code: 'UNSUPPORTED', message: `tokenizer_source ${requested}: ${why}; embedding permutation into another vocabulary is not supported yet` });
  };
  const donorText = readTokenizerJson(donor);
  if (donorText === undefined) {
    unsupported(`${donor.label} has no tokenizer.json to compare vocabularies with`);
    return result;
  }
  const tokens = vocabularySize(donorText);
  for (const other of documentModelRefs(doc)) {
    const src = sources.get(other);
    if (!src) continue;
    if (src !== donor && readTokenizerJson(src) !== donorText) {
      unsupported(`${src.label} has a different (or no) tokenizer.json than ${donor.label}`);
      continue;
    }
    for (const name of src.tensorNames) {
      const role = tensorRole(name).kind;
      if (role !== 'embedding' && role !== 'lm_head') continue;
      const rows = src.tensors.get(name)?.shape[0];
      if (tokens !== undefined && rows !== tokens) {
        unsupported(`${src.label} ${name} has ${rows} rows but the tokenizer has ${tokens} tokens (mergekit would resize it)`);
      }
    }
  }
  return result;
}

function readTokenizerJson(src: PlanSource): string | undefined {
  if (src.tokenizerDir === null || !src.tokenizerFiles.includes('tokenizer.json')) return undefined;
  try {
    return readFileSync(path.join(src.tokenizerDir, 'tokenizer.json'), 'utf8');
  } catch {
    return undefined;
  }
}

/** Number of token ids of a tokenizer.json: 1 + the largest id in its vocabulary and added tokens. */
function vocabularySize(text: string): number | undefined {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (json === null || typeof json !== 'object') return undefined;
  const doc = json as { model?: { vocab?: unknown }; added_tokens?: unknown };
  let maxId = -1;
  const vocab = doc.model?.vocab;
  if (Array.isArray(vocab)) maxId = vocab.length - 1;
  else if (vocab !== null && typeof vocab === 'object') {
    for (const id of Object.values(vocab)) if (typeof id === 'number' && id > maxId) maxId = id;
  }
  if (Array.isArray(doc.added_tokens)) {
    for (const t of doc.added_tokens) {
      const id = (t as { id?: unknown }).id;
      if (typeof id === 'number' && id > maxId) maxId = id;
    }
  }
  return maxId >= 0 ? maxId + 1 : undefined;
}
