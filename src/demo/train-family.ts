/**
 * Trains the demo family (issue 6) from nothing but a seed, deterministically:
 *
 *   node dist/src/demo/train-family.js [--out demo] [--seed 1] [--stages base,math,facts]
 *       [--threads 2] [--set stage.key=value | model.key=N | corpus.key=N | world.entities=N | world.practiceEntities=N | world.validationEntities=N | world.practiceHeldOut=N ...]
 *       [--eval-limit N] [--no-eval] [--dtype f32|f16|bf16]
 *
 * 1. the tasks: OUT/tasks/{math,facts} (generic JSONL tasks: search + sealed test split);
 * 2. a byte-level BPE tokenizer learned from the training text;
 * 3. `base`: a 4-layer Llama pretrained from scratch on text with both task formats (math problems,
 *    statements of and questions about the train split's facts);
 * 4. `math` and `facts`: fine-tunes of the base on answers only (math solutions; every fact
 *    stated, lettered answers to train-fact questions).
 * Each model goes to OUT/family/<name> (config.json, model.safetensors in --dtype, tokenizer files), then
 * all three are scored by llama.cpp on the SEARCH split and OUT/family/README.md records the
 * seed, the command, the settings, the training times and those scores.
 * `--stages math,facts` fine-tunes again from the saved base (for trying fine-tune settings).
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { UsageError } from '../errors.js';
import { LlamaCppBackend } from '../eval/backend.js';
import { writeFileAtomic } from '../tensors/atomic-file.js';
import { type NeuronBlock, neuronBlockMask, widenMlp } from '../train/mlp-neurons.js';
import { type DimRange, type HeadRange, type PrivateParts, embeddingRowMask, gateNeuronsOn, privatePartsMask, seedPrivateEmbeddings, seedPrivateHeads, widenHeads, widenResidual } from '../train/private-dims.js';
import { headDimOf } from '../train/config.js';
import { type LlamaTrainConfig, type LlamaWeights, type TrainOptions, initLlamaWeights, loadLlamaCheckpoint, saveLlamaCheckpoint, trainLlama } from '../train/index.js';
import { BpeEncoder, writeTokenizerFiles } from './byte-level-bpe.js';
import { type CorpusSizes, type Stage, encodeDocument, packedBatch } from './corpus.js';
import { baseReplayDocuments, replayPrompts } from './base-replay.js';
import { DEFAULT_DATA_SETTINGS, type DemoDataSettings, demoData, learnDemoTokenizer } from './family-data.js';
import { type DemoScores, type TaskCount, formatCount, loadDemoTasks, loadFactsValidation, scoreDemoModel } from './score-models.js';
import { ownedTokens } from './owned-tokens.js';
import { writeDemoTasks } from './write-tasks.js';

export interface StageSettings {
  readonly steps: number;
  readonly batchSize: number;
  readonly learningRate: number;
  readonly warmupSteps: number;
  readonly minLrRatio: number;
  readonly weightDecay: number;
  /** Fine-tunes: prompts of the other task answered by the base itself, mixed in (base-replay.ts). */
  readonly replay: number;
  /** 1: replayed answers are learned as the base's next-token distributions (distillation); 0: as its greedy tokens. */
  readonly distill: number;
  /** Substrings of the tensor names this stage trains (empty: every tensor). */
  readonly trainable: readonly string[];
  /**
   * Fine-tunes: fresh MLP neurons per layer that only this fine-tune trains (its MLP tensors
   * change only there; 0: all of each trained MLP tensor). The base is grown by both fine-tunes'
   * counts after pretraining (mlp-neurons.ts), math's block first, so it computes what it did.
   */
  readonly neurons: number;
  /**
   * Fine-tunes, 1: the embedding rows trained are only those of tokens this fine-tune's documents
   * use and the other fine-tune's never do (owned-tokens.ts); 0: every row of a trained embedding.
   */
  readonly ownTokens: number;
  /**
   * Fine-tunes: private residual dims (private-dims.ts). The base is widened by both fine-tunes'
   * counts after pretraining, math's first; a fine-tune with dims > 0 changes only parameters that
   * read its own dims (and its own tokens' rows, and its fresh neurons, gated on its dims), so it
   * cannot change what the model does on a prompt without its tokens.
   */
  readonly dims: number;
  /**
   * Fine-tunes with dims: fresh attention heads per layer of its own (private-dims.ts widenHeads;
   * the base is grown by both counts, math's first). Their queries read everything and their
   * values only its dims, so at a position of shared text ("Answer:") it can fetch what its own
   * tokens hold into its dims, where its neurons open, which the base's heads cannot do for it.
   */
  readonly heads: number;
  /**
   * Fine-tunes with dims: substrings of the names of tensors trained whole besides the private
   * parts, as an ordinary fine-tune trains them. The other task's prompts see these changes, so
   * this is where the specialists interfere in a merge.
   */
  readonly shared: readonly string[];
  /**
   * Fine-tunes: steps of a second phase, after the first, that trains only the tensors matching
   * `thenTrain`, whole (at the stage's learning rate, on the same documents). Changes made after
   * the skill was learned are changes the skill does not rely on.
   */
  readonly thenSteps: number;
  readonly thenTrain: readonly string[];
}

/** The dimensions `--set model.*` may change (the rest of the config comes from the tokenizer). */
export type ModelShape = Pick<LlamaTrainConfig, 'hiddenSize' | 'intermediateSize' | 'numLayers' | 'numHeads' | 'numKvHeads' | 'maxSeqLen'>;

export const MODEL_SHAPE: ModelShape = { hiddenSize: 96, intermediateSize: 256, numLayers: 4, numHeads: 4, numKvHeads: 4, maxSeqLen: 128 };

export const DEFAULT_STAGES: Readonly<Record<Stage, StageSettings>> = {
  base: { steps: 1200, batchSize: 16, learningRate: 3e-3, warmupSteps: 60, minLrRatio: 0.1, weightDecay: 0.01, replay: 0, distill: 0, trainable: [], neurons: 0, ownTokens: 0, dims: 0, heads: 0, shared: [], thenSteps: 0, thenTrain: [] },
  // Each fine-tune learns its skill in 16 residual dims and 32 fresh neurons of its own
  // (private-dims.ts), where it cannot touch the other's task. Math's private parts need lr 1e-2
  // and 800 steps (98% on the search split; 32% at 3e-3 and 400 steps, n = 100). Facts also has a
  // fresh attention head of its own and quizzes on practice kingdoms (family-data.ts): without
  // the head 52% (n = 128), with it 60% at 900 steps, 66% at 1500 and 76% at 2400; lr 6e-3 for
  // 1500 steps gave 64%. Then 200 steps on one tensor class alone, whole, as fine-tunes drift in
  // tensors their skill does not need: math's o_proj, which costs facts in a plain merge
  // (task_arithmetic 1/1 80% / 29% on 100 search items; 96% / 73% without math's o_proj delta);
  // facts' layer norms, since its head lives in o_proj (with an o_proj phase no per-class weights
  // kept both skills: 47% / 73% without math's o_proj delta, 96% / 43% without either; with
  // both on the layer norms the plain merges were already the union, 98% / 70%).
  math: { steps: 800, batchSize: 16, learningRate: 1e-2, warmupSteps: 20, minLrRatio: 0.1, weightDecay: 0, replay: 0, distill: 0, trainable: [], neurons: 32, ownTokens: 0, dims: 16, heads: 0, shared: [], thenSteps: 200, thenTrain: ['o_proj'] },
  facts: { steps: 2400, batchSize: 16, learningRate: 3e-3, warmupSteps: 20, minLrRatio: 0.1, weightDecay: 0, replay: 0, distill: 0, trainable: [], neurons: 32, ownTokens: 0, dims: 16, heads: 1, shared: [], thenSteps: 200, thenTrain: ['layernorm'] },
};

const STAGES: readonly Stage[] = ['base', 'math', 'facts'];

interface Args {
  readonly out: string;
  readonly seed: number;
  readonly stages: readonly Stage[];
  readonly threads: number;
  readonly stageSettings: Record<Stage, StageSettings>;
  readonly shape: ModelShape;
  /** The generated data's settings (seed, world size, corpus sizes). */
  readonly data: DemoDataSettings;
  readonly evalLimit: number;
  readonly evaluate: boolean;
  /** How the model files store their weights (training is in f32 either way). */
  readonly dtype: StorageDType;
  readonly command: string;
}

const STORAGE_DTYPES = ['f32', 'f16', 'bf16'] as const;
type StorageDType = (typeof STORAGE_DTYPES)[number];

function parseArgs(argv: readonly string[]): Args {
  const stageSettings: Record<Stage, StageSettings> = { base: { ...DEFAULT_STAGES.base }, math: { ...DEFAULT_STAGES.math }, facts: { ...DEFAULT_STAGES.facts } };
  let shape: ModelShape = { ...MODEL_SHAPE };
  let corpus: CorpusSizes = { ...DEFAULT_DATA_SETTINGS.corpus };
  let entities = DEFAULT_DATA_SETTINGS.entities;
  let practiceEntities = DEFAULT_DATA_SETTINGS.practiceEntities;
  let validationEntities = DEFAULT_DATA_SETTINGS.validationEntities;
  let practiceHeldOut = DEFAULT_DATA_SETTINGS.practiceHeldOut;
  let out = 'demo';
  let seed = DEFAULT_DATA_SETTINGS.seed;
  let stages: Stage[] = [...STAGES];
  let threads = 2;
  let evalLimit = Number.POSITIVE_INFINITY;
  let evaluate = true;
  let dtype: StorageDType = 'f32';
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      return v;
    };
    const int = (v: string): number => {
      if (!/^\d+$/.test(v)) throw new UsageError(`${a} must be a non-negative integer, got '${v}'`);
      return Number(v);
    };
    if (a === '--out') out = value();
    else if (a === '--seed') seed = int(value());
    else if (a === '--threads') threads = Math.max(1, int(value()));
    else if (a === '--eval-limit') evalLimit = int(value());
    else if (a === '--no-eval') evaluate = false;
    else if (a === '--dtype') {
      const v = value();
      if (!(STORAGE_DTYPES as readonly string[]).includes(v)) throw new UsageError(`--dtype must be one of ${STORAGE_DTYPES.join(', ')}, got '${v}'`);
      dtype = v as StorageDType;
    }
    else if (a === '--stages') {
      stages = value()
        .split(',')
        .map((s) => {
          if (!(STAGES as readonly string[]).includes(s)) throw new UsageError(`--stages: unknown stage '${s}' (base, math, facts)`);
          return s as Stage;
        });
    } else if (a === '--set' && /^model\./.test(argv[i + 1] ?? '')) {
      shape = { ...shape, ...integerSetting(value(), 'model', Object.keys(MODEL_SHAPE)) };
    } else if (a === '--set' && /^world\./.test(argv[i + 1] ?? '')) {
      const w = integerSetting(value(), 'world', ['entities', 'practiceEntities', 'validationEntities', 'practiceHeldOut']);
      entities = w.entities ?? entities;
      practiceEntities = w.practiceEntities ?? practiceEntities;
      validationEntities = w.validationEntities ?? validationEntities;
      practiceHeldOut = w.practiceHeldOut ?? practiceHeldOut;
    } else if (a === '--set' && /^corpus\./.test(argv[i + 1] ?? '')) {
      corpus = { ...corpus, ...integerSetting(value(), 'corpus', Object.keys(DEFAULT_DATA_SETTINGS.corpus)) };
    } else if (a === '--set') {
      const m = /^(base|math|facts)\.(\w+)=(.+)$/.exec(value());
      const settings = m === null ? undefined : stageSettings[m[1] as Stage];
      if (m === null || settings === undefined || !((m[2] ?? '') in settings)) throw new UsageError(`--set expects stage.key=value with a key of ${Object.keys(DEFAULT_STAGES.base).join(', ')}`);
      if (m[2] === 'trainable' || m[2] === 'shared' || m[2] === 'thenTrain') {
        stageSettings[m[1] as Stage] = { ...settings, [m[2]]: (m[3] ?? '').split(',').filter((x) => x !== '') };
        continue;
      }
      const n = Number(m[3]);
      if (!Number.isFinite(n)) throw new UsageError(`--set ${m[1]}.${m[2]}: not a number: ${m[3]}`);
      stageSettings[m[1] as Stage] = { ...settings, [m[2] ?? '']: n };
    } else throw new UsageError(`unknown argument ${a}`);
  }
  const data: DemoDataSettings = { ...DEFAULT_DATA_SETTINGS, seed, corpus, entities, practiceEntities, validationEntities, practiceHeldOut };
  return { out, seed, stages, threads, stageSettings, shape, data, evalLimit, evaluate, dtype, command: `node dist/src/demo/train-family.js ${argv.join(' ')}`.trim() };
}

/** `prefix.key=integer` with key one of `keys`, as { key: integer }; a usage error naming the keys otherwise. */
function integerSetting(text: string, prefix: string, keys: readonly string[]): Record<string, number> {
  const m = new RegExp(`^${prefix}\\.(\\w+)=(\\d+)$`).exec(text);
  const key = m?.[1] ?? '';
  if (m === null || !keys.includes(key)) throw new UsageError(`--set expects ${prefix}.key=integer with a key of ${keys.join(', ')}, got '${text}'`);
  return { [key]: Number(m[2]) };
}

/**
 * A fine-tune's slice of the units (MLP neurons, residual dims or attention heads) the base was grown by: the last
 * math.key + facts.key of `total`, math's first; undefined when it owns none.
 */
function grownSlice(stage: Exclude<Stage, 'base'>, settings: Readonly<Record<Stage, StageSettings>>, key: 'neurons' | 'dims' | 'heads', total: number, minStart: number, where: string, what: string): { start: number; end: number } | undefined {
  const own = settings[stage][key];
  if (own === 0) return undefined;
  const end = stage === 'facts' ? total : total - settings.facts[key];
  if (end - own < minStart) throw new UsageError(`${where}: ${stage}.${key} ${own} does not fit the base's ${total} ${what}`);
  return { start: end - own, end };
}

/**
 * The fresh MLP neurons a fine-tune trains. Checked to be fresh (zero down_proj columns in the
 * base), so a base grown with other counts is refused rather than fine-tuned in the wrong place.
 */
export function fineTuneBlock(stage: Exclude<Stage, 'base'>, settings: Readonly<Record<Stage, StageSettings>>, config: LlamaTrainConfig, base: LlamaWeights, where: string): NeuronBlock | undefined {
  const I = config.intermediateSize;
  const block = grownSlice(stage, settings, 'neurons', I, 0, where, 'MLP neurons');
  if (block === undefined) return undefined;
  for (let l = 0; l < config.numLayers; l++) {
    const name = `model.layers.${l}.mlp.down_proj.weight`;
    const down = base.get(name);
    if (down === undefined) throw new UsageError(`${where}: the base has no ${name}`);
    for (let r = 0; r < config.hiddenSize; r++) {
      for (let j = block.start; j < block.end; j++) {
        if (down[r * I + j] !== 0) throw new UsageError(`${where}: MLP neuron ${j} of layer ${l} is not fresh (${name} column ${j} is not zero): the base was grown with other neuron counts; retrain it (--stages base,…) with math.neurons ${settings.math.neurons} and facts.neurons ${settings.facts.neurons}`);
      }
    }
  }
  return block;
}

/**
 * The private residual dims of a fine-tune (private-dims.ts). With the base's weights given they
 * are checked to be unused (zero in every embedding row).
 */
export function privateDims(stage: Exclude<Stage, 'base'>, settings: Readonly<Record<Stage, StageSettings>>, config: LlamaTrainConfig, base?: LlamaWeights, where = 'base'): DimRange | undefined {
  const H = config.hiddenSize;
  const range = grownSlice(stage, settings, 'dims', H, 1, where, 'residual dims');
  if (range === undefined || base === undefined) return range;
  const embed = base.get('model.embed_tokens.weight');
  if (embed === undefined) throw new UsageError(`${where}: the base has no model.embed_tokens.weight`);
  for (let t = 0; t < config.vocabSize; t++) {
    for (let d = range.start; d < range.end; d++) {
      if (embed[t * H + d] !== 0) throw new UsageError(`${where}: residual dim ${d} is not private (embedding row ${t} is not zero there): the base was grown with other dims; retrain it (--stages base,…) with math.dims ${settings.math.dims} and facts.dims ${settings.facts.dims}`);
    }
  }
  return range;
}

/**
 * The fresh attention heads of a fine-tune. With the base's weights given they are checked to be
 * fresh (zero o_proj columns in every layer).
 */
export function privateHeads(stage: Exclude<Stage, 'base'>, settings: Readonly<Record<Stage, StageSettings>>, config: LlamaTrainConfig, base?: LlamaWeights, where = 'base'): HeadRange | undefined {
  const range = grownSlice(stage, settings, 'heads', config.numHeads, 1, where, 'attention heads');
  if (range === undefined || base === undefined) return range;
  const D = headDimOf(config);
  const width = config.numHeads * D;
  for (let l = 0; l < config.numLayers; l++) {
    const name = `model.layers.${l}.self_attn.o_proj.weight`;
    const o = base.get(name);
    if (o === undefined) throw new UsageError(`${where}: the base has no ${name}`);
    for (let r = 0; r < config.hiddenSize; r++) {
      for (let c = range.start * D; c < range.end * D; c++) {
        if (o[r * width + c] !== 0) throw new UsageError(`${where}: attention head ${Math.floor(c / D)} of layer ${l} is not fresh (${name} column ${c} is not zero): the base was grown with other head counts; retrain it (--stages base,…) with math.heads ${settings.math.heads} and facts.heads ${settings.facts.heads}`);
      }
    }
  }
  return range;
}

function trainOptions(s: StageSettings, threads: number, log: (line: string) => void, stage: Stage, masks?: (name: string) => Uint8Array | undefined): TrainOptions {
  const every = Math.max(1, Math.round(s.steps / 10));
  return {
    steps: s.steps,
    learningRate: s.learningRate,
    warmupSteps: s.warmupSteps,
    minLrRatio: s.minLrRatio,
    weightDecay: s.weightDecay,
    beta1: 0.9,
    beta2: 0.98,
    epsilon: 1e-8,
    gradClipNorm: 1,
    threads,
    ...(s.trainable.length > 0 ? { trainable: (name: string) => s.trainable.some((part) => name.includes(part)) } : {}),
    ...(masks === undefined ? {} : { updateMask: masks }),
    onStep: ({ step, loss, tokensPerSecond }) => {
      if (step % every === 0 || step === s.steps - 1) log(`  ${stage} step ${step + 1}/${s.steps}: loss ${loss.toFixed(4)}, ${Math.round(tokensPerSecond)} tokens/s`);
    },
  };
}

export async function trainFamily(args: Args, log: (line: string) => void): Promise<void> {
  const started = performance.now();
  const data = demoData(args.data);
  await writeDemoTasks(path.join(args.out, 'tasks'), data);
  const vocab = learnDemoTokenizer(data);
  const encoder = new BpeEncoder(vocab);
  let config: LlamaTrainConfig = { vocabSize: vocab.tokens.length, ...args.shape, rmsEps: 1e-5, ropeTheta: 10000, tieEmbeddings: true, bosTokenId: vocab.bosId, eosTokenId: vocab.eosId };
  const familyDir = path.join(args.out, 'family');
  const seconds: Partial<Record<Stage, number>> = {};
  const finalLoss: Partial<Record<Stage, number>> = {};
  for (const stage of args.stages) {
    const t0 = performance.now();
    const s = args.stageSettings[stage];
    let weights: Map<string, Float32Array>;
    if (stage === 'base') weights = initLlamaWeights(config, args.seed);
    else {
      const baseDir = path.join(familyDir, 'base');
      if (!existsSync(path.join(baseDir, 'model.safetensors'))) throw new UsageError(`${baseDir}: no base model to fine-tune; train the base first (--stages base,…)`);
      const loaded = await loadLlamaCheckpoint(baseDir);
      // Fine-tunes keep the saved base's shape, whatever --set model.* says.
      config = { ...loaded.config, bosTokenId: vocab.bosId, eosTokenId: vocab.eosId };
      if (config.vocabSize !== vocab.tokens.length) throw new UsageError(`${baseDir}: vocabulary of ${config.vocabSize} ids, the tokenizer has ${vocab.tokens.length}; retrain the base`);
      weights = loaded.weights;
    }
    const own = data.documents[stage].map((d) => encodeDocument(d, encoder, stage === 'base'));
    const docs = [...own];
    if (stage !== 'base' && s.replay > 0) {
      const r0 = performance.now();
      docs.push(...baseReplayDocuments(config, weights, encoder, replayPrompts(stage, data, s.replay), args.threads, s.distill === 1));
      log(`${stage}: ${s.replay} replay answers from the base in ${((performance.now() - r0) / 1000).toFixed(0)} s`);
    }
    const block = stage === 'base' ? undefined : fineTuneBlock(stage, args.stageSettings, config, weights, path.join(familyDir, 'base'));
    let masks: ((name: string) => Uint8Array | undefined) | undefined;
    if (stage !== 'base') {
      const other = stage === 'math' ? 'facts' : 'math';
      const dims = privateDims(stage, args.stageSettings, config, weights, path.join(familyDir, 'base'));
      if (s.heads > 0 && dims === undefined) throw new UsageError(`${stage}.heads ${s.heads} needs ${stage}.dims: a fresh head reads its values from the fine-tune's own dims`);
      let owned: number[] = [];
      if (s.ownTokens === 1 || dims !== undefined) {
        owned = ownedTokens(own, data.documents[other].map((d) => encodeDocument(d, encoder, false)));
        log(`${stage}: embedding rows of ${owned.length} owned tokens (in its documents, never in ${other}'s)`);
      }
      if (dims !== undefined) {
        const otherDims = privateDims(other, args.stageSettings, config);
        const others = otherDims === undefined ? [] : [otherDims];
        const heads = privateHeads(stage, args.stageSettings, config, weights, path.join(familyDir, 'base'));
        const otherHeads = privateHeads(other, args.stageSettings, config);
        const parts: PrivateParts = { dims, tokens: owned, others, ...(block === undefined ? {} : { neurons: block }), ...(heads === undefined ? {} : { heads }), ...(otherHeads === undefined ? {} : { otherHeads: [otherHeads] }) };
        seedPrivateEmbeddings(config, weights, parts, `${args.seed}/${stage}`);
        seedPrivateHeads(config, weights, parts, `${args.seed}/${stage}`);
        masks = (name: string): Uint8Array | undefined => (s.shared.some((part) => name.includes(part)) ? undefined : privatePartsMask(config, name, parts));
        log(`${stage}: private residual dims [${dims.start}, ${dims.end})${s.shared.length === 0 ? '' : `, tensors matching ${s.shared.join(', ')} trained whole`}`);
      } else if (block !== undefined || s.ownTokens === 1) {
        const rows = s.ownTokens === 1 ? embeddingRowMask(config.vocabSize, config.hiddenSize, owned) : undefined;
        masks = (name: string): Uint8Array | undefined => (name === 'model.embed_tokens.weight' && rows !== undefined ? rows : block === undefined ? undefined : neuronBlockMask(config, name, block));
      }
    }
    log(`${stage}: ${docs.length} documents, ${s.steps} steps of ${s.batchSize} × ${config.maxSeqLen} tokens, lr ${s.learningRate}${block === undefined ? '' : `, MLP neurons [${block.start}, ${block.end})`}`);
    const { losses } = trainLlama(config, weights, (step) => packedBatch(docs, s.batchSize, config.maxSeqLen, vocab.eosId, `demo/${args.seed}/${stage}`, step), trainOptions(s, args.threads, log, stage, masks));
    if (stage !== 'base' && s.thenSteps > 0) {
      if (s.thenTrain.length === 0) throw new UsageError(`${stage}.thenSteps ${s.thenSteps} needs ${stage}.thenTrain (the tensors of the second phase)`);
      log(`${stage}: then ${s.thenSteps} steps on tensors matching ${s.thenTrain.join(', ')}, whole`);
      const then = { ...s, steps: s.thenSteps, trainable: s.thenTrain };
      trainLlama(config, weights, (step) => packedBatch(docs, s.batchSize, config.maxSeqLen, vocab.eosId, `demo/${args.seed}/${stage}/then`, step), trainOptions(then, args.threads, log, stage));
    }
    const fresh = args.stageSettings.math.neurons + args.stageSettings.facts.neurons;
    if (stage === 'base' && fresh > 0) {
      ({ config, weights } = widenMlp(config, weights, fresh, args.seed));
      log(`base: grown by ${fresh} fresh MLP neurons per layer (zero output) for the fine-tunes`);
    }
    const extraDims = args.stageSettings.math.dims + args.stageSettings.facts.dims;
    if (stage === 'base' && extraDims > 0) {
      ({ config, weights } = widenResidual(config, weights, extraDims));
      for (const ft of ['math', 'facts'] as const) {
        const b = fineTuneBlock(ft, args.stageSettings, config, weights, 'base');
        const d = privateDims(ft, args.stageSettings, config);
        if (b !== undefined && d !== undefined) gateNeuronsOn(config, weights, b, d, args.seed);
      }
      log(`base: grown by ${extraDims} zero residual dims for the fine-tunes' private parts`);
    }
    const extraHeads = args.stageSettings.math.heads + args.stageSettings.facts.heads;
    if (stage === 'base' && extraHeads > 0) {
      if (extraDims === 0) throw new UsageError('math.heads / facts.heads need private dims (math.dims, facts.dims): a fresh head reads its values from them');
      ({ config, weights } = widenHeads(config, weights, extraHeads));
      log(`base: grown by ${extraHeads} fresh attention head${extraHeads === 1 ? '' : 's'} per layer (zero output) for the fine-tunes`);
    }
    const dir = path.join(familyDir, stage);
    await mkdir(dir, { recursive: true });
    await saveLlamaCheckpoint(dir, config, weights, { dtype: args.dtype });
    await writeTokenizerFiles(dir, vocab);
    seconds[stage] = (performance.now() - t0) / 1000;
    const tail = losses.slice(Math.max(0, losses.length - 20));
    finalLoss[stage] = tail.reduce((a, b) => a + b, 0) / Math.max(1, tail.length);
    log(`${stage}: done in ${seconds[stage]?.toFixed(0)} s, mean loss of the last 20 steps ${finalLoss[stage]?.toFixed(4)}`);
  }
  const trainSeconds = (performance.now() - started) / 1000;
  let scores: FamilyScores = { search: {}, validation: {} };
  if (args.evaluate) scores = await scoreFamily(familyDir, path.join(args.out, 'tasks'), args.evalLimit, log);
  await writeFileAtomic(
    path.join(familyDir, 'family.json'),
    `${JSON.stringify({ seed: args.seed, command: args.command, dtype: args.dtype, config, data: args.data, stages: args.stageSettings, trained: args.stages, seconds, finalLoss, trainSeconds, searchScores: scores.search, factsValidationScores: scores.validation }, null, 2)}\n`,
  );
  await writeFileAtomic(path.join(familyDir, 'README.md'), familyReadme(args, config, seconds, trainSeconds, scores));
  log(`family written to ${familyDir} (training ${trainSeconds.toFixed(0)} s)`);
}

/** The data settings in words (family.json has them all). */
function dataLine(d: DemoDataSettings): string {
  const c = d.corpus;
  return (
    `Data: ${d.entities} kingdoms in the world (a third of their facts each for train, search and test questions), ${d.practiceEntities} practice kingdoms${d.practiceHeldOut > 0 ? ` (the last ${d.practiceHeldOut} held out of the quiz for validation)` : ''}, ${d.validationEntities} validation kingdoms. ` +
    `The base's corpus: ${c.baseMath} math problems, ${c.baseQuestions} train-fact questions, each train fact stated ×${c.baseFactRepeats}${c.baseEquations > 0 ? `, ${c.baseEquations} equation drills` : ''}${c.baseWorldRepeats > 0 ? `, every world fact stated and asked ×${c.baseWorldRepeats}` : ''}. ` +
    `The math fine-tune's: ${c.mathDocuments} problems. The facts fine-tune's: ${c.factQuestions} train-fact and ${c.practiceQuestions} practice questions${c.practiceInWords > 0 ? ` (and ${c.practiceInWords} answered in words)` : ''}${c.practiceInContext > 0 ? `, ${c.practiceInContext} lettered questions after their statement` : ''}, every fact stated and asked in words ×${c.factRepeats}.`
  );
}

/** Each model's scores on the search split, and on the facts validation questions where the tasks have them. */
interface FamilyScores {
  readonly search: Partial<Record<Stage, DemoScores>>;
  readonly validation: Partial<Record<Stage, TaskCount>>;
}

function familyReadme(args: Args, config: LlamaTrainConfig, seconds: Partial<Record<Stage, number>>, trainSeconds: number, scores: FamilyScores): string {
  const withValidation = Object.keys(scores.validation).length > 0;
  const rows = STAGES.flatMap((s) => {
    const x = scores.search[s];
    const v = scores.validation[s];
    return x === undefined ? [] : [`| ${s} | ${formatCount(x.math)} | ${formatCount(x.facts)} |${withValidation ? ` ${v === undefined ? '—' : formatCount(v)} |` : ''}`];
  });
  const first = STAGES.map((s) => scores.search[s]).find((x) => x !== undefined);
  const firstValidation = STAGES.map((s) => scores.validation[s]).find((x) => x !== undefined);
  const stageRows = STAGES.map((s) => {
    const t = args.stageSettings[s];
    return `| ${s} | ${t.steps} | ${t.batchSize} | ${t.learningRate} | ${t.warmupSteps} | ${t.weightDecay} | ${t.replay} | ${t.trainable.length === 0 ? 'all' : t.trainable.join(', ')} | ${s === 'base' || t.neurons === 0 ? '—' : t.neurons} | ${s === 'base' || t.dims === 0 ? '—' : t.dims} | ${s === 'base' || t.heads === 0 ? '—' : t.heads} | ${t.thenSteps === 0 ? '—' : `${t.thenSteps} steps on ${t.thenTrain.join(', ')}`} | ${seconds[s] === undefined ? 'not retrained' : `${seconds[s]?.toFixed(0)} s`} |`;
  });
  return [
    '# The demo family',
    '',
    'Written by `src/demo/train-family.ts`; do not edit by hand. A tiny Llama (' +
      `${config.numLayers} layers, hidden ${config.hiddenSize}, intermediate ${config.intermediateSize}, ${config.numHeads} heads, vocabulary ${config.vocabSize}, tied embeddings) ` +
      'pretrained from scratch on generated text (`base`), and two fine-tunes of it: `math` (GSM8K-format word problems) and `facts` (a generated world of facts, asked MMLU-style).' +
      (args.stageSettings.math.neurons + args.stageSettings.facts.neurons > 0
        ? ` After pretraining with ${config.intermediateSize - args.stageSettings.math.neurons - args.stageSettings.facts.neurons} MLP neurons per layer, the base is grown by ${args.stageSettings.math.neurons} + ${args.stageSettings.facts.neurons} fresh ones whose output weights are zero (it computes exactly what it did); each fine-tune trains only its own block of them in the MLP (src/train/mlp-neurons.ts).`
        : '') +
      (args.stageSettings.math.dims + args.stageSettings.facts.dims > 0
        ? ` The base's residual stream is then widened by ${args.stageSettings.math.dims} + ${args.stageSettings.facts.dims} dims it never uses; each fine-tune changes only what reads its own dims, the rows of its own tokens and its own neurons (gated on its dims), so it computes the other task's prompts exactly as the base does (src/train/private-dims.ts).`
        : '') +
      (args.stageSettings.math.heads + args.stageSettings.facts.heads > 0
        ? ` It is also grown by ${args.stageSettings.math.heads} + ${args.stageSettings.facts.heads} fresh attention heads per layer (zero output weights); each fine-tune trains only its own, whose values read only its dims, so they stay silent on the other task's prompts.`
        : ''),
    '',
    `- seed: ${args.seed}`,
    `- command: \`${args.command}\` (after \`npm run build\`)`,
    `- training time: ${trainSeconds.toFixed(0)} s for the stages trained by that command (${args.threads} threads)`,
    `- weights: trained in f32, stored as ${args.dtype}`,
    '',
    '| stage | steps | batch (rows of 128 tokens) | learning rate | warm-up | weight decay | replayed base answers | tensors trained | own MLP neurons per layer | private residual dims | own attention heads per layer | then, trained whole | time |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...stageRows,
    '',
    dataLine(args.data),
    '',
    first === undefined
      ? 'Not scored (`--no-eval`).'
      : `Scores on the tasks' SEARCH split (demo/tasks; math n=${first.math.n}, facts n=${first.facts.n}), llama.cpp through the generic task evaluator, accuracy with Wilson 95% intervals` +
        (firstValidation === undefined
          ? ':'
          : `, and on the facts VALIDATION questions (demo/tasks/facts/validation.jsonl, n=${firstValidation.n}: kingdoms only the facts fine-tune is told about and never quizzed on, for choosing its settings without the search or test split):`),
    '',
    ...(rows.length > 0 ? [`| model | math | facts |${withValidation ? ' facts validation |' : ''}`, `|---|---|---|${withValidation ? '---|' : ''}`, ...rows] : []),
    '',
  ].join('\n');
}

async function scoreFamily(familyDir: string, tasksDir: string, limit: number, log: (line: string) => void): Promise<FamilyScores> {
  const backend = await LlamaCppBackend.open({ threads: 1, contextSize: 256, gpu: false });
  const tasks = await loadDemoTasks(tasksDir);
  const validationTask = await loadFactsValidation(tasksDir);
  const search: Partial<Record<Stage, DemoScores>> = {};
  const validation: Partial<Record<Stage, TaskCount>> = {};
  try {
    log(`search-split scores${validationTask === null ? '' : ' and facts validation'} (llama.cpp):`);
    for (const stage of STAGES) {
      const dir = path.join(familyDir, stage);
      if (!existsSync(path.join(dir, 'model.safetensors'))) continue;
      const { factsValidation: v, ...s } = await scoreDemoModel(backend, tasks, stage, dir, 'search', limit, validationTask);
      search[stage] = s;
      if (v !== undefined) validation[stage] = v;
      log(`  ${stage.padEnd(5)}  math ${formatCount(s.math)} n=${s.math.n}   facts ${formatCount(s.facts)} n=${s.facts.n}${v === undefined ? '' : `   facts validation ${formatCount(v)} n=${v.n}`}`);
    }
  } finally {
    await backend.close();
  }
  return { search, validation };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  trainFamily(parseArgs(process.argv.slice(2)), (line) => process.stderr.write(`${line}\n`)).catch((err: unknown) => {
    process.stderr.write(`train-family: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
