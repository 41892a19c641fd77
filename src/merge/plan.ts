import { dtypeFromMergekit, type FloatDType } from '../tensors/dtype.js';
import { withNumHiddenLayers } from '../tensors/hf-config.js';
import { layerTensorName, tensorRole } from '../tensors/tensor-role.js';
import { ConfigError } from './config-issue.js';
import { documentInputs, documentModelRefs, stageGraph, validateMergeConfig } from './config-validate.js';
import { stringifyMergeConfig, type MergeConfig, type MergeDocument } from './config.js';
import { PlanError, type PlanIssue } from './plan-error.js';
import { planTokenizer } from './plan-tokenizer.js';
import {
  defaultCheckpointLoader,
  openSources,
  stageSource,
  type CheckpointLoader,
  type PlanSource,
} from './plan-source.js';
import { buildTensorTask, type TensorPlanContext, type TensorPlanItem } from './plan-tensor.js';
import { getMethodSpec } from './registry.js';
import { layerPosition, type ParameterMap } from './resolve.js';
import type { MergePlan, PlannedStage, TensorTask } from './task.js';

export interface ResolvePlanOptions {
  /** Path of the config file: relative model paths resolve against its folder; messages name it. */
  readonly configFile: string;
  /** Seed of the counter-based random streams (DARE / DELLA masks). */
  readonly seed: number;
  /** The YAML text, written beside the output as mergekit_config.yml. Default: the config re-stringified. */
  readonly configText?: string;
  /**
   * Opens a model reference. Default: openCheckpoint with baseDir = the config file's folder,
   * `hfHome` and `offline`. Search loops pass a caching loader.
   */
  readonly loadCheckpoint?: CheckpointLoader;
  /** Hugging Face home for hub ids (default loader only). Default: $HF_HOME / ~/.cache/huggingface. */
  readonly hfHome?: string;
  /** Never touch the network for hub ids (default loader only). Default: $HF_HUB_OFFLINE. */
  readonly offline?: boolean;
  /** Receives non-fatal findings (skipped tensors, truncated embeddings, mergekit quirks). Default: ignored. */
  readonly onWarning?: (message: string) => void;
}

/**
 * Resolves a mergekit config into a MergePlan from checkpoint headers alone: one TensorTask per
 * output tensor with parameters already interpolated and filtered (docs/mergekit-semantics.md).
 * A multi-document config is planned as one graph: later documents take earlier stages' tasks
 * as StageTensorInputs, and every named document is also returned as a PlannedStage.
 * Every problem is collected and thrown as one ConfigError / PlanError before anything is written.
 */
export async function resolvePlan(config: MergeConfig, options: ResolvePlanOptions): Promise<MergePlan> {
  const file = options.configFile;
  const configIssues = validateMergeConfig(config).filter((i) => i.severity === 'error');
  if (configIssues.length > 0) throw new ConfigError(file, configIssues);
  const graph = stageGraph(config);
  if (Array.isArray(graph)) throw new ConfigError(file, graph);

  const stageNames = new Set(config.documents.flatMap((d) => (d.name === undefined ? [] : [d.name])));
  const refs = [...new Set(config.documents.flatMap((d) => documentModelRefs(d)))].filter((r) => !stageNames.has(r));
  const load = options.loadCheckpoint ?? defaultCheckpointLoader(file, options);
  const sources = await openSources(refs, load, file);

  const warn = options.onWarning ?? ((): void => {});
  const issues: PlanIssue[] = [];
  const stages: PlannedStage[] = [];
  let final: PlannedDocument | undefined;
  // Stages that could not be planned: documents using them are skipped (their issues are already recorded).
  const failed = new Set<string>();
  for (const index of graph.order) {
    const doc = config.documents[index];
    if (!doc) continue;
    const planned = documentModelRefs(doc).some((r) => failed.has(r)) ? undefined : planDocument(doc, sources, { seed: options.seed, issues, warn });
    if (!planned) {
      if (doc.name !== undefined) failed.add(doc.name);
      continue;
    }
    if (doc.name !== undefined) {
      stages.push({ name: doc.name, tasks: planned.tasks, outputConfig: planned.outputConfig, ...tokenizerOf(planned) });
      sources.set(doc.name, stageSource(doc.name, planned.tasks, planned.numLayers, planned.outputConfig, planned.tokenizerDir, planned.tokenizerFiles, planned.tokenizerGenerated));
    }
    if (index === graph.finalIndex) final = planned;
  }
  if (issues.length > 0) throw new PlanError(file, issues);
  if (!final) throw new PlanError(file, [{ code: 'UNSUPPORTED', message: 'the config has no final document' }]);
  return {
    tasks: final.tasks,
    outputConfig: final.outputConfig,
    ...tokenizerOf(final),
    configText: options.configText ?? stringifyMergeConfig(config),
    seed: options.seed,
    stages,
  };
}

/** A planned document's tokenizer files, as a plan or stage carries them. */
function tokenizerOf(d: PlannedDocument): Pick<MergePlan, 'tokenizerDir' | 'tokenizerFiles' | 'tokenizerGenerated'> {
  return { tokenizerDir: d.tokenizerDir, tokenizerFiles: d.tokenizerFiles, ...(d.tokenizerGenerated !== undefined ? { tokenizerGenerated: d.tokenizerGenerated } : {}) };
}

interface PlannedDocument {
  readonly tasks: TensorTask[];
  readonly outputConfig: Readonly<Record<string, unknown>>;
  readonly numLayers: number;
  readonly tokenizerDir: string | null;
  readonly tokenizerFiles: readonly string[];
  readonly tokenizerGenerated?: Readonly<Record<string, string>>;
}

/** A slice with its sources' layer ranges resolved (models: becomes one slice, §2). */
interface PlanSlice {
  readonly sources: readonly { readonly model: string; readonly start: number; readonly end: number; readonly parameters?: ParameterMap }[];
  readonly base?: string;
  readonly parameters?: ParameterMap;
  readonly path: string;
  readonly length: number;
}

function planDocument(
  doc: MergeDocument,
  sources: ReadonlyMap<string, PlanSource>,
  env: { seed: number; issues: PlanIssue[]; warn: (m: string) => void },
): PlannedDocument | undefined {
  const spec = getMethodSpec(doc.merge_method);
  const where = doc.name === undefined ? '' : `stage '${doc.name}': `;
  const issues: PlanIssue[] = [];
  const push = (i: PlanIssue): void => {
    issues.push({ code: i.code, message: `${where}${i.message}` });
  };
  const inputs = documentInputs(doc);
  const slices = planSlices(doc, inputs, sources, push);
  if (!slices) {
    env.issues.push(...issues);
    return undefined;
  }
  // The output vocabulary comes first: with tokenizer_source, embeddings are permuted into it (§1.5).
  const donorRef = doc.base_model ?? slices[0]?.sources[0]?.model ?? '';
  const tokenizer = planTokenizer(doc, sources, donorRef, { push, warn: (m) => env.warn(`${where}${m}`) });
  if (issues.length > 0) {
    env.issues.push(...issues);
    return undefined;
  }
  const dtype: FloatDType | undefined = doc.dtype === undefined ? undefined : dtypeFromMergekit(doc.dtype);
  const outDType: FloatDType | undefined = doc.out_dtype === undefined ? undefined : dtypeFromMergekit(doc.out_dtype);
  const ctx: TensorPlanContext = {
    spec,
    sources,
    ...(doc.parameters ? { topParameters: doc.parameters } : {}),
    ...(dtype ? { dtype } : {}),
    ...(outDType ? { outDType } : {}),
    seed: env.seed,
    keyPrefix: doc.name === undefined ? '' : `${doc.name}/`,
    issues,
    warn: (m) => env.warn(`${where}${m}`),
    ...(tokenizer.vocabulary ? { vocabulary: tokenizer.vocabulary } : {}),
  };
  const moduleParameters = inputs.moduleParameters;
  const items: TensorPlanItem[] = [];
  const sliceItem = (s: PlanSlice, output: string, t: number, isEmbed: boolean, optional: boolean, entries: TensorPlanItem['entries']): TensorPlanItem => ({
    output,
    entries,
    t,
    ...(s.parameters ? { sliceParameters: s.parameters } : {}),
    ...(moduleParameters ? { moduleParameters } : {}),
    ...(s.base !== undefined ? { baseModel: s.base } : {}),
    isEmbed,
    optional,
  });

  // Pre-weights: the first slice's models and parameters at t = 0 (§0.1).
  const first = slices[0];
  const last = slices[slices.length - 1];
  if (!first || !last) return undefined;
  const firstTemplate = templateSource(first, sources);
  const embeds = firstTemplate.tensorNames.filter((n) => tensorRole(n).kind === 'embedding');
  if (embeds.length === 0) push({ code: 'TENSOR_NOT_FOUND', message: `model ${firstTemplate.label} has no embedding tensor (e.g. model.embed_tokens.weight)` });
  for (const name of embeds) {
    items.push(sliceItem(first, name, 0, true, false, first.sources.map((s) => entry(s, name, []))));
  }

  // Layers, renumbered consecutively across slices (frankenmerges); t per slice (§0.1).
  const sourceLayers: number[] = [];
  const layerIndexes = new Map<PlanSource, Map<number, string[]>>();
  let outLayer = 0;
  for (const s of slices) {
    const template = templateSource(s, sources);
    const tStart = s.sources.find((x) => x.model === template.ref)?.start ?? 0;
    const byLayer = layerIndex(template, layerIndexes);
    for (let i = 0; i < s.length; i++) {
      const names = byLayer.get(tStart + i) ?? [];
      if (names.length === 0) push({ code: 'TENSOR_NOT_FOUND', message: `model ${template.label} has no tensors for layer ${tStart + i}` });
      for (const name of names) {
        const entries = s.sources.map((src) => entry(src, layerTensorName(name, src.start + i), []));
        items.push(sliceItem(s, layerTensorName(name, outLayer), layerPosition(i, s.length), false, false, entries));
      }
      sourceLayers.push(tStart + i);
      outLayer++;
    }
  }

  // Post-weights: the last slice's models and parameters at t = 0. mergekit zips the last slice's
  // models with a list as long as the FIRST slice's sources, so extra models are dropped.
  let postSources = last.sources;
  if (last.sources.length > first.sources.length) {
    postSources = last.sources.slice(0, first.sources.length);
    ctx.warn(`final norm and lm_head take only the first ${first.sources.length} source(s) of the last slice (${postSources.map((s) => s.model).join(', ')}), as mergekit does`);
  }
  const postSlice: PlanSlice = { ...last, sources: postSources };
  const lastTemplate = templateSource(postSlice, sources);
  const norms = lastTemplate.tensorNames.filter((n) => tensorRole(n).kind === 'final_norm');
  if (norms.length === 0) push({ code: 'TENSOR_NOT_FOUND', message: `model ${lastTemplate.label} has no final norm tensor (e.g. model.norm.weight)` });
  for (const name of norms) items.push(sliceItem(postSlice, name, 0, false, false, postSources.map((s) => entry(s, name, []))));
  const headName = postSources
    .map((s) => sources.get(s.model)?.tensorNames.find((n) => tensorRole(n).kind === 'lm_head'))
    .find((n) => n !== undefined);
  if (headName !== undefined) {
    // lm_head is optional and tied to the embeddings: tied inputs lend their embeddings (§1.5).
    const entries = postSources.map((s) => entry(s, headName, sources.get(s.model)?.tensorNames.filter((n) => tensorRole(n).kind === 'embedding') ?? []));
    items.push(sliceItem(postSlice, headName, 0, true, true, entries));
  }
  for (const name of firstTemplate.tensorNames) {
    if (tensorRole(name).kind === 'other') ctx.warn(`${firstTemplate.label}: tensor ${name} is not part of the decoder layout and is not merged`);
  }

  const tasks: TensorTask[] = [];
  for (const item of items) {
    const task = buildTensorTask(item, ctx);
    if (task) tasks.push(task);
  }
  env.issues.push(...issues);
  if (issues.length > 0) return undefined;

  // config.json: the base's (else the first model's), with the new layer count (§2) and dtype.
  const donor = sources.get(donorRef);
  const donorLayers = donor?.numLayers ?? 0;
  const raw = donor?.rawConfig ?? {};
  const mapped = sourceLayers.every((l) => l < donorLayers) ? sourceLayers : undefined;
  const outputConfig: Record<string, unknown> = withNumHiddenLayers(raw, outLayer, mapped);
  const torchDtype = doc.out_dtype ?? doc.dtype;
  // tokenizer_source: the output vocabulary's size (§1.5).
  // With pad_to_multiple_of, the padded size (mergekit's _update_config_vocab); the tokenizer files get no padding tokens.
  if (tokenizer.vocabulary) outputConfig['vocab_size'] = tokenizer.vocabulary.rows;
  if (torchDtype !== undefined) {
    outputConfig['torch_dtype'] = torchDtype;
    if ('dtype' in outputConfig) outputConfig['dtype'] = torchDtype;
  }
  const head = tasks.find((t) => tensorRole(t.output).kind === 'lm_head');
  if (head && outputConfig['tie_word_embeddings'] === true) {
    ctx.warn(`${head.output} is written but config.json (from ${donorRef}) says tie_word_embeddings: true, so transformers will ignore it (mergekit does the same)`);
  }
  if (doc.chat_template !== undefined) ctx.warn('chat_template is not applied yet: the tokenizer files are copied unchanged');
  return { tasks, outputConfig, numLayers: outLayer, tokenizerDir: tokenizer.dir, tokenizerFiles: tokenizer.files, ...(tokenizer.generated !== undefined ? { tokenizerGenerated: tokenizer.generated } : {}) };
}

function entry(
  s: PlanSlice['sources'][number],
  inputName: string,
  fallbacks: readonly string[],
): TensorPlanItem['entries'][number] {
  return { model: s.model, inputName, fallbacks, ...(s.parameters ? { parameters: s.parameters } : {}) };
}

/** The model whose tensor list defines a slice's layout: the base when it is a source, else the first. */
function templateSource(s: PlanSlice, sources: ReadonlyMap<string, PlanSource>): PlanSource {
  const ref = s.base !== undefined && s.sources.some((x) => x.model === s.base) ? s.base : (s.sources[0]?.model ?? '');
  const src = sources.get(ref);
  if (!src) throw new Error(`internal: model ${ref} was not opened`);
  return src;
}

/** Layer index → tensor names of that layer, in the model's order. */
function layerIndex(src: PlanSource, cache: Map<PlanSource, Map<number, string[]>>): Map<number, string[]> {
  const cached = cache.get(src);
  if (cached) return cached;
  const out = new Map<number, string[]>();
  for (const name of src.tensorNames) {
    const role = tensorRole(name);
    if (role.kind !== 'layer') continue;
    const list = out.get(role.layer) ?? [];
    list.push(name);
    out.set(role.layer, list);
  }
  cache.set(src, out);
  return out;
}

/** Resolves `models:` into one slice and checks every layer range against its model (§2). */
function planSlices(
  doc: MergeDocument,
  inputs: ReturnType<typeof documentInputs>,
  sources: ReadonlyMap<string, PlanSource>,
  push: (i: PlanIssue) => void,
): PlanSlice[] | undefined {
  const layersOf = (ref: string): number => sources.get(ref)?.numLayers ?? 0;
  let slices: PlanSlice[];
  if (inputs.models) {
    const list = inputs.models.map((m) => ({ model: m.model, start: 0, end: layersOf(m.model), ...(m.parameters ? { parameters: m.parameters } : {}) }));
    const base = doc.base_model;
    if (base !== undefined && !list.some((m) => m.model === base)) list.push({ model: base, start: 0, end: layersOf(base) });
    const lengths = list.map((m) => m.end);
    if (new Set(lengths).size > 1) {
      push({
        code: 'SLICE_LENGTHS',
        message: `models of different depths cannot be merged with 'models:' (${list.map((m) => `${m.model}: ${m.end} layers`).join(', ')}); use slices`,
      });
      return undefined;
    }
    slices = [{ sources: list, ...(base !== undefined ? { base } : {}), path: 'models', length: lengths[0] ?? 0 }];
  } else {
    slices = (inputs.slices ?? []).map((s, i) => ({
      sources: s.sources.map((src) => ({ model: src.model, start: src.layer_range[0], end: src.layer_range[1], ...(src.parameters ? { parameters: src.parameters } : {}) })),
      ...((s.base_model ?? doc.base_model) !== undefined ? { base: s.base_model ?? doc.base_model } : {}),
      ...(s.parameters ? { parameters: s.parameters } : {}),
      path: `slices[${i}]`,
      length: (s.sources[0]?.layer_range[1] ?? 0) - (s.sources[0]?.layer_range[0] ?? 0),
    }));
  }
  let ok = true;
  for (const s of slices) {
    s.sources.forEach((src, j) => {
      const n = layersOf(src.model);
      if (src.end > n) {
        ok = false;
        const label = sources.get(src.model)?.label ?? src.model;
        push({ code: 'LAYER_RANGE', message: `${s.path}.sources[${j}].layer_range [${src.start}, ${src.end}] is outside model ${label}, which has ${n} layers` });
      }
    });
  }
  return ok ? slices : undefined;
}
