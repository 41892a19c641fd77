import path from 'node:path';
import { UsageError } from '../errors.js';
import { CandidateBuilder, CheckpointCache } from '../search/candidate-builder.js';
import { runOverrides } from '../search/run-space.js';
import type { JsonValue, RunRecord, RunStore, ScoredCandidate } from '../store/types.js';

/**
 * `evo export --materialize DIR`: rebuilds stored candidates from their stored mergekit YAML with
 * the run's merge seed, through the same parser, resolver and materializer as the search and
 * `evo merge` (so the bytes are those that were scored).
 */

export interface MaterializedCandidate {
  readonly id: number;
  readonly dir: string;
  readonly tensors: number;
  readonly bytesWritten: number;
  /** The DARE / DELLA seed used: pass it to `evo merge --seed` to rebuild from the exported YAML. */
  readonly mergeSeed: number;
}

export interface MaterializeCandidatesOptions {
  /** Output directory (of the one candidate, or the parent of candidate-<id>/ folders). */
  readonly dir: string;
  /** One sub-directory per candidate (--front). */
  readonly perCandidate: boolean;
  /** Folder relative model references resolve against (the run's folder; stored paths are absolute). */
  readonly baseDir: string;
  /** --jobs as typed, or undefined for the default. */
  readonly jobs: string | undefined;
}

/** The merge seed a run builds its candidates with (a space continued with --force may change it). */
export async function runMergeSeed(store: RunStore, run: RunRecord): Promise<number> {
  const forced = runOverrides(await store.events()).space?.space;
  const fromSpace = (space: JsonValue | undefined): unknown =>
    typeof space === 'object' && space !== null && !Array.isArray(space) ? (space as { readonly [k: string]: JsonValue }).mergeSeed : undefined;
  const seed = fromSpace(forced) ?? fromSpace(run.space) ?? run.seeds.merge ?? 0;
  return typeof seed === 'number' && Number.isSafeInteger(seed) ? seed : 0;
}

export async function materializeCandidates(
  store: RunStore,
  run: RunRecord,
  candidates: readonly ScoredCandidate[],
  options: MaterializeCandidatesOptions,
): Promise<MaterializedCandidate[]> {
  let jobs: number | undefined;
  if (options.jobs !== undefined) {
    jobs = Number(options.jobs);
    if (!/^\d+$/.test(options.jobs.trim()) || !Number.isSafeInteger(jobs) || jobs <= 0) throw new UsageError(`--jobs must be a positive integer, got '${options.jobs}'`);
  }
  const mergeSeed = await runMergeSeed(store, run);
  const builder = new CandidateBuilder({ mergeSeed, checkpoints: new CheckpointCache(options.baseDir), ...(jobs !== undefined ? { jobs } : {}) });
  const out: MaterializedCandidate[] = [];
  for (const c of candidates) {
    const dir = options.perCandidate ? path.join(options.dir, `candidate-${c.candidate.id}`) : options.dir;
    const built = await builder.build(c.candidate.config, dir, `candidate ${c.candidate.id} of run ${run.name}`);
    out.push({ id: c.candidate.id, dir: built.dir, tensors: built.summary.tensors, bytesWritten: built.summary.bytesWritten, mergeSeed });
  }
  return out;
}
