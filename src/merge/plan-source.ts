import path from 'node:path';
import { EvoError } from '../errors.js';
import { openCheckpoint, type ModelCheckpoint } from '../tensors/checkpoint.js';
import type { DType } from '../tensors/dtype.js';
import type { TensorInput, TensorTask } from './task.js';

/**
 * What the planner needs to know about an input model, whether it is a checkpoint on disk or a
 * named stage of the same config (computed in memory). Headers only: no tensor data.
 */
export interface SourceTensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** The task input reading this tensor, tagged with the model reference used in the config. */
  input(modelRef: string): TensorInput;
}

export interface PlanSource {
  /** The reference as written in the config. */
  readonly ref: string;
  /** For messages: the reference and where it resolved to. */
  readonly label: string;
  readonly numLayers: number;
  /** config.json of the model (a stage's output config for stages). */
  readonly rawConfig: Readonly<Record<string, unknown>>;
  readonly tensors: ReadonlyMap<string, SourceTensor>;
  /** Tensor names in reading order. */
  readonly tensorNames: readonly string[];
  readonly tokenizerDir: string | null;
  readonly tokenizerFiles: readonly string[];
  /**
   * A stage's generated tokenizer files (union, added or stripped tokens), by name: what a later
   * document reads and copies instead of tokenizerDir's file of that name.
   */
  readonly tokenizerGenerated?: Readonly<Record<string, string>>;
  /** The stage name when this source is an earlier document of the same config. */
  readonly stage?: string;
}

/** Opens a model reference as written in a config. */
export type CheckpointLoader = (ref: string) => Promise<ModelCheckpoint>;

export function checkpointSource(ref: string, ckpt: ModelCheckpoint): PlanSource {
  const tensors = new Map<string, SourceTensor>();
  for (const [name, t] of ckpt.tensors) {
    tensors.set(name, {
      dtype: t.dtype,
      shape: t.shape,
      input: (model) => ({
        kind: 'file',
        model,
        file: t.file,
        tensor: t.name,
        dtype: t.dtype,
        shape: t.shape,
        byteOffset: t.byteOffset,
        byteLength: t.byteLength,
      }),
    });
  }
  const files = [...ckpt.tokenizerFiles];
  if (ckpt.generationConfigFile !== undefined) files.push(ckpt.generationConfigFile);
  return {
    ref,
    label: ref === ckpt.dir ? ref : `'${ref}' (${ckpt.dir})`,
    numLayers: ckpt.config.numHiddenLayers,
    rawConfig: ckpt.config.raw,
    tensors,
    tensorNames: [...ckpt.tensors.keys()],
    tokenizerDir: files.length > 0 ? ckpt.dir : null,
    tokenizerFiles: files,
  };
}

/** A named stage seen as a model: its tensors are its tasks, handed on as StageTensorInputs. */
export function stageSource(
  name: string,
  tasks: readonly TensorTask[],
  numLayers: number,
  rawConfig: Readonly<Record<string, unknown>>,
  tokenizerDir: string | null,
  tokenizerFiles: readonly string[],
  tokenizerGenerated?: Readonly<Record<string, string>>,
): PlanSource {
  const tensors = new Map<string, SourceTensor>();
  for (const task of tasks) {
    tensors.set(task.output, {
      dtype: task.outDType,
      shape: task.outShape,
      input: (model) => ({ kind: 'stage', model, task }),
    });
  }
  return {
    ref: name,
    label: `stage '${name}'`,
    numLayers,
    rawConfig,
    tensors,
    tensorNames: tasks.map((t) => t.output),
    tokenizerDir,
    tokenizerFiles,
    ...(tokenizerGenerated === undefined ? {} : { tokenizerGenerated }),
    stage: name,
  };
}

/** The default loader: local paths relative to the config file's folder, hub ids via the HF cache. */
export function defaultCheckpointLoader(configFile: string, options: { hfHome?: string; offline?: boolean }): CheckpointLoader {
  const baseDir = path.dirname(path.resolve(configFile));
  return (ref) =>
    openCheckpoint(ref, {
      baseDir,
      ...(options.hfHome === undefined ? {} : { hfHome: options.hfHome }),
      ...(options.offline === undefined ? {} : { offline: options.offline }),
    });
}

/**
 * Opens every reference once, collecting all failures so that one error names every missing
 * model (code of the first failure, e.g. NOT_FOUND, with the reference and the config file).
 */
export async function openSources(
  refs: readonly string[],
  load: CheckpointLoader,
  configFile: string,
): Promise<Map<string, PlanSource>> {
  const out = new Map<string, PlanSource>();
  const failures: { code: string; message: string; cause: unknown }[] = [];
  for (const ref of refs) {
    try {
      out.set(ref, checkpointSource(ref, await load(ref)));
    } catch (err) {
      const code = err instanceof EvoError ? err.code : 'MODEL_NOT_FOUND';
      const why = err instanceof Error ? (err.message.split('\n')[0] ?? err.message) : String(err);
      failures.push({ code, message: `${configFile}: cannot open model '${ref}': ${why}`, cause: err });
    }
  }
  const first = failures[0];
  if (first) {
    const message = failures.length === 1 ? first.message : failures.map((f) => f.message).join('\n  ');
    throw new EvoError(first.code, failures.length === 1 ? message : `${failures.length} models cannot be opened\n  ${message}`, { cause: first.cause });
  }
  return out;
}
