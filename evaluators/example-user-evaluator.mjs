// An example user evaluator: copy it, change the items and the scoring, and name it in a search
// space (`evaluator: {module: ./my-evaluator.mjs, options: {max_tokens: 8}}`) or run it alone
// with `evo eval <model> --tasks ./my-evaluator.mjs`.
//
// The contract (plain JavaScript, no build step):
//
//   export async function evaluate(candidate, options, context) → number | {score, ...}
//
//   candidate  {id, dir, config, genome, ...}: dir is the merged Hugging Face folder
//              (config.json, *.safetensors, tokenizer); config is the mergekit config it was
//              built from; genome maps gene names to their decoded values.
//   options    the objective's `options:` mapping from the space file, as written.
//   context    {limit, seed, signal, backend?, ...}: limit = items to score (may be null or
//              Infinity: use them all); seed = the subset seed, the same for every candidate of
//              a generation, so they answer the same items; signal = an AbortSignal; backend =
//              the inference backend already serving this candidate, when the module exports
//              `needs = 'backend'` (two methods: generate([{prompt, stop, maxTokens}]) →
//              [{text, tokens, finish}], and loglikelihood([{context, continuation}]) →
//              [{logprob, greedy, tokens}]).
//
//   Return a number, or {score, n, ci: [low, high], stderr, items: [{id, correct, score}], ...}:
//   n is the number of items the score rests on, ci its 95% interval, items the per-item
//   results the run store keeps; any other field is stored as details. Return a non-finite
//   score (with `error: 'why'`) to fail this candidate only; a thrown error stops the run.

/** What this evaluator needs materialized: 'backend' (a loaded model), 'hf-dir' or 'gguf'. */
export const needs = 'backend';

// The items: short prompts with a known continuation. A real evaluator reads its own file.
const ITEMS = [
  { id: 'add-1', prompt: 'Question: What is 2 + 3?\nAnswer:', answer: '5' },
  { id: 'add-2', prompt: 'Question: What is 7 + 6?\nAnswer:', answer: '13' },
  { id: 'sub-1', prompt: 'Question: What is 9 - 4?\nAnswer:', answer: '5' },
  { id: 'mul-1', prompt: 'Question: What is 3 * 4?\nAnswer:', answer: '12' },
  { id: 'mul-2', prompt: 'Question: What is 6 * 7?\nAnswer:', answer: '42' },
  { id: 'div-1', prompt: 'Question: What is 20 / 5?\nAnswer:', answer: '4' },
];

/** A seeded shuffle (mulberry32), so every candidate of a generation gets the same subset. */
function seededShuffle(items, seed) {
  let state = seed >>> 0;
  const rand = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** Wilson 95% interval of k right answers out of n. */
function wilson(k, n) {
  if (n === 0) return [0, 1];
  const z = 1.959963984540054;
  const p = k / n;
  const d = 1 + (z * z) / n;
  const centre = (p + (z * z) / (2 * n)) / d;
  const half = (z / d) * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n));
  return [Math.max(0, centre - half), Math.min(1, centre + half)];
}

export async function evaluate(candidate, options, context) {
  const backend = context.backend;
  if (backend === undefined) {
    throw new Error(`example-user-evaluator needs an inference backend serving ${candidate.dir} (export needs = 'backend')`);
  }
  const limit = context.limit == null || !Number.isFinite(context.limit) ? ITEMS.length : context.limit;
  const items = seededShuffle(ITEMS, context.seed ?? 0).slice(0, limit);
  const maxTokens = options.max_tokens ?? 8;
  const outputs = await backend.generate(
    items.map((item) => ({ prompt: item.prompt, stop: ['\n'], maxTokens })),
    context.signal,
  );
  const results = items.map((item, i) => {
    const got = (outputs[i]?.text ?? '').trim().match(/-?\d+/)?.[0] ?? null;
    const correct = got === item.answer;
    return { id: item.id, correct, score: correct ? 1 : 0 };
  });
  const right = results.filter((r) => r.correct).length;
  return {
    score: results.length === 0 ? 0 : right / results.length,
    n: results.length,
    ci: wilson(right, results.length),
    items: results,
    // Anything else is kept as details.
    firstAnswer: outputs[0]?.text ?? null,
  };
}
