/**
 * The statistics passes a tensor run in row chunks may need before its chunks are merged, of
 * any kind: the task-vector sparsifiers' (task-vector-stats.ts), the sums in gram blocks of
 * slerp, nuslerp, model_stock, multislerp and karcher (gram-stats.ts), or sce's (sce.ts). The
 * pool (materialize.ts, work-units.ts) drives them all the same way.
 */
import type { ChunkGram, GramStats } from './gram-blocks.js';
import type { ChunkSce, SceStats } from './sce.js';
import type { ChunkSparsity, ChunkStats, StatPass } from './task-vector-stats.js';

export type AnyStatPass = StatPass | 'gram' | 'sce-top' | 'sce-low';

/**
 * The passes only some data needs (rank keys that differ in their low 16 bits): collectors do
 * not plan them, and they move no progress bar.
 */
export function isUnplannedPass(pass: AnyStatPass | 'merge'): boolean {
  return pass === 'rank-low' || pass === 'sce-low';
}

/** What a chunk gets besides its rows: the statistics its method has gathered so far. Plain data. */
export type ChunkContext = ChunkSparsity | ChunkGram | ChunkSce;

/** One chunk's reply to one statistics pass. Plain data. */
export type ChunkReply = ChunkStats | GramStats | SceStats;

/**
 * One tensor's statistics over its chunks: ask nextPass(), beginPass() it, run it on every chunk
 * (in any order, each with chunkContext(c)), absorb() each reply, then finishPass(); once
 * nextPass() is null, chunkContext(c) holds all chunk c needs to be merged.
 */
export interface ChunkStatsCollector {
  readonly chunks: number;
  nextPass(): AnyStatPass | null;
  /** Passes still to come, for progress totals (a pass only some data needs is not counted). */
  plannedPasses(): number;
  beginPass(pass: AnyStatPass): void;
  chunkContext(chunk: number): ChunkContext;
  absorb(chunk: number, stats: ChunkReply): void;
  finishPass(): void;
}
