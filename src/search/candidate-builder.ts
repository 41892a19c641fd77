import path from 'node:path';
import { writeGguf } from '../convert/hf-to-gguf.js';
import { prepareTokenizerMetadata, type GgufTokenizerMetadata } from '../convert/tokenizer-gguf.js';
import { parseMergeConfig, stringifyMergeConfig, type MergeConfig } from '../merge/config.js';
import { materializePlan, type MaterializeSummary } from '../merge/materialize.js';
import { resolvePlan } from '../merge/plan.js';
import type { CheckpointLoader } from '../merge/plan-source.js';
import type { KernelChoice } from '../merge/worker-protocol.js';
import { openCheckpoint, type ModelCheckpoint } from '../tensors/checkpoint.js';
import type { Genome } from './genome-vector.js';
import { decodeGenome, geneMethod, geneRange, groupMethods, recipeHash, type GenomeSchema } from './genome.js';

/**
 * Genome → mergekit YAML → model directory. A candidate is built from its stored YAML text
 * through the same parser, resolver and materializer as `evo merge`, so an exported recipe
 * rebuilds the very bytes that were scored (design.md: the only way to tensors is "resolve a
 * mergekit config, then materialize the plan").
 */

export interface DecodedCandidate {
  readonly config: MergeConfig;
  /** mergekit YAML: what the store keeps and `evo export` writes. */
  readonly configText: string;
  readonly hash: string;
}

/** Decodes a genome into its config, YAML text and recipe hash. */
export function decodeCandidate(schema: GenomeSchema, genome: Genome): DecodedCandidate {
  const config = decodeGenome(schema, genome);
  return { config, configText: stringifyMergeConfig(config), hash: recipeHash(config) };
}

/** Gene name → value in the parameter's units, or the chosen option of a categorical gene. */
export function namedGenes(schema: GenomeSchema, genome: Genome): Record<string, number | string> {
  const out: Record<string, number | string> = {};
  const methods = groupMethods(schema, genome);
  for (const g of schema.continuous) {
    const x = genome.continuous[g.index] ?? 0;
    // A t gene reads in the range of its group's method (nearswap's t is not slerp's).
    const m = geneMethod(schema, methods, g);
    const r = m === undefined ? g : geneRange(schema, g, m);
    out[g.name] = Math.round((r.min + x * (r.max - r.min)) * 1e6) / 1e6;
  }
  for (const g of schema.categorical) out[g.name] = g.choices[genome.categorical[g.index] ?? 0] ?? '';
  return out;
}

/**
 * Input checkpoints' headers, read once per search rather than once per candidate (a failed open
 * is not cached: the next candidate tries again and reports it again).
 */
export class CheckpointCache {
  readonly #baseDir: string;
  readonly #checkpoints = new Map<string, Promise<ModelCheckpoint>>();
  /** The loader resolvePlan takes. */
  readonly load: CheckpointLoader;

  /** @param baseDir folder relative model references resolve against (hub ids go to the HF cache). */
  constructor(baseDir: string) {
    this.#baseDir = baseDir;
    this.load = (ref) => {
      let p = this.#checkpoints.get(ref);
      if (p === undefined) {
        p = openCheckpoint(ref, { baseDir: this.#baseDir });
        p.catch(() => this.#checkpoints.delete(ref));
        this.#checkpoints.set(ref, p);
      }
      return p;
    };
  }
}

export interface CandidateBuilderOptions {
  /** Seed of the DARE / DELLA masks (the space's merge_seed). */
  readonly mergeSeed: number;
  /** Where input checkpoints come from (shared with whoever opened the base model). */
  readonly checkpoints: CheckpointCache;
  /** Merge worker threads. Default: the materializer's (the number of CPUs). */
  readonly jobs?: number;
  /** Working-memory budget of one merge, in bytes. Default: the materializer's. */
  readonly maxMemoryBytes?: number;
  /** Kernels: 'native' (C++ addon, or its TS twins when not built) or 'ts'. Default: 'native'. */
  readonly kernels?: KernelChoice;
  /** Receives the planner's non-fatal findings, once per distinct message. Default: ignored. */
  readonly onWarning?: (message: string) => void;
}

export interface BuiltCandidate {
  readonly dir: string;
  readonly config: MergeConfig;
  readonly summary: MaterializeSummary;
}

/** Builds candidates one after another (and their GGUFs, when evaluators need them). */
export class CandidateBuilder {
  readonly #options: CandidateBuilderOptions;
  readonly #warned = new Set<string>();
  /** Tokenizer metadata for GGUFs, converted once: every candidate copies the same tokenizer files. */
  #tokenizer: Promise<GgufTokenizerMetadata> | null = null;

  constructor(options: CandidateBuilderOptions) {
    this.#options = options;
  }

  /**
   * Writes the model of `configText` into `dir` (created when missing; existing weight files are
   * replaced once the merge succeeded). `configFile` names the config in messages.
   */
  async build(configText: string, dir: string, configFile: string, signal?: AbortSignal): Promise<BuiltCandidate> {
    const parsed = parseMergeConfig(configText, configFile);
    const plan = await resolvePlan(parsed.config, {
      configFile,
      seed: this.#options.mergeSeed,
      configText,
      loadCheckpoint: this.#options.checkpoints.load,
      onWarning: (m) => {
        if (this.#warned.has(m)) return;
        this.#warned.add(m);
        this.#options.onWarning?.(m);
      },
    });
    const summary = await materializePlan(plan, {
      outDir: dir,
      progress: 'none',
      ...(this.#options.jobs !== undefined ? { jobs: this.#options.jobs } : {}),
      ...(this.#options.maxMemoryBytes !== undefined ? { maxMemoryBytes: this.#options.maxMemoryBytes } : {}),
      ...(this.#options.kernels !== undefined ? { kernels: this.#options.kernels } : {}),
      ...(signal !== undefined ? { signal } : {}),
    });
    return { dir, config: parsed.config, summary };
  }

  /** Writes a GGUF of the model in `dir` (for llama.cpp evaluators) and returns its size in bytes. */
  async writeGguf(dir: string, file: string): Promise<number> {
    const checkpoint = await openCheckpoint(dir);
    this.#tokenizer ??= prepareTokenizerMetadata(checkpoint.dir);
    const summary = await writeGguf(checkpoint, await this.#tokenizer, file, { name: path.basename(file, '.gguf') });
    return summary.bytes;
  }
}
