/**
 * tokenizer_config.json (and added_tokens.json) beside a generated tokenizer.json (union, added
 * or stripped tokens).
 * mergekit saves its output tokenizer with transformers' save_pretrained, which writes
 * `added_tokens_decoder` as every added token of the tokenizer, `{id: {content, lstrip,
 * normalized, rstrip, single_word, special}}` by ascending id. transformers reads that map in
 * preference to tokenizer.json's added_tokens, so a copied one would hide (or resurrect) tokens.
 * Only that member is rewritten; the rest of the file keeps its bytes, as a JSON round trip would
 * not (big integers such as model_max_length 1e30 lose their digits). Pure: text in, text out.
 */
import { EvoError } from '../errors.js';

/** The special-token keys of a tokenizer_config.json (transformers' SPECIAL_TOKENS_ATTRIBUTES). */
const SPECIAL_KEYS = ['bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token', 'additional_special_tokens'];

/**
 * `text` (the donor's tokenizer_config.json, named `file` in errors) with `added_tokens_decoder`
 * made from `addedTokens` (the output tokenizer.json's added_tokens entries), replacing the
 * donor's member in place or, when it has none, appended as the last member. Flags a token entry
 * lacks take tokenizers' AddedToken defaults (normalized = not special).
 */
export function withAddedTokensDecoder(text: string, file: string, addedTokens: readonly unknown[]): string {
  parseObject(text, file);
  const decoder: Record<string, Record<string, unknown>> = {};
  for (const e of addedTokens) {
    const entry = (e ?? {}) as Record<string, unknown>;
    const flag = (key: string, fallback: boolean): boolean => (typeof entry[key] === 'boolean' ? (entry[key] as boolean) : fallback);
    const special = flag('special', false);
    // Keys sorted as transformers writes them (json.dumps sort_keys).
    decoder[String(entry['id'])] = {
      content: entry['content'],
      lstrip: flag('lstrip', false),
      normalized: flag('normalized', !special),
      rstrip: flag('rstrip', false),
      single_word: flag('single_word', false),
      special,
    };
  }
  const { members, open, close } = topLevelMembers(text);
  const gap = text.slice(open + 1, members[0]?.keyStart ?? close);
  const newline = gap.lastIndexOf('\n');
  // The file's own indentation (transformers writes two spaces); none for a one-line file.
  const unit = members.length === 0 ? '  ' : newline === -1 ? '' : gap.slice(newline + 1);
  const value = unit === '' ? JSON.stringify(decoder) : JSON.stringify(decoder, null, unit).replaceAll('\n', `\n${unit}`);
  const existing = members.find((m) => m.key === 'added_tokens_decoder');
  if (existing) return `${text.slice(0, existing.valueStart)}${value}${text.slice(existing.valueEnd)}`;
  const last = members[members.length - 1];
  const member = `"added_tokens_decoder": ${value}`;
  if (last === undefined) return `${text.slice(0, open + 1)}\n${unit}${member}\n${text.slice(close)}`;
  const sep = unit === '' ? ', ' : `,\n${unit}`;
  return `${text.slice(0, last.valueEnd)}${sep}${member}${text.slice(last.valueEnd)}`;
}

/**
 * added_tokens.json for a generated tokenizer.json (the slow-tokenizer file transformers'
 * save_pretrained writes beside a sentencepiece model): every added token whose id is at or past
 * the model's own vocabulary (model.vocab's size), `{token: id}` with keys sorted by code point,
 * two-space indented, as Python's json.dumps(sort_keys=True) writes it.
 */
export function addedTokensJson(tokenizer: Readonly<Record<string, unknown>>): string {
  const vocab = (tokenizer['model'] as { vocab?: unknown } | undefined)?.vocab;
  const own = Array.isArray(vocab) ? vocab.length : vocab !== null && typeof vocab === 'object' ? Object.keys(vocab).length : 0;
  const entries: [string, number][] = [];
  for (const e of Array.isArray(tokenizer['added_tokens']) ? (tokenizer['added_tokens'] as { id?: unknown; content?: unknown }[]) : []) {
    if (typeof e.content === 'string' && typeof e.id === 'number' && e.id >= own) entries.push([e.content, e.id]);
  }
  entries.sort((a, b) => byCodePoint(a[0], b[0]));
  if (entries.length === 0) return '{}\n';
  return `{\n${entries.map(([t, id]) => `  ${JSON.stringify(t)}: ${id}`).join(',\n')}\n}\n`;
}

/** Python's str order (by code point), which differs from UTF-16 order past the BMP. */
function byCodePoint(a: string, b: string): number {
  const x = Array.from(a, (c) => c.codePointAt(0) ?? 0);
  const y = Array.from(b, (c) => c.codePointAt(0) ?? 0);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return (x[i] ?? 0) - (y[i] ?? 0);
  return x.length - y.length;
}

/**
 * The special tokens `text` names (bos_token, pad_token, …: a string or `{content}`) that are in
 * `removed`, as `key "token"`: transformers adds such a token back, at a new id past the
 * embedding, when it loads the tokenizer (mergekit writes them unchanged too).
 */
export function specialTokensIn(text: string, file: string, removed: ReadonlySet<string>): string[] {
  const doc = parseObject(text, file);
  const out: string[] = [];
  const content = (v: unknown): unknown => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as { content?: unknown }).content : v);
  for (const key of SPECIAL_KEYS) {
    const v = doc[key];
    for (const t of Array.isArray(v) ? v.map(content) : [content(v)]) {
      if (typeof t === 'string' && removed.has(t)) out.push(`${key} ${JSON.stringify(t)}`);
    }
  }
  return out;
}

function parseObject(text: string, file: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new EvoError('TOKENIZER_INVALID', `${file}: not valid JSON (${err instanceof Error ? err.message : String(err)}); expected a tokenizer_config.json object`);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new EvoError('TOKENIZER_INVALID', `${file}: expected a JSON object`);
  return doc as Record<string, unknown>;
}

/** A member of the top-level object: its key and where its key and value lie in the text. */
interface MemberSpan {
  readonly key: string;
  readonly keyStart: number;
  readonly valueStart: number;
  readonly valueEnd: number;
}

/** The members of the top-level object of valid JSON text, and the offsets of its braces. */
function topLevelMembers(text: string): { readonly members: MemberSpan[]; readonly open: number; readonly close: number } {
  let i = skipSpace(text, 0);
  const open = i;
  i = skipSpace(text, i + 1);
  const members: MemberSpan[] = [];
  while (text[i] !== '}') {
    const keyStart = i;
    i = endOfValue(text, i);
    const key = JSON.parse(text.slice(keyStart, i)) as string;
    i = skipSpace(text, skipSpace(text, i) + 1);
    const valueStart = i;
    i = endOfValue(text, i);
    members.push({ key, keyStart, valueStart, valueEnd: i });
    i = skipSpace(text, i);
    if (text[i] === ',') i = skipSpace(text, i + 1);
  }
  return { members, open, close: i };
}

function skipSpace(text: string, i: number): number {
  while (i < text.length && ' \t\n\r'.includes(text[i] ?? '')) i++;
  return i;
}

/** The offset just past the JSON value starting at `i` (the text is known to be valid JSON). */
function endOfValue(text: string, i: number): number {
  let depth = 0;
  for (let j = i; j < text.length; j++) {
    const c = text[j] ?? '';
    if (depth === 0 && j > i && (c === ',' || c === '}' || c === ']' || ' \t\n\r'.includes(c))) return j;
    if (c === '"') {
      j++;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      if (depth === 0) return j + 1;
    } else if (c === '{' || c === '[') {
      depth++;
    } else if (c === '}' || c === ']') {
      depth--;
      if (depth === 0) return j + 1;
    }
  }
  return text.length;
}
