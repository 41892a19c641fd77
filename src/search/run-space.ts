import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EvoError } from '../errors.js';
import type { EventRecord, JsonValue, ObjectiveSpec as StoredObjective } from '../store/types.js';
import type { SearchSpace } from './space.js';
import { stableHash } from './stable-json.js';

/**
 * The search space as a run uses it: model and evaluator-module paths made absolute (so the
 * candidates' configs, stored and exported, rebuild the same model from any folder), the run's
 * identity hash, and the settings a run may change after it was created (recorded as events).
 */

/**
 * A model reference made absolute against `baseDir` when it names a local path (it exists there,
 * or is written as a path: `./x`, `../x`, `/x`, `~/x`); hub ids (`org/name`) are kept as written.
 */
export function resolveModelRef(ref: string, baseDir: string): string {
  const expanded = ref === '~' ? os.homedir() : ref.startsWith('~/') ? path.join(os.homedir(), ref.slice(2)) : ref;
  const local = path.resolve(baseDir, expanded);
  if (path.isAbsolute(expanded) || ref.startsWith('.') || ref.startsWith('~') || existsSync(local)) return local;
  return ref;
}

/** A space as a run keeps it: paths resolved, and the folder of the file it came from. */
export interface RunSpace extends SearchSpace {
  /** Absolute folder of the space file: relative paths in evaluator options resolve against it. */
  readonly spaceDir: string;
}

/** The space with its model references and evaluator module paths resolved against `baseDir`. */
export function resolveSpacePaths(space: SearchSpace, baseDir: string): RunSpace {
  const model = (ref: string): string => resolveModelRef(ref, baseDir);
  return {
    ...space,
    spaceDir: path.resolve(baseDir),
    baseModel: model(space.baseModel),
    models: space.models.map(model),
    tokenizerSource:
      space.tokenizerSource === null || space.tokenizerSource === 'base' || space.tokenizerSource === 'union' ? space.tokenizerSource : model(space.tokenizerSource),
    objectives: space.objectives.map((o) =>
      o.evaluator.kind === 'module' ? { ...o, evaluator: { kind: 'module', module: path.resolve(baseDir, o.evaluator.module) } } : o,
    ),
  };
}

/**
 * The identity a run is frozen under: the space's hash with its stopping rules (generations,
 * max_evaluations) and description left out, since changing them does not change what any
 * genome decodes to or how it is scored; `--generations` and an edited `generations:` continue
 * the run without --force.
 */
export function runSpaceHash(space: SearchSpace): string {
  return stableHash({ ...space, description: null, optimizer: { ...space.optimizer, generations: 0, maxEvaluations: null } });
}

/** The objectives as the store records them. */
export function storedObjectives(space: SearchSpace): StoredObjective[] {
  return space.objectives.map((o) => ({ name: o.name, direction: o.maximize ? 'maximize' : 'minimize' }));
}

/** The run store's copy of a space is not one this runner wrote. */
export class RunSpaceError extends EvoError {
  constructor(code: 'STORED_SPACE_INVALID' | 'OBJECTIVES_CHANGED' | 'GENOME_CHANGED', message: string) {
    super(code, message);
    this.name = 'RunSpaceError';
  }
}

/** Tag of the runner's own 'note' events (settings changed after the run was created). */
const NOTE_TAG = 'evomerge.search';

/** Data of a 'note' event recording a space continued with --force. */
export function spaceChangeNote(space: RunSpace, hash: string, spaceText: string): JsonValue {
  return { tag: NOTE_TAG, setting: 'space', hash, spaceText, space: space as unknown as JsonValue };
}

/** Data of a 'note' event recording a new generation target. */
export function generationsNote(generations: number): JsonValue {
  return { tag: NOTE_TAG, setting: 'generations', generations };
}

/** Data of a 'note' event recording the fingerprints of the run's models (model-fingerprint.ts). */
export function modelsNote(fingerprints: Readonly<Record<string, string>>): JsonValue {
  return { tag: NOTE_TAG, setting: 'models', fingerprints: { ...fingerprints } };
}

/** What a run's events changed since createRun: the latest forced space and generation target, and the models' latest fingerprints. */
export interface RunOverrides {
  readonly space: { readonly space: JsonValue; readonly hash: string; readonly spaceText: string } | null;
  readonly generations: number | null;
  readonly models: Readonly<Record<string, string>> | null;
}

export function runOverrides(events: readonly EventRecord[]): RunOverrides {
  let space: RunOverrides['space'] = null;
  let generations: number | null = null;
  let models: Record<string, string> | null = null;
  for (const e of events) {
    if (e.kind !== 'note' || typeof e.data !== 'object' || e.data === null || Array.isArray(e.data)) continue;
    const d = e.data as { readonly [k: string]: JsonValue };
    if (d.tag !== NOTE_TAG) continue;
    if (d.setting === 'space' && typeof d.hash === 'string' && typeof d.spaceText === 'string' && d.space !== undefined) {
      space = { space: d.space, hash: d.hash, spaceText: d.spaceText };
    } else if (d.setting === 'generations' && typeof d.generations === 'number') {
      generations = d.generations;
    } else if (d.setting === 'models' && typeof d.fingerprints === 'object' && d.fingerprints !== null && !Array.isArray(d.fingerprints)) {
      models = Object.fromEntries(Object.entries(d.fingerprints).filter((kv): kv is [string, string] => typeof kv[1] === 'string'));
    }
  }
  return { space, generations, models };
}

/**
 * A space read back from the store (JSON written by this runner), checked against the hash it was
 * stored under so that a hand-edited database is refused instead of silently searched.
 */
export function storedSpace(json: JsonValue, hash: string, where: string): RunSpace {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new RunSpaceError('STORED_SPACE_INVALID', `${where}: the stored search space is not a mapping`);
  const space = json as unknown as RunSpace;
  let actual: string;
  try {
    actual = runSpaceHash(space);
  } catch (err) {
    throw new RunSpaceError('STORED_SPACE_INVALID', `${where}: the stored search space cannot be read (${err instanceof Error ? err.message : String(err)})`);
  }
  if (actual !== hash || typeof space.name !== 'string' || typeof space.spaceDir !== 'string' || !Array.isArray(space.objectives) || typeof space.genome !== 'object') {
    throw new RunSpaceError('STORED_SPACE_INVALID', `${where}: the stored search space does not match its hash ${hash.slice(0, 12)}; was the database edited?`);
  }
  return space;
}

/** Refuses a space whose objectives differ from the run's (results could not be recorded). */
export function assertSameObjectives(run: readonly StoredObjective[], space: SearchSpace, runName: string): void {
  const now = storedObjectives(space);
  const same = now.length === run.length && now.every((o, i) => o.name === run[i]?.name && o.direction === run[i]?.direction);
  if (!same) {
    const list = (l: readonly StoredObjective[]): string => l.map((o) => `${o.name} (${o.direction})`).join(', ');
    throw new RunSpaceError('OBJECTIVES_CHANGED', `run '${runName}' scores ${list(run)}; the space now has ${list(now)}; objectives cannot change within a run (start a new run with another name)`);
  }
}
