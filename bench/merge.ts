/**
 * `npm run bench -- merge [--size 1GB] [--methods linear,ties,multislerp,karcher,sce] [--jobs N] [--max-memory BYTES] [--clean]`
 *
 * Merges synthetic Llama-layout bf16 models (a base and three fine-tunes of about --size each,
 * generated once into os.tmpdir() and reused) with linear, task_arithmetic, slerp, ties and
 * dare_ties (multislerp, karcher and sce with --methods), each planned by the real planner from a generated mergekit YAML and materialized with
 * default settings. Prints input GB/s, seconds and peak RSS per method, and the ratios to two
 * baselines measured in the same run: a plain sequential read of the same input files, memcpy, and
 * a write + fsync of one output-sized file (the bound the output's write sets).
 * It also prints the process's CPU seconds (all threads) per merge and the input GB per CPU second:
 * on a machine shared with other work the wall figures mostly measure the neighbours, the CPU
 * figures much less so (input GB per CPU second × cores is what the merge would reach alone).
 * --clean deletes the cached models when done.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseMergeConfig } from '../src/merge/config.js';
import { materializePlan, resolveMaterializeOptions } from '../src/merge/materialize.js';
import type { MaterializeOptions } from '../src/merge/materialize.js';
import { inputBytesOf } from '../src/merge/memory-budget.js';
import { loadKernels } from '../src/merge/native/binding.js';
import { resolvePlan } from '../src/merge/plan.js';
import { DirectWriter, openDirect, writeSlot } from '../src/merge/slot-write.js';
import { ensureBenchModels } from './merge-models.js';
import type { BenchModels } from './merge-models.js';

const METHODS = ['linear', 'task_arithmetic', 'slerp', 'ties', 'dare_ties', 'multislerp', 'karcher', 'sce'] as const;
type BenchMethod = (typeof METHODS)[number];
/** The issue's five; multislerp, karcher and sce (several passes over their inputs) on request. */
const DEFAULT_METHODS: readonly BenchMethod[] = ['linear', 'task_arithmetic', 'slerp', 'ties', 'dare_ties'];

/** Targets on the reference 2-core machine (the issue's acceptance figures). */
const TARGET_GBPS: Readonly<Partial<Record<BenchMethod, number>>> = { linear: 4, ties: 1.5, dare_ties: 1.5 };
const TARGET_PEAK_RSS_BYTES = 1e9;

interface Args {
  sizeBytes: number;
  methods: BenchMethod[];
  jobs: number | undefined;
  maxMemoryBytes: number | undefined;
  clean: boolean;
}

function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB)?$/i.exec(s.trim());
  if (!m) throw new Error(`--size: expected e.g. 128MB or 1GB, got ${s}`);
  const unit = { B: 1, KB: 1e3, MB: 1e6, GB: 1e9 }[(m[2] ?? 'B').toUpperCase() as 'B' | 'KB' | 'MB' | 'GB'];
  return Math.round(Number(m[1]) * unit);
}

function parseArgs(args: readonly string[]): Args {
  const out: Args = { sizeBytes: 1e9, methods: [...DEFAULT_METHODS], jobs: undefined, maxMemoryBytes: undefined, clean: false };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const value = (): string => {
      const v = args[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--size') out.sizeBytes = parseSize(value());
    else if (a === '--methods') {
      out.methods = value()
        .split(',')
        .map((m) => {
          if (!(METHODS as readonly string[]).includes(m)) throw new Error(`--methods: unknown ${m}; known: ${METHODS.join(',')}`);
          return m as BenchMethod;
        });
    } else if (a === '--jobs') out.jobs = Number(value());
    else if (a === '--max-memory') out.maxMemoryBytes = parseSize(value());
    else if (a === '--clean') out.clean = true;
    else throw new Error(`bench merge: unknown argument ${a}`);
  }
  return out;
}

function yamlFor(method: BenchMethod, m: BenchModels): string {
  const [ft1, ft2, ft3] = m.fineTunes;
  const q = (p: string | undefined): string => JSON.stringify(p ?? '');
  switch (method) {
    case 'linear':
      return `merge_method: linear
models:
  - model: ${q(ft1)}
    parameters: {weight: 0.4}
  - model: ${q(ft2)}
    parameters: {weight: 0.3}
  - model: ${q(ft3)}
    parameters: {weight: 0.3}
dtype: bfloat16
`;
    case 'task_arithmetic':
    case 'multislerp':
      return `merge_method: ${method}
base_model: ${q(m.base)}
models:
  - model: ${q(ft1)}
    parameters: {weight: 0.5}
  - model: ${q(ft2)}
    parameters: {weight: 0.3}
  - model: ${q(ft3)}
    parameters: {weight: 0.2}
dtype: bfloat16
`;
    case 'slerp':
      return `merge_method: slerp
base_model: ${q(m.base)}
models:
  - model: ${q(m.base)}
  - model: ${q(ft1)}
parameters: {t: 0.5}
dtype: bfloat16
`;
    case 'ties':
    case 'dare_ties':
      return `merge_method: ${method}
base_model: ${q(m.base)}
models:
  - model: ${q(ft1)}
    parameters: {weight: 0.5, density: 0.5}
  - model: ${q(ft2)}
    parameters: {weight: 0.3, density: 0.5}
  - model: ${q(ft3)}
    parameters: {weight: 0.2, density: 0.5}
dtype: bfloat16
`;
    case 'karcher':
      return `merge_method: karcher
models:
  - model: ${q(ft1)}
  - model: ${q(ft2)}
  - model: ${q(ft3)}
dtype: bfloat16
`;
    case 'sce':
      return `merge_method: sce
base_model: ${q(m.base)}
models:
  - model: ${q(ft1)}
  - model: ${q(ft2)}
  - model: ${q(ft3)}
parameters: {select_topk: 0.5}
dtype: bfloat16
`;
    default: {
      const never: never = method;
      return never;
    }
  }
}

/** Resets the kernel's peak-RSS counter (VmHWM) of this process; false where /proc does not allow it. */
function resetPeakRss(): boolean {
  try {
    fs.writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

function vmHwmBytes(): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Single-threaded sequential read of `files` (16 MiB reads), in GB/s. */
function sequentialReadGbps(files: readonly string[]): number {
  const buf = Buffer.allocUnsafe(16 * 1024 * 1024);
  let bytes = 0;
  const t0 = performance.now();
  for (const file of files) {
    const fd = fs.openSync(file, 'r');
    try {
      for (;;) {
        const n = fs.readSync(fd, buf, 0, buf.length, null);
        if (n === 0) break;
        bytes += n;
      }
    } finally {
      fs.closeSync(fd);
    }
  }
  return bytes / 1e9 / ((performance.now() - t0) / 1000);
}

/**
 * Single-threaded write of `bytes` into a new file in `dir`, then fsync, in GB/s: what putting a
 * merge's output on disk costs at least. It writes 16 MiB slots the way the merge's workers do
 * (slot-write.ts: whole pages through O_DIRECT where the file system allows it, else buffered;
 * fresh page-cache pages are expensive on some virtual machines). `direct` says which it was.
 */
async function sequentialWriteGbps(dir: string, bytes: number): Promise<{ gbps: number; direct: boolean }> {
  const file = path.join(dir, `write-baseline-${process.pid}.bin`);
  const buf = new Uint8Array(16 * 1024 * 1024).fill(0x5a);
  const loaded = loadKernels({ logger: () => undefined });
  const writer = new DirectWriter(loaded.kernels);
  const t0 = performance.now();
  const fd = fs.openSync(file, 'w');
  const directFd = openDirect(file);
  try {
    for (let done = 0; done < bytes; done += buf.length) {
      await writeSlot({ fd, directFd, byteOffset: done }, buf.subarray(0, Math.min(buf.length, bytes - done)), 'baseline', writer);
    }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
    if (directFd !== null) fs.closeSync(directFd);
  }
  const seconds = (performance.now() - t0) / 1000;
  fs.rmSync(file, { force: true });
  return { gbps: bytes / 1e9 / seconds, direct: directFd !== null && writer.enabled };
}

/** Buffer.copy of a 64 MiB buffer (far beyond any cache), in GB/s. */
function memcpyGbps(): number {
  const a = Buffer.alloc(64 * 1024 * 1024, 1);
  const b = Buffer.allocUnsafe(a.length);
  a.copy(b);
  const rounds = 32;
  const t0 = performance.now();
  for (let i = 0; i < rounds; i++) a.copy(b);
  return (rounds * a.length) / 1e9 / ((performance.now() - t0) / 1000);
}

function inputFiles(method: BenchMethod, m: BenchModels): string[] {
  const ft = m.fineTunes.map((d) => path.join(d, 'model.safetensors'));
  const base = path.join(m.base, 'model.safetensors');
  switch (method) {
    case 'linear':
    case 'karcher':
      return ft;
    case 'slerp':
      return [base, ft[0] ?? ''];
    default:
      return [base, ...ft];
  }
}

const fmt = (x: number, digits = 2): string => x.toFixed(digits);

export async function run(args: readonly string[]): Promise<void> {
  const a = parseArgs(args);
  const root = path.join(os.tmpdir(), 'evomerge-bench-merge');
  const modelsDir = path.join(root, `models-${a.sizeBytes}`);
  const models = await ensureBenchModels(modelsDir, a.sizeBytes, 3);
  const s = models.shape;
  process.stdout.write(
    `models: base + 3 fine-tunes, bf16, ${fmt(models.modelBytes / 1e9, 3)} GB each ` +
      `(hidden ${s.hidden}, intermediate ${s.intermediate}, vocab ${s.vocab}, ${s.layers} layers) in ${modelsDir}` +
      ` [${fmt(models.generatedSeconds, 1)} s to generate or check]\n`,
  );
  const load = (): string => os.loadavg().map((x) => x.toFixed(2)).join(' ');
  process.stdout.write(
    `machine: ${os.availableParallelism()} threads, ${fmt(os.totalmem() / 1e9, 1)} GB RAM, node ${process.version}; load average ${load()}\n`,
  );

  const allFiles = [models.base, ...models.fineTunes].map((d) => path.join(d, 'model.safetensors'));
  sequentialReadGbps(allFiles); // warm the page cache, as the merges will find it
  const readGbps = sequentialReadGbps(allFiles);
  const copyGbps = memcpyGbps();
  const written = await sequentialWriteGbps(root, models.modelBytes);
  const writeGbps = written.gbps;
  process.stdout.write(
    `baselines: sequential read of the inputs ${fmt(readGbps)} GB/s (1 thread), memcpy ${fmt(copyGbps)} GB/s (1 thread), ` +
      `write + fsync of one output-sized new file ${fmt(writeGbps)} GB/s (1 thread, ${written.direct ? 'O_DIRECT' : 'buffered'}, as the merge writes)\n\n`,
  );
  process.stdout.write('method           input GB   seconds   input GB/s   ÷read  ÷memcpy   peak RSS (sampled / VmHWM)   target\n');

  for (const method of a.methods) {
    const yaml = yamlFor(method, models);
    const configFile = path.join(root, `${method}.yml`);
    fs.writeFileSync(configFile, yaml);
    const parsed = parseMergeConfig(yaml, configFile);
    const plan = await resolvePlan(parsed.config, { configFile, seed: 42, configText: yaml });
    const outDir = path.join(root, `out-${method}`);
    fs.rmSync(outDir, { recursive: true, force: true });
    const options: MaterializeOptions = { outDir, progress: 'none' };
    if (a.jobs !== undefined) options.jobs = a.jobs;
    if (a.maxMemoryBytes !== undefined) options.maxMemoryBytes = a.maxMemoryBytes;

    const resolved = resolveMaterializeOptions(options, plan);
    const hwmReset = resetPeakRss();
    let sampled = process.memoryUsage.rss();
    const sampler = setInterval(() => {
      sampled = Math.max(sampled, process.memoryUsage.rss());
    }, 10);
    const cpu0 = process.cpuUsage();
    let summary;
    try {
      summary = await materializePlan(plan, options);
    } finally {
      clearInterval(sampler);
    }
    const cpu = process.cpuUsage(cpu0);
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    const hwm = hwmReset ? vmHwmBytes() : undefined;
    const peak = Math.max(sampled, summary.peakRssBytes);
    // Input = every input tensor of the plan once; statistics passes (two-pass TIES / DARE chunks)
    // read some of it again, which is in bytesRead but is no more input.
    const inputBytes = plan.tasks.reduce((n, t) => n + inputBytesOf(t), 0);
    const gbps = inputBytes / 1e9 / summary.seconds;
    const target = TARGET_GBPS[method];
    const rssForTarget = hwm ?? peak;
    const verdict =
      target === undefined
        ? `RSS ${rssForTarget <= TARGET_PEAK_RSS_BYTES ? 'ok' : 'MISS'}`
        : `${gbps >= target ? 'ok' : 'MISS'} (≥ ${target} GB/s), RSS ${rssForTarget <= TARGET_PEAK_RSS_BYTES ? 'ok' : 'MISS'}`;
    const w = summary.workerSeconds;
    // Every method writes one model's worth of output: the input GB/s the write alone would allow.
    const writeBound = (inputBytes / models.modelBytes) * writeGbps;
    process.stdout.write(
      `${method.padEnd(16)} ${fmt(inputBytes / 1e9).padStart(8)} ${fmt(summary.seconds).padStart(9)} ${fmt(gbps).padStart(12)} ` +
        `${fmt(gbps / readGbps).padStart(7)} ${fmt(gbps / copyGbps).padStart(8)}   ` +
        `${`${fmt(peak / 1e6, 0)} MB / ${hwm === undefined ? 'n/a' : `${fmt(hwm / 1e6, 0)} MB`}`.padEnd(27)}  ${verdict}\n` +
        `${''.padEnd(16)} ${resolved.jobs} threads, memory budget ${fmt(resolved.maxMemoryBytes / 1e6, 0)} MB` +
        `${resolved.maxMemoryExplicit ? '' : ' (default)'}; worker time: read ${fmt(w.read)} s, compute ${fmt(w.compute)} s, ` +
        `write ${fmt(w.write)} s (all threads); ${fmt(summary.bytesRead / 1e9)} GB read in all\n` +
        `${''.padEnd(16)} CPU ${fmt(cpuSeconds)} s (all threads, ${fmt(cpu.system / 1e6)} s system): ` +
        `${fmt(inputBytes / 1e9 / cpuSeconds)} input GB per CPU second; the output write alone bounds it at ` +
        `${fmt(writeBound)} input GB/s (÷ that ${fmt(gbps / writeBound)})\n`,
    );
    // Sanity: every method's output must exist whole before its figures count.
    if (!inputFiles(method, models).every((f) => fs.existsSync(f)) || !fs.existsSync(path.join(outDir, summary.files[0] ?? ''))) {
      throw new Error(`bench merge: ${method} produced no output in ${outDir}`);
    }
    fs.rmSync(outDir, { recursive: true, force: true });
  }
  process.stdout.write(
    `\ntargets (2-core reference box): linear ≥ 4 GB/s, ties and dare_ties ≥ 1.5 GB/s of input, peak RSS ≤ 1 GB; ` +
      `input GB/s = the plan's input tensor bytes (each once; statistics passes re-read chunks) ÷ wall seconds of materializePlan (pool start, fsync and rename included)\n`,
  );
  process.stdout.write(`load average at the end: ${load()} (other processes on the machine skew every figure)\n`);
  if (a.clean) {
    fs.rmSync(root, { recursive: true, force: true });
    process.stdout.write(`removed ${root}\n`);
  }
}
