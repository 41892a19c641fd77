/**
 * How a phase of a merge is cut into work units for the pool: whole tasks, or row chunks of the
 * ones that can be cut (row-chunks.ts), each with its output slot, cost estimate and input bytes.
 * Chunks of a 'two-pass' task are held back with the collector of their statistics
 * (task-vector-stats.ts) until its passes have run.
 */
import type { AnyStatPass, ChunkContext, ChunkStatsCollector } from './methods/chunk-stats.js';
import { gramBlockRows } from './methods/gram-blocks.js';
import { GramCollector } from './methods/gram-stats.js';
import { SceCollector } from './methods/sce.js';
import { taskVectorSparsity } from './methods/task-vector.js';
import { TensorStatsCollector } from './methods/task-vector-stats.js';
import { estimateWorkingSetBytes, inputBytesOf } from './memory-budget.js';
import { KERNEL_DTYPE } from './native/numeric.js';
import type { TensorSlot } from './output-dir.js';
import { rowSplitOf, splitRows } from './row-chunks.js';
import type { FileTensorInput, PermutationSource, StageTensorInput, TensorInput, TensorTask } from './task.js';
import type { OutputSlot } from './worker-protocol.js';

/** One piece of work for a worker: a whole task or a row chunk of one. */
export interface WorkUnit {
  readonly task: TensorTask;
  readonly output: OutputSlot;
  /** Estimated peak working set, in bytes (memory-budget.ts). */
  readonly costBytes: number;
  /** Bytes of input the unit reads. */
  readonly inputBytes: number;
  /** True on the last unit of a tensor, so progress counts each tensor once. */
  readonly completesTensor: boolean;
  /** 'merge' computes and writes the unit; a statistics pass only counts over its rows. */
  readonly pass: 'merge' | AnyStatPass;
  /** For a chunk of a 'two-pass' or 'gram' tensor: the statistics gathered so far. */
  readonly chunk: ChunkContext | null;
}

/** A tensor merged in row chunks after statistics passes over them. */
export interface TwoPassTensor {
  readonly task: TensorTask;
  /** Its chunks' merge units in row order, without statistics yet (chunk: null). */
  readonly chunks: readonly WorkUnit[];
  readonly collector: ChunkStatsCollector;
}

/** The units of one phase that can run at once, and the two-pass tensors whose chunks wait for statistics. */
export interface PhaseUnits {
  readonly units: readonly WorkUnit[];
  readonly twoPass: readonly TwoPassTensor[];
}

/**
 * The units of one phase: each task whole, or in row chunks of about chunkBytes when it can be cut
 * and is larger. A two-pass task is cut only when its working set is above twoPassMinBytes as well:
 * its statistics passes read the chunks again, which a task that fits a thread's share of the
 * budget does not need. Throws MergeComputeError when a two-pass task's parameters select nothing.
 */
export function planWorkUnits(
  tasks: readonly TensorTask[],
  slots: ReadonlyMap<string, TensorSlot>,
  chunkBytes: number,
  twoPassMinBytes: number = chunkBytes,
): PhaseUnits {
  const units: WorkUnit[] = [];
  const twoPass: TwoPassTensor[] = [];
  for (const task of tasks) {
    const slot = slots.get(task.output);
    if (slot === undefined) throw new Error(`no output slot for ${task.output}`);
    const rows = task.outShape[0] ?? 1;
    const est = estimateWorkingSetBytes(task);
    const split = rowSplitOf(task);
    const passes = split === 'two-pass' || split === 'gram';
    const cut = est > chunkBytes && task.outShape.length > 0 && (!passes || est > twoPassMinBytes);
    let targetRows = cut ? Math.max(1, Math.floor((rows * chunkBytes) / est)) : rows;
    if (split === 'gram' && cut) {
      // Chunk boundaries on gram block boundaries, so the chunks' block sums are the whole tensor's.
      const blockRows = gramBlockRows(task.outShape);
      targetRows = Math.max(blockRows, targetRows - (targetRows % blockRows));
    }
    const chunks = splitRows(task, targetRows);
    const rowBytes = task.outShape.length > 0 && rows > 0 ? slot.byteLength / rows : slot.byteLength;
    const held = chunks.length > 1 && passes;
    const chunkUnits: WorkUnit[] = [];
    chunks.forEach((c, i) => {
      chunkUnits.push({
        task: c.task,
        output: {
          fd: slot.fd,
          directFd: slot.directFd,
          byteOffset: slot.byteOffset + c.rowStart * rowBytes,
          byteLength: chunks.length === 1 ? slot.byteLength : c.rows * rowBytes,
        },
        costBytes: chunks.length === 1 ? est : estimateWorkingSetBytes(c.task),
        inputBytes: inputBytesOf(c.task),
        completesTensor: i === chunks.length - 1,
        pass: 'merge',
        chunk: null,
      });
    });
    if (!held) {
      units.push(...chunkUnits);
      continue;
    }
    twoPass.push({ task, chunks: chunkUnits, collector: statsCollector(task, split, chunks.map((c) => c.rows)) });
  }
  return { units, twoPass };
}

/** The collector of a tensor's statistics over chunks of `chunkRows` rows each. */
function statsCollector(task: TensorTask, split: 'two-pass' | 'gram', chunkRows: readonly number[]): ChunkStatsCollector {
  if (split === 'gram') return task.method === 'sce' ? new SceCollector(task, chunkRows) : new GramCollector(task, chunkRows);
  const rows = task.outShape[0] ?? 1;
  const rowElements = elementCount(task.outShape.slice(1));
  const { inputs, work } = taskVectorSparsity(task, KERNEL_DTYPE[task.computeDType], rows * rowElements);
  return new TensorStatsCollector(inputs, chunkRows.map((r) => r * rowElements), work);
}

function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** The units of one statistics pass of every two-pass tensor that still needs one (begun on its collector), by owner. */
export function statPassUnits(twoPass: readonly TwoPassTensor[]): Map<WorkUnit, { readonly tensor: TwoPassTensor; readonly chunk: number }> {
  const owners = new Map<WorkUnit, { readonly tensor: TwoPassTensor; readonly chunk: number }>();
  for (const tensor of twoPass) {
    const pass = tensor.collector.nextPass();
    if (pass === null) continue;
    tensor.collector.beginPass(pass);
    tensor.chunks.forEach((u, chunk) => {
      owners.set({ ...u, pass, chunk: tensor.collector.chunkContext(chunk), completesTensor: false }, { tensor, chunk });
    });
  }
  return owners;
}

/** The merge units of two-pass tensors whose statistics are complete. */
export function twoPassMergeUnits(twoPass: readonly TwoPassTensor[]): WorkUnit[] {
  return twoPass.flatMap((t) => {
    if (t.collector.nextPass() !== null) throw new Error(`${t.task.output}: statistics passes are not finished`);
    return t.chunks.map((u, chunk) => ({ ...u, chunk: t.collector.chunkContext(chunk) }));
  });
}

/**
 * Replaces stage inputs whose stage was written to an intermediate file by reads of that file, the
 * stage tensors permuted inputs gather rows from included. Only an input whose task is the stage's
 * own task for that tensor is replaced; the bytes read back are then those the stage would compute,
 * so the final output is the same either way.
 */
export function readStagesFromFiles(
  task: TensorTask,
  written: ReadonlyMap<string, ReadonlyMap<string, TensorSlot>>,
  stageTasks: ReadonlyMap<string, ReadonlyMap<string, TensorTask>>,
): TensorTask {
  if (written.size === 0) return task;
  // Stage inputs by identity, so the sources the permuted inputs of one embedding share stay shared.
  const done = new Map<StageTensorInput, FileTensorInput | StageTensorInput>();
  const fromFile = (input: StageTensorInput): FileTensorInput | StageTensorInput => {
    const known = done.get(input);
    if (known !== undefined) return known;
    const slot = written.get(input.model)?.get(input.task.output);
    const planned = stageTasks.get(input.model)?.get(input.task.output);
    let out: FileTensorInput | StageTensorInput;
    if (slot !== undefined && planned !== undefined && JSON.stringify(planned) === JSON.stringify(input.task)) {
      out = {
        kind: 'file',
        model: input.model,
        file: slot.tempPath,
        tensor: input.task.output,
        dtype: slot.dtype,
        shape: slot.shape,
        byteOffset: slot.byteOffset,
        byteLength: slot.byteLength,
      };
    } else {
      const inner = readStagesFromFiles(input.task, written, stageTasks);
      out = inner === input.task ? input : { ...input, task: inner };
    }
    done.set(input, out);
    return out;
  };
  const sourcesDone = new Map<readonly PermutationSource[], readonly PermutationSource[]>();
  let changed = false;
  const inputs = task.inputs.map((input): TensorInput => {
    if (input.kind === 'file') return input;
    if (input.kind === 'stage') {
      const out = fromFile(input);
      changed ||= out !== input;
      return out;
    }
    let sources = sourcesDone.get(input.sources);
    if (sources === undefined) {
      sources = input.sources.map((s) => (s.kind === 'stage' ? fromFile(s) : s));
      sourcesDone.set(input.sources, sources);
    }
    if (sources.every((s, i) => s === input.sources[i])) return input;
    changed = true;
    return { ...input, sources };
  });
  return changed ? { ...task, inputs } : task;
}
