import { open, readdir, readFile, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { abbreviate, checkpointProblems } from './checkpoint-checks.js';
import { CheckpointError } from './checkpoint-error.js';
import { type DType, decodeToF32 } from './dtype.js';
import { parseHfConfig, type HfConfig } from './hf-config.js';
import { GENERATION_CONFIG_FILE, SAFETENSORS_INDEX_FILE, SAFETENSORS_SINGLE_FILE, TOKENIZER_FILE_NAMES } from './hf-files.js';
import { HubError, hubOptionsFromEnv, parseHubId, resolveHubSnapshot } from './hub.js';
import { readSafetensorsHeader, type SafetensorsHeader } from './safetensors.js';
import { parseSafetensorsIndex } from './shards.js';
import { compareTensorNames, layerIndexOf, tensorRole } from './tensor-role.js';

export { CheckpointError, type CheckpointErrorCode } from './checkpoint-error.js';

/** One stored tensor of a checkpoint, located down to its bytes. */
export interface CheckpointTensor {
  readonly name: string;
  /** Absolute path of the safetensors file that holds it. */
  readonly file: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** Absolute byte offset of its first byte in `file`. */
  readonly byteOffset: number;
  readonly byteLength: number;
}

/** Where a checkpoint came from: a local path, or a hub repo resolved through the HF cache. */
export type CheckpointSource =
  | { readonly kind: 'local' }
  | { readonly kind: 'hub'; readonly repo: string; readonly revision: string; readonly commit: string };

/**
 * A Hugging Face model checkpoint whose headers have been read and cross-checked; no tensor data
 * is loaded. Everything a merge plan needs (names, dtypes, shapes, byte ranges) is here.
 */
export interface ModelCheckpoint {
  /** The reference as given (path or hub id). */
  readonly ref: string;
  /** Absolute path of the folder holding the files (a hub snapshot folder for hub ids). */
  readonly dir: string;
  readonly source: CheckpointSource;
  readonly config: HfConfig;
  /** Every stored tensor, in reading order (`layers.2` before `layers.10`). */
  readonly tensors: ReadonlyMap<string, CheckpointTensor>;
  /** Absolute paths of the safetensors files, sorted. */
  readonly shardFiles: readonly string[];
  /** Absolute path of `model.safetensors.index.json` when the weights are sharded through one. */
  readonly indexFile: string | undefined;
  /**
   * Names (relative to `dir`) of the tokenizer files present: tokenizer.json, tokenizer.model,
   * tokenizer_config.json, special_tokens_map.json, vocab.json, merges.txt, added_tokens.json,
   * chat_template.jinja, chat_template.json. A merge copies them from the base model.
   */
  readonly tokenizerFiles: readonly string[];
  /** `generation_config.json` when present (copied like the tokenizer files), else undefined. */
  readonly generationConfigFile: string | undefined;
  /** True when tie_word_embeddings is true or there is no lm_head tensor beside the embeddings. */
  readonly tiedEmbeddings: boolean;
  /** Non-fatal findings, one line each (shown by `evo inspect`). */
  readonly problems: readonly string[];
}

export interface OpenCheckpointOptions {
  /** Hugging Face home; the hub cache is `<hfHome>/hub`. Default: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub. */
  readonly hfHome?: string;
  /** Use only the local cache for hub ids, never the network. Default: $HF_HUB_OFFLINE. */
  readonly offline?: boolean;
  /** Folder that relative paths are resolved against. Default: the current directory. */
  readonly baseDir?: string;
  /** Hub base URL. Default: $HF_ENDPOINT, else https://huggingface.co. */
  readonly endpoint?: string;
  /** Environment to read HF_* variables from. Default: process.env. */
  readonly env?: NodeJS.ProcessEnv;
}

const OTHER_WEIGHT_FORMATS = /\.(bin|pt|pth|ckpt|gguf|h5|msgpack|onnx)$/;

/**
 * Opens a model checkpoint: a directory, a single `.safetensors` file (config.json beside it is
 * then optional) or a hub id `org/name[@revision]` resolved through the Hugging Face cache.
 * Reads config.json, the shard index and every safetensors header, and cross-checks them.
 * Throws CheckpointError (or HubError for hub ids) with a one-line message naming the file.
 */
export async function openCheckpoint(ref: string, options: OpenCheckpointOptions = {}): Promise<ModelCheckpoint> {
  const base = options.baseDir ?? process.cwd();
  const expanded = ref === '~' ? os.homedir() : ref.startsWith('~/') ? path.join(os.homedir(), ref.slice(2)) : ref;
  const local = path.resolve(base, expanded);
  const localStat = await statOrUndefined(local);
  if (localStat?.isFile()) return openFile(ref, local);
  if (localStat?.isDirectory()) return openDirectory(ref, local, { kind: 'local' });

  const hubId = ref.startsWith('.') || path.isAbsolute(ref) ? undefined : parseHubId(ref);
  if (hubId === undefined) throw new CheckpointError('NOT_FOUND', local, `${local}: no such file or directory`);
  const hubOptions = hubOptionsFromEnv(options.env ?? process.env, {
    ...(options.hfHome === undefined ? {} : { hfHome: options.hfHome }),
    ...(options.offline === undefined ? {} : { offline: options.offline }),
    ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
  });
  let snapshot;
  try {
    snapshot = await resolveHubSnapshot(hubId, hubOptions);
  } catch (err) {
    // A mistyped relative path parses as a hub id too: say that it is not a local path either.
    if (err instanceof HubError && (err.code === 'HUB_NOT_CACHED' || err.code === 'HUB_REPO_NOT_FOUND')) {
      throw new HubError(err.code, err.repo, `${err.message}; ${local} does not exist either`, { cause: err });
    }
    throw err;
  }
  return openDirectory(ref, snapshot.dir, { kind: 'hub', repo: snapshot.repo, revision: snapshot.revision, commit: snapshot.commit });
}

async function statOrUndefined(p: string): Promise<import('node:fs').Stats | undefined> {
  try {
    return await stat(p);
  } catch {
    return undefined;
  }
}

/** Names of the regular files in `dir`, following symlinks (hub snapshots are all symlinks). */
async function listFiles(dir: string): Promise<Set<string>> {
  const names = new Set<string>();
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.isFile()) names.add(entry.name);
    else if (entry.isSymbolicLink() && (await statOrUndefined(path.join(dir, entry.name)))?.isFile()) names.add(entry.name);
  }
  return names;
}

async function readConfig(file: string): Promise<HfConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new CheckpointError('CONFIG_MISSING', file, `${file}: cannot read config.json (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new CheckpointError('CONFIG_INVALID', file, `${file}: not valid JSON (${err instanceof Error ? err.message : String(err)})`, { cause: err });
  }
  return parseHfConfig(raw, file);
}

interface Weights {
  readonly tensors: Map<string, CheckpointTensor>;
  readonly shardFiles: string[];
  readonly indexFile: string | undefined;
  readonly problems: string[];
}

async function openDirectory(ref: string, dir: string, source: CheckpointSource): Promise<ModelCheckpoint> {
  const files = await listFiles(dir);
  if (!files.has('config.json')) {
    throw new CheckpointError('CONFIG_MISSING', dir, `${dir}: no config.json (the model's Hugging Face configuration)`);
  }
  const config = await readConfig(path.join(dir, 'config.json'));
  const weights = await readDirectoryWeights(dir, files);
  return finish(ref, dir, source, config, weights, files);
}

async function openFile(ref: string, file: string): Promise<ModelCheckpoint> {
  if (!file.endsWith('.safetensors')) {
    const what = OTHER_WEIGHT_FORMATS.test(file) ? 'only safetensors weights are supported' : 'expected a .safetensors file or a model directory';
    throw new CheckpointError('UNSUPPORTED_WEIGHTS', file, `${file}: ${what}`);
  }
  const dir = path.dirname(file);
  const files = await listFiles(dir);
  const header = await readSafetensorsHeader(file);
  const tensors = new Map<string, CheckpointTensor>();
  addHeader(tensors, header);
  const weights: Weights = { tensors, shardFiles: [file], indexFile: undefined, problems: [] };
  const config = files.has('config.json') ? await readConfig(path.join(dir, 'config.json')) : inferConfig(file, tensors);
  if (config.file === undefined) {
    weights.problems.push(`no config.json beside ${path.basename(file)}: layer count ${config.numHiddenLayers} inferred from tensor names`);
  }
  return finish(ref, dir, { kind: 'local' }, config, weights, files);
}

/** A stand-in config for a lone safetensors file: only the layer count, from the tensor names. */
function inferConfig(file: string, tensors: ReadonlyMap<string, CheckpointTensor>): HfConfig {
  let layers = 0;
  for (const name of tensors.keys()) {
    const layer = layerIndexOf(name);
    if (layer !== undefined) layers = Math.max(layers, layer + 1);
  }
  const parsed = parseHfConfig({ num_hidden_layers: layers }, file);
  return { ...parsed, file: undefined };
}

function addHeader(tensors: Map<string, CheckpointTensor>, header: SafetensorsHeader): void {
  for (const info of header.tensors.values()) {
    const previous = tensors.get(info.name);
    if (previous !== undefined) {
      throw new CheckpointError(
        'TENSOR_IN_TWO_SHARDS',
        header.file,
        `${header.file}: tensor ${info.name} is also in ${previous.file}`,
        { tensor: info.name },
      );
    }
    tensors.set(info.name, {
      name: info.name,
      file: header.file,
      dtype: info.dtype,
      shape: info.shape,
      byteOffset: info.byteOffset,
      byteLength: info.byteLength,
    });
  }
}

async function readDirectoryWeights(dir: string, files: ReadonlySet<string>): Promise<Weights> {
  const indexes = [...files].filter((f) => f.endsWith('.safetensors.index.json')).sort();
  const indexName = files.has(SAFETENSORS_INDEX_FILE) ? SAFETENSORS_INDEX_FILE : indexes.length === 1 ? indexes[0] : undefined;
  if (indexName !== undefined) return readIndexedWeights(dir, path.join(dir, indexName));

  const safetensors = [...files].filter((f) => f.endsWith('.safetensors')).sort();
  const chosen = files.has(SAFETENSORS_SINGLE_FILE) ? [SAFETENSORS_SINGLE_FILE] : safetensors.filter((f) => f !== 'adapter_model.safetensors');
  if (chosen.length === 0) {
    if (files.has('adapter_config.json')) {
      throw new CheckpointError('ADAPTER_NOT_SUPPORTED', dir, `${dir}: holds a LoRA/PEFT adapter (adapter_config.json), not a full model; merge it into its base first`);
    }
    const other = [...files].filter((f) => OTHER_WEIGHT_FORMATS.test(f)).sort();
    if (other.length > 0) {
      const shown = other.slice(0, 3).join(', ') + (other.length > 3 ? `, … (${other.length} files)` : '');
      throw new CheckpointError('UNSUPPORTED_WEIGHTS', dir, `${dir}: only safetensors weights are supported, found ${shown}; convert them to safetensors first`);
    }
    throw new CheckpointError('NO_WEIGHTS', dir, `${dir}: no weights (no model.safetensors, no ${SAFETENSORS_INDEX_FILE}, no .safetensors file)`);
  }
  const tensors = new Map<string, CheckpointTensor>();
  const shardFiles = chosen.map((f) => path.join(dir, f));
  const headers = await Promise.all(shardFiles.map((f) => readSafetensorsHeader(f)));
  for (const header of headers) addHeader(tensors, header);
  const problems: string[] = [];
  if (chosen.length > 1) problems.push(`${chosen.length} safetensors files and no ${SAFETENSORS_INDEX_FILE}; read them all`);
  return { tensors, shardFiles, indexFile: undefined, problems };
}

async function readIndexedWeights(dir: string, indexFile: string): Promise<Weights> {
  // Parsed here rather than with readSafetensorsIndex, which opens the shards to fill a missing
  // total_size and would report a missing shard as an unreadable safetensors file.
  let text: string;
  try {
    text = await readFile(indexFile, 'utf8');
  } catch (err) {
    throw new CheckpointError('INDEX_MISMATCH', indexFile, `${indexFile}: cannot read the shard index (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
  }
  const { index, totalSizeKnown } = parseSafetensorsIndex(text, indexFile);
  const shardNames = [...new Set(Object.values(index.weight_map))].sort();
  const shardFiles: string[] = [];
  for (const shard of shardNames) {
    const file = path.resolve(dir, shard);
    if (path.dirname(file) !== dir && !file.startsWith(dir + path.sep)) {
      throw new CheckpointError('INDEX_MISMATCH', indexFile, `${indexFile}: shard name ${JSON.stringify(shard)} points outside ${dir}`);
    }
    if (!(await statOrUndefined(file))?.isFile()) {
      const tensor = Object.keys(index.weight_map).find((k) => index.weight_map[k] === shard);
      throw new CheckpointError(
        'SHARD_MISSING',
        indexFile,
        `${indexFile}: names shard ${shard} (for ${tensor ?? 'tensors'}), which is missing from ${dir}`,
        tensor === undefined ? undefined : { tensor },
      );
    }
    shardFiles.push(file);
  }
  const headers = await Promise.all(shardFiles.map((f) => readSafetensorsHeader(f)));
  const tensors = new Map<string, CheckpointTensor>();
  for (const header of headers) addHeader(tensors, header);

  for (const [name, shard] of Object.entries(index.weight_map)) {
    const tensor = tensors.get(name);
    const expected = path.resolve(dir, shard);
    if (tensor === undefined) {
      throw new CheckpointError('INDEX_MISMATCH', indexFile, `${indexFile}: maps tensor ${name} to ${shard}, which does not hold it`, { tensor: name });
    }
    if (tensor.file !== expected) {
      throw new CheckpointError(
        'INDEX_MISMATCH',
        indexFile,
        `${indexFile}: maps tensor ${name} to ${shard}, but it is in ${path.relative(dir, tensor.file)}`,
        { tensor: name },
      );
    }
  }
  const problems: string[] = [];
  const unlisted = [...tensors.keys()].filter((name) => !Object.hasOwn(index.weight_map, name));
  if (unlisted.length > 0) {
    problems.push(`${unlisted.length} tensor(s) in the shards are not in ${path.basename(indexFile)}: ${abbreviate(unlisted)}`);
  }
  let total = 0;
  for (const t of tensors.values()) total += t.byteLength;
  const declared = index.metadata.total_size;
  if (totalSizeKnown && declared !== total) {
    problems.push(`${path.basename(indexFile)} metadata.total_size is ${declared} but the tensors hold ${total} bytes`);
  }
  return { tensors, shardFiles, indexFile, problems };
}

function finish(
  ref: string,
  dir: string,
  source: CheckpointSource,
  config: HfConfig,
  weights: Weights,
  files: ReadonlySet<string>,
): ModelCheckpoint {
  const names = [...weights.tensors.keys()].sort(compareTensorNames);
  const tensors = new Map<string, CheckpointTensor>();
  for (const name of names) {
    const t = weights.tensors.get(name);
    if (t !== undefined) tensors.set(name, Object.freeze({ ...t, shape: Object.freeze([...t.shape]) }));
  }
  let hasEmbedding = false;
  let hasLmHead = false;
  for (const name of names) {
    const role = tensorRole(name).kind;
    if (role === 'embedding') hasEmbedding = true;
    else if (role === 'lm_head') hasLmHead = true;
  }
  const tiedEmbeddings = config.tieWordEmbeddings || (hasEmbedding && !hasLmHead);
  const problems = [...weights.problems, ...checkpointProblems(config, tensors)];
  return Object.freeze({
    ref,
    dir,
    source,
    config,
    tensors,
    shardFiles: Object.freeze([...weights.shardFiles].sort()),
    indexFile: weights.indexFile,
    tokenizerFiles: Object.freeze(TOKENIZER_FILE_NAMES.filter((f) => files.has(f))),
    generationConfigFile: files.has(GENERATION_CONFIG_FILE) ? GENERATION_CONFIG_FILE : undefined,
    tiedEmbeddings,
    problems: Object.freeze(problems),
  });
}

/** Number of stored parameters (elements over all tensors). */
export function parameterCount(checkpoint: ModelCheckpoint): number {
  let n = 0;
  for (const t of checkpoint.tensors.values()) n += t.shape.reduce((a, b) => a * b, 1);
  return n;
}

/** One stored tensor's values decoded to f32 (whole tensor in memory: for small models and tools). */
export async function readCheckpointTensorF32(t: CheckpointTensor): Promise<Float32Array> {
  const bytes = new Uint8Array(t.byteLength);
  const fh = await open(t.file, 'r');
  try {
    const { bytesRead } = await fh.read(bytes, 0, t.byteLength, t.byteOffset);
    if (bytesRead !== t.byteLength) throw new CheckpointError('TENSOR_TRUNCATED', t.file, `${t.file}: tensor ${t.name} ends past the end of the file`, { tensor: t.name });
  } finally {
    await fh.close();
  }
  return decodeToF32(t.dtype, bytes);
}
