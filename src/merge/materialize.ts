/**
 * Executes a MergePlan into a Hugging Face model directory. The plan's tasks run on a Piscina pool
 * (worker.ts); each worker reads its inputs with positional reads and writes its result at the
 * offset the safetensors layout fixed, so the output's bytes depend on the plan alone, not on the
 * pool size or the order tasks finish in. A memory budget decides how many tasks run at once, and
 * large tensors are cut into row chunks (TIES / DARE / breadcrumbs / DELLA after statistics passes
 * over the same chunks), so memory depends on the budget, not on the model or its largest tensor.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { EvoError } from '../errors.js';
import { allTasks, resolveMaterializeOptions } from './materialize-options.js';
import type { MaterializeOptions, ResolvedMaterializeOptions } from './materialize-options.js';
import { StagedOutputDir } from './output-dir.js';
import type { OutputDirContents, TensorSlot } from './output-dir.js';
import { createMergeProgress } from './progress.js';
import { MergeAbortedError, runUnits } from './task-pool.js';
import type { FileTensorInput, MergePlan, TensorInput, TensorTask } from './task.js';
import { isUnplannedPass, type ChunkReply } from './methods/chunk-stats.js';
import { planWorkUnits, readStagesFromFiles, statPassUnits, twoPassMergeUnits } from './work-units.js';
import type { TwoPassTensor, WorkUnit } from './work-units.js';
import { WORKER_FUNCTION } from './worker-protocol.js';
import { TASKS_PER_THREAD } from './slot-write.js';

export {
  defaultMaxMemoryBytes,
  MaterializeOptionError,
  resolveMaterializeOptions,
} from './materialize-options.js';
export type { MaterializeOptions, ResolvedMaterializeOptions } from './materialize-options.js';
export { MergeAbortedError } from './task-pool.js';

/** A worker keeps at most this much input scratch between tasks (see worker.ts ScratchArena). */
const MAX_SCRATCH_RETAIN_BYTES = 256 * 1024 ** 2;
/** Smallest row chunk the memory budget alone can ask for. */
const MIN_BUDGET_CHUNK_BYTES = 1024 ** 2;

export interface MaterializeSummary {
  /** Output tensors of the final model. */
  readonly tensors: number;
  /** Input tensor bytes read by the workers (intermediates read back included). */
  readonly bytesRead: number;
  /** Size of every file written (final and intermediate), in bytes. */
  readonly bytesWritten: number;
  readonly seconds: number;
  /** Largest resident set size of the process (workers included) seen during the merge, in bytes. */
  readonly peakRssBytes: number;
  readonly outDir: string;
  /** File names written into outDir, weights first. */
  readonly files: readonly string[];
  /** Directories of intermediates written (empty unless intermediateDir was set). */
  readonly intermediateDirs: readonly string[];
  /** Warnings also shown by the progress display (e.g. a task larger than the memory budget). */
  readonly warnings: readonly string[];
  /** Seconds the workers spent reading inputs, computing and writing results, summed over threads. */
  readonly workerSeconds: { readonly read: number; readonly compute: number; readonly write: number };
}

/**
 * The compiled worker entry. From dist/ (the package as run) it sits beside this module; when this
 * module runs from src/ (vitest), it is the build's copy in dist/src/merge/.
 */
export function mergeWorkerFile(): string {
  const here = fileURLToPath(import.meta.url);
  const file = here.endsWith('.ts')
    ? path.resolve(path.dirname(here), '../../dist/src/merge/worker.js')
    : path.join(path.dirname(here), 'worker.js');
  if (!fs.existsSync(file)) {
    throw new EvoError('WORKER_NOT_BUILT', `merge worker ${file} not found; run \`npm run build\` first`);
  }
  return file;
}

/** Writes the plan's model (and its intermediates when asked) and reports what was done. */
export async function materializePlan(plan: MergePlan, options: MaterializeOptions): Promise<MaterializeSummary> {
  const startedMs = performance.now();
  const opts = resolveMaterializeOptions(options, plan);
  checkPlan(plan, opts);
  if (opts.signal?.aborted) throw new MergeAbortedError();
  const workerFile = mergeWorkerFile();
  const inputs = openInputFiles(allTasks(plan));
  const progress = createMergeProgress(opts.progress);
  const warnings: string[] = [];
  const outputs: StagedOutputDir[] = [];
  let pool: Piscina | null = null;
  let peakRssBytes = process.memoryUsage.rss();
  const rssTimer = setInterval(() => {
    peakRssBytes = Math.max(peakRssBytes, process.memoryUsage.rss());
  }, 100);
  rssTimer.unref();
  try {
    // Workers boot (loading the kernels) while the outputs are laid out. `name` makes each load and
    // cache the handler once at start-up (loading it again per task raced with Node's
    // require(esm) on some runs).
    pool = new Piscina({
      filename: workerFile,
      name: WORKER_FUNCTION,
      minThreads: opts.jobs,
      maxThreads: opts.jobs,
      concurrentTasksPerWorker: TASKS_PER_THREAD,
      idleTimeout: 10_000,
    });
    // Lay out every output first: a later stage reads an earlier one's temp file.
    const fds: Record<string, number> = { ...inputs.fds };
    const written = new Map<string, ReadonlyMap<string, TensorSlot>>();
    const stageTasks = new Map<string, ReadonlyMap<string, TensorTask>>();
    const phases: { tasks: readonly TensorTask[]; out: StagedOutputDir }[] = [];
    if (opts.intermediateDir !== null) {
      for (const stage of plan.stages) {
        const tasks = stage.tasks.map((t) => readStagesFromFiles(t, written, stageTasks));
        const out = await StagedOutputDir.create(path.join(opts.intermediateDir, stage.name), {
          tensors: tasks.map(plannedTensor),
          shardBytes: opts.shardBytes,
          config: stage.outputConfig,
          tokenizer: tokenizerContents(stage),
          configText: null,
        });
        outputs.push(out);
        for (const slot of out.slots.values()) fds[slot.tempPath] = slot.fd;
        written.set(stage.name, out.slots);
        stageTasks.set(stage.name, new Map(stage.tasks.map((t) => [t.output, t])));
        phases.push({ tasks, out });
      }
    }
    const finalTasks = plan.tasks.map((t) => readStagesFromFiles(t, written, stageTasks));
    const final = await StagedOutputDir.create(opts.outDir, {
      tensors: finalTasks.map(plannedTensor),
      shardBytes: opts.shardBytes,
      config: plan.outputConfig,
      tokenizer: tokenizerContents(plan),
      configText: plan.configText,
    });
    outputs.push(final);
    phases.push({ tasks: finalTasks, out: final });

    // Chunks follow the budget's share per thread, but a tiny budget must not cut tensors into
    // thousands of one-row units (an explicit rowChunkBytes still may, for tests).
    const chunkBytes = Math.min(opts.rowChunkBytes, Math.max(MIN_BUDGET_CHUNK_BYTES, Math.floor(opts.maxMemoryBytes / opts.jobs)));
    // A TIES / DARE tensor that fits a thread's share of the budget runs whole: chunking it would
    // only add the statistics passes' second read.
    const twoPassMinBytes = Math.max(chunkBytes, Math.floor(opts.maxMemoryBytes / opts.jobs));
    const phaseUnits = phases.map((p) => planWorkUnits(p.tasks, p.out.slots, chunkBytes, twoPassMinBytes));
    let tensorsTotal = 0;
    let inputBytesTotal = 0;
    for (const phase of phaseUnits) {
      for (const u of [...phase.units, ...phase.twoPass.flatMap((t) => t.chunks)]) {
        inputBytesTotal += u.inputBytes;
        if (u.completesTensor) tensorsTotal += 1;
      }
      // Statistics passes read the chunks again (a 'rank-low' pass, needed only when keys differ in
      // their low bits, is not foreseen and moves no bar).
      for (const t of phase.twoPass) inputBytesTotal += t.collector.plannedPasses() * t.chunks.reduce((n, u) => n + u.inputBytes, 0);
    }
    progress.start({ tensors: tensorsTotal, inputBytes: inputBytesTotal });

    let bytesRead = 0;
    const workerMs = { read: 0, compute: 0, write: 0 };
    let warnedAlone = false;
    for (const [i, phase] of phaseUnits.entries()) {
      const out = phases[i]?.out;
      const run = (units: readonly WorkUnit[], onStats: (unit: WorkUnit, stats: ChunkReply | null) => void): Promise<void> =>
        runUnits(pool ?? fail('the pool is gone'), units, {
          jobs: opts.jobs * TASKS_PER_THREAD,
          maxMemoryBytes: opts.maxMemoryBytes,
          kernels: opts.kernels,
          fds,
          scratchRetainBytes: Math.min(MAX_SCRATCH_RETAIN_BYTES, Math.floor(opts.maxMemoryBytes / opts.jobs)),
          signal: opts.signal,
          onDone: (unit, reply) => {
            for (const w of reply.warnings) {
              if (warnings.includes(w)) continue;
              warnings.push(w);
              progress.warn(`warning: ${w}`);
            }
            bytesRead += reply.bytesRead;
            out?.noteWritten(unit.output.fd, reply.bytesWritten);
            workerMs.read += reply.readMs;
            workerMs.compute += reply.computeMs;
            workerMs.write += reply.writeMs;
            peakRssBytes = Math.max(peakRssBytes, reply.rssBytes);
            progress.advance({ tensors: unit.completesTensor ? 1 : 0, inputBytes: isUnplannedPass(unit.pass) ? 0 : reply.bytesRead });
            onStats(unit, reply.stats);
          },
          onAlone: (unit) => {
            if (warnedAlone || !opts.maxMemoryExplicit) return;
            warnedAlone = true;
            const message =
              `warning: tensor ${unit.task.output} needs about ${formatBytes(unit.costBytes)}, more than the ` +
              `${formatBytes(opts.maxMemoryBytes)} memory budget; such tensors run alone`;
            warnings.push(message);
            progress.warn(message);
          },
        });
      // Statistics passes over the chunks of two-pass tensors (each pass of all of them at once),
      // then every unit of the phase, those chunks included.
      // A pass past those planned at the start (karcher's later iterations) raises the bar's total;
      // a 'rank-low' or 'sce-low' pass (only when keys differ in their low bits) still moves no bar.
      const passesLeft = new Map(phase.twoPass.map((t) => [t, t.collector.plannedPasses()]));
      for (let owners = statPassUnits(phase.twoPass); owners.size > 0; owners = statPassUnits(phase.twoPass)) {
        const passOf = new Map<TwoPassTensor, WorkUnit['pass']>();
        for (const [unit, owner] of owners) passOf.set(owner.tensor, unit.pass);
        for (const [tensor, pass] of passOf) {
          if (isUnplannedPass(pass)) continue;
          const left = passesLeft.get(tensor) ?? 0;
          if (left > 0) passesLeft.set(tensor, left - 1);
          else progress.grow({ inputBytes: tensor.chunks.reduce((n, u) => n + u.inputBytes, 0) });
        }
        await run([...owners.keys()], (unit, stats) => {
          const owner = owners.get(unit);
          if (owner === undefined || stats === null) throw new EvoError('INTERNAL', `no statistics for ${unit.task.output}`);
          owner.tensor.collector.absorb(owner.chunk, stats);
        });
        for (const tensor of new Set([...owners.values()].map((o) => o.tensor))) tensor.collector.finishPass();
      }
      await run([...phase.units, ...twoPassMergeUnits(phase.twoPass)], () => undefined);
    }
    await pool.destroy();
    pool = null;
    for (const out of outputs) await out.commit();
    peakRssBytes = Math.max(peakRssBytes, process.memoryUsage.rss());
    const seconds = (performance.now() - startedMs) / 1000;
    progress.finish({ tensors: tensorsTotal, inputBytes: bytesRead, seconds, peakRssBytes });
    return {
      tensors: plan.tasks.length,
      bytesRead,
      bytesWritten: outputs.reduce((n, o) => n + o.bytes, 0),
      seconds,
      peakRssBytes,
      outDir: opts.outDir,
      files: final.files,
      intermediateDirs: outputs.filter((o) => o !== final).map((o) => o.dir),
      warnings,
      workerSeconds: { read: workerMs.read / 1000, compute: workerMs.compute / 1000, write: workerMs.write / 1000 },
    };
  } catch (err) {
    progress.stop();
    // Workers must be gone before descriptors close (a reused number would be written to).
    if (pool !== null) await pool.destroy();
    for (const out of outputs) await out.abort();
    throw err;
  } finally {
    clearInterval(rssTimer);
    inputs.close();
  }
}

function fail(message: string): never {
  throw new EvoError('INTERNAL', message);
}

function formatBytes(bytes: number): string {
  return bytes < 1e6 ? `${bytes} bytes` : `${Math.ceil(bytes / 1e6)} MB`;
}

function plannedTensor(task: TensorTask): { name: string; dtype: TensorTask['outDType']; shape: readonly number[] } {
  return { name: task.output, dtype: task.outDType, shape: task.outShape };
}

/** The tokenizer files an output directory gets: copied from the donor's folder, or generated. */
function tokenizerContents(p: Pick<MergePlan, 'tokenizerDir' | 'tokenizerFiles' | 'tokenizerGenerated'>): OutputDirContents['tokenizer'] {
  if (p.tokenizerDir === null) return null;
  return { dir: p.tokenizerDir, files: p.tokenizerFiles, ...(p.tokenizerGenerated !== undefined ? { generated: p.tokenizerGenerated } : {}) };
}

/** Checks the plan before anything is written: outputs, tokenizer files, stage names. */
function checkPlan(plan: MergePlan, opts: ResolvedMaterializeOptions): void {
  if (plan.tasks.length === 0) throw new EvoError('EMPTY_PLAN', 'the merge plan has no output tensors');
  const seen = new Set<string>();
  for (const task of plan.tasks) {
    if (seen.has(task.output)) throw new EvoError('DUPLICATE_OUTPUT', `output tensor ${task.output} is planned twice`);
    seen.add(task.output);
  }
  const checkTokenizer = (p: Pick<MergePlan, 'tokenizerDir' | 'tokenizerFiles' | 'tokenizerGenerated'>): void => {
    if (p.tokenizerDir === null) return;
    for (const name of p.tokenizerFiles) {
      const file = path.join(p.tokenizerDir, name);
      if (p.tokenizerGenerated?.[name] === undefined && !fs.statSync(file, { throwIfNoEntry: false })?.isFile()) {
        throw new EvoError('TOKENIZER_FILE_MISSING', `tokenizer file ${file} does not exist`);
      }
    }
  };
  checkTokenizer(plan);
  if (opts.intermediateDir !== null) {
    for (const stage of plan.stages) {
      checkTokenizer(stage);
      if (stage.name === '' || stage.name === '.' || stage.name === '..' || /[/\\]/.test(stage.name)) {
        throw new EvoError('BAD_STAGE_NAME', `stage name ${JSON.stringify(stage.name)} cannot be a directory name`);
      }
    }
  }
}

interface InputFiles {
  readonly fds: Readonly<Record<string, number>>;
  close(): void;
}

/** Opens every input file once, checking each tensor's bytes lie inside its file (it may have changed since planning). */
function openInputFiles(tasks: readonly TensorTask[]): InputFiles {
  const fds: Record<string, number> = {};
  const sizes = new Map<string, number>();
  const close = (): void => {
    for (const fd of Object.values(fds)) fs.closeSync(fd);
  };
  const visit = (input: FileTensorInput): void => {
    let size = sizes.get(input.file);
    if (size === undefined) {
      let fd: number;
      try {
        fd = fs.openSync(input.file, 'r');
      } catch (cause) {
        throw new EvoError('INPUT_UNREADABLE', `cannot open ${input.file}: ${String(cause)}`, { cause });
      }
      fds[input.file] = fd;
      size = fs.fstatSync(fd).size;
      sizes.set(input.file, size);
    }
    if (input.byteOffset + input.byteLength > size) {
      throw new EvoError(
        'INPUT_OUT_OF_RANGE',
        `${input.file}: tensor ${input.tensor} ends at byte ${input.byteOffset + input.byteLength}, past the file's ${size} bytes (changed since planning?)`,
      );
    }
  };
  try {
    for (const task of tasks) forEachFileInput(task, visit);
  } catch (err) {
    close();
    throw err;
  }
  return { fds, close };
}

function forEachFileInput(task: TensorTask, visit: (input: FileTensorInput) => void): void {
  for (const input of task.inputs) forEachFileOf(input, visit);
}

/** The files an input reads: its own, its permutation sources' and those of the stage tasks it computes. */
function forEachFileOf(input: TensorInput, visit: (input: FileTensorInput) => void): void {
  if (input.kind === 'file') visit(input);
  else if (input.kind === 'permuted') input.sources.forEach((s) => forEachFileOf(s, visit));
  else forEachFileInput(input.task, visit);
}

