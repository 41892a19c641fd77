import { EvoError } from '../errors.js';

/** What is wrong with a search space file; tests pin these and the key path, not whole messages. */
export type SpaceIssueCode =
  /** The YAML itself does not parse. */
  | 'YAML_SYNTAX'
  /** A value has the wrong type (a string where a number is expected, ...). */
  | 'WRONG_TYPE'
  | 'MISSING_KEY'
  /** A key the schema does not know (mergekit would ignore it silently; we refuse). */
  | 'UNKNOWN_KEY'
  /** A number outside its valid range (`density.max` above 1, `min` above `max`, ...). */
  | 'OUT_OF_RANGE'
  /** A value of the right type that is not allowed (an unknown enum value, a bad name). */
  | 'INVALID_VALUE'
  /** A merge method that does not exist, or that the genome cannot search. */
  | 'UNKNOWN_METHOD'
  /** The same model, filter, method or objective name listed twice. */
  | 'DUPLICATE'
  /** Keys that contradict each other (nsga2 with one objective, elitism ≥ population, ...). */
  | 'CONFLICT';

export interface SpaceIssue {
  readonly code: SpaceIssueCode;
  /** Key path, e.g. `genome.density.max` or `objectives[1].name`; '' is the whole file. */
  readonly path: string;
  /** What is wrong and what is allowed, e.g. `must be ≤ 1, got 1.5`. */
  readonly message: string;
  /** 1-based position of the offending node when the space came from text. */
  readonly line?: number;
  readonly col?: number;
}

/** `space.yaml:14:7 genome.density.max: must be ≤ 1, got 1.5` */
export function formatSpaceIssue(file: string, issue: SpaceIssue): string {
  const where = issue.line === undefined ? file : `${file}:${issue.line}:${issue.col ?? 1}`;
  return `${where} ${issue.path === '' ? '' : `${issue.path}: `}${issue.message}`;
}

/**
 * A search space that cannot be used. Carries every issue found, not only the first; the message
 * lists them one per line. `code` is the issue's code when there is exactly one, else
 * 'SPACE_INVALID'.
 */
export class SpaceError extends EvoError {
  readonly file: string;
  readonly issues: readonly SpaceIssue[];

  constructor(file: string, issues: readonly SpaceIssue[]) {
    const first = issues[0];
    const code = issues.length === 1 && first ? first.code : 'SPACE_INVALID';
    const lines = issues.map((i) => formatSpaceIssue(file, i));
    const message = lines.length === 1 ? (lines[0] ?? '') : `${file}: ${lines.length} problems\n  ${lines.join('\n  ')}`;
    super(code, message);
    this.name = 'SpaceError';
    this.file = file;
    this.issues = issues;
  }
}
