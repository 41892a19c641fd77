/**
 * How a phase of a merge is cut into work units for the pool: whole tasks, or row chunks of the
 * row-separable ones, each with its output slot, cost estimate and input bytes. Plain functions of
 * plain data.
 */
import { estimateWorkingSetBytes, inputBytesOf } from './memory-budget.js';
import type { TensorSlot } from './output-dir.js';
import { splitRows } from './row-chunks.js';
import type { TensorInput, TensorTask } from './task.js';
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
}

/** The units of one phase: each task whole, or in row chunks of about chunkBytes when it is separable and larger. */
export function planWorkUnits(tasks: readonly TensorTask[], slots: ReadonlyMap<string, TensorSlot>, chunkBytes: number): WorkUnit[] {
  const units: WorkUnit[] = [];
  for (const task of tasks) {
    const slot = slots.get(task.output);
    if (slot === undefined) throw new Error(`no output slot for ${task.output}`);
    const rows = task.outShape[0] ?? 1;
    const est = estimateWorkingSetBytes(task);
    const targetRows = est > chunkBytes && task.outShape.length > 0 ? Math.max(1, Math.floor((rows * chunkBytes) / est)) : rows;
    const chunks = splitRows(task, targetRows);
    const rowBytes = task.outShape.length > 0 && rows > 0 ? slot.byteLength / rows : slot.byteLength;
    chunks.forEach((c, i) => {
      units.push({
        task: c.task,
        output: {
          fd: slot.fd,
          byteOffset: slot.byteOffset + c.rowStart * rowBytes,
          byteLength: chunks.length === 1 ? slot.byteLength : c.rows * rowBytes,
        },
        costBytes: chunks.length === 1 ? est : estimateWorkingSetBytes(c.task),
        inputBytes: inputBytesOf(c.task),
        completesTensor: i === chunks.length - 1,
      });
    });
  }
  return units;
}

/**
 * Replaces stage inputs whose stage was written to an intermediate file by reads of that file.
 * Only an input whose task is the stage's own task for that tensor is replaced; the bytes read back
 * are then those the stage would compute, so the final output is the same either way.
 */
export function readStagesFromFiles(
  task: TensorTask,
  written: ReadonlyMap<string, ReadonlyMap<string, TensorSlot>>,
  stageTasks: ReadonlyMap<string, ReadonlyMap<string, TensorTask>>,
): TensorTask {
  if (written.size === 0) return task;
  let changed = false;
  const inputs = task.inputs.map((input): TensorInput => {
    if (input.kind !== 'stage') return input;
    const slot = written.get(input.model)?.get(input.task.output);
    const planned = stageTasks.get(input.model)?.get(input.task.output);
    if (slot !== undefined && planned !== undefined && JSON.stringify(planned) === JSON.stringify(input.task)) {
      changed = true;
      return {
        kind: 'file',
        model: input.model,
        file: slot.tempPath,
        tensor: input.task.output,
        dtype: slot.dtype,
        shape: slot.shape,
        byteOffset: slot.byteOffset,
        byteLength: slot.byteLength,
      };
    }
    const inner = readStagesFromFiles(input.task, written, stageTasks);
    if (inner === input.task) return input;
    changed = true;
    return { ...input, task: inner };
  });
  return changed ? { ...task, inputs } : task;
}
