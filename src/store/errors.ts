import { EvoError } from '../errors.js';

/**
 * Stable codes of the run store's errors. Tests assert them; the runner and the CLI may branch on
 * them (e.g. RUN_LOCKED → tell the user how to proceed, SPACE_CHANGED → suggest --force).
 */
export type StoreErrorCode =
  | 'RUN_EXISTS'
  | 'RUN_MISSING'
  | 'RUN_NOT_FOUND'
  | 'BAD_RUN_NAME'
  | 'UNKNOWN_CANDIDATE'
  | 'CANDIDATE_FINISHED'
  | 'CANDIDATE_NOT_RUNNING'
  | 'RESUME_DIVERGED'
  | 'GENERATION_RECORDED'
  | 'GENERATION_INCOMPLETE'
  | 'GENERATION_OUT_OF_ORDER'
  | 'RUNG_OUT_OF_ORDER'
  | 'UNKNOWN_OBJECTIVE'
  | 'BAD_INPUT'
  | 'BAD_JSON'
  | 'SPACE_CHANGED'
  | 'MODELS_CHANGED'
  | 'RUN_LOCKED'
  | 'SCHEMA_TOO_NEW'
  | 'SCHEMA_OUTDATED'
  | 'NOT_A_RUN_DB'
  | 'STORE_READONLY'
  | 'STORE_CLOSED';

/** Any error raised by a RunStore; `code` says which rule was broken. */
export class StoreError extends EvoError {
  declare readonly code: StoreErrorCode;

  constructor(code: StoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'StoreError';
  }
}

/**
 * A finished candidate (done or failed) was about to be rewritten. Finished candidates are
 * immutable: their result is what the optimizer was told, so changing it would fork history.
 */
export class CandidateFinishedError extends StoreError {
  readonly candidateId: number;

  constructor(candidateId: number, status: string, attempted: string) {
    super('CANDIDATE_FINISHED', `candidate ${candidateId} is already ${status}; ${attempted} would rewrite a finished candidate`);
    this.name = 'CandidateFinishedError';
    this.candidateId = candidateId;
  }
}

/** The search space given on resume hashes differently from the one frozen into the run. */
export class SpaceChangedError extends StoreError {
  readonly storedHash: string;
  readonly newHash: string;

  constructor(storedHash: string, newHash: string, runName?: string) {
    const which = runName === undefined ? 'the run' : `run '${runName}'`;
    super(
      'SPACE_CHANGED',
      `search space changed: ${which} was started with space ${shortHash(storedHash)}, now given ${shortHash(newHash)}; ` +
        'resume with the original space file, or pass --force to continue with the stored space anyway',
    );
    this.name = 'SpaceChangedError';
    this.storedHash = storedHash;
    this.newHash = newHash;
  }
}

/** Another live process holds the run's writer lease. */
export class RunLockedError extends StoreError {
  readonly holderPid: number;
  readonly holderHostname: string;

  constructor(message: string, holderPid: number, holderHostname: string) {
    super('RUN_LOCKED', message);
    this.name = 'RunLockedError';
    this.holderPid = holderPid;
    this.holderHostname = holderHostname;
  }
}

/** The database's schema_version is not the one this code reads and writes. */
export class SchemaVersionError extends StoreError {
  readonly found: number;
  readonly supported: number;

  constructor(code: 'SCHEMA_TOO_NEW' | 'SCHEMA_OUTDATED', file: string, found: number, supported: number) {
    const message =
      code === 'SCHEMA_TOO_NEW'
        ? `${file}: run store schema v${found} is newer than this evomerge understands (v${supported}); upgrade evomerge to open it`
        : `${file}: run store schema v${found} is older than v${supported}; open it once for writing (e.g. evo resume) to upgrade it, then read it`;
    super(code, message);
    this.name = 'SchemaVersionError';
    this.found = found;
    this.supported = supported;
  }
}

/** The first 12 hex digits, enough to tell hashes apart in a message. */
export function shortHash(hash: string): string {
  return hash.length > 12 ? hash.slice(0, 12) : hash;
}

/**
 * Refuses to continue a run whose search space changed, unless `force`. A changed space means
 * stored genomes may decode differently, so replaying the store would not reproduce the run.
 */
export function assertSameSpace(storedHash: string, newHash: string, force: boolean, runName?: string): void {
  if (storedHash === newHash || force) return;
  throw new SpaceChangedError(storedHash, newHash, runName);
}
