import { EvoError } from '../errors.js';

/** What is wrong with a mergekit config; tests pin these, not whole messages. */
export type ConfigIssueCode =
  /** The YAML itself does not parse (duplicate key, bad indentation, ...). */
  | 'YAML_SYNTAX'
  /** A value has the wrong YAML type (a list where a mapping is expected, ...). */
  | 'WRONG_TYPE'
  | 'MISSING_KEY'
  | 'UNKNOWN_METHOD'
  /** Not exactly one of `models`, `slices`, `modules`; an empty list; both `tokenizer_source` and `tokenizer`. */
  | 'INPUTS_STRUCTURE'
  | 'INVALID_DTYPE'
  /** A parameter value is not a number / boolean / gradient / filter list. */
  | 'PARAM_TYPE'
  /** A parameter value lies outside the method's valid range (method-spec.ts). */
  | 'PARAM_RANGE'
  /** `layer_range` is not [start, end) with 0 ≤ start < end. */
  | 'LAYER_RANGE'
  /** The sources of a slice cover different numbers of layers. */
  | 'SLICE_LENGTHS'
  /** Wrong number of models for the method (slerp: the base plus exactly one other). */
  | 'MODEL_COUNT'
  /** The method needs `base_model` and there is none, or it is not a source of a slice. */
  | 'BASE_MODEL'
  /** Multi-document structure: duplicate stage names, several final documents, cycles. */
  | 'STAGES'
  /** Valid mergekit that evomerge does not implement yet (LoRA refs, `tokenizer.tokens` overrides, ...). */
  | 'UNSUPPORTED'
  // Warnings (mergekit accepts these silently; semantics §0.13, §0.14):
  | 'UNKNOWN_KEY'
  | 'UNKNOWN_PARAMETER'
  | 'IGNORED_PARAMETER'
  | 'DUPLICATE_MODEL'
  | 'QUOTED_NUMBER';

export interface ConfigIssue {
  readonly severity: 'error' | 'warning';
  readonly code: ConfigIssueCode;
  /** 0-based index of the YAML document (multi-document configs). */
  readonly document: number;
  /** Key path inside the document, e.g. `models[1].parameters.density`; '' is the document itself. */
  readonly path: string;
  /** What is wrong, e.g. `must be in (0, 1], got 1.5`. */
  readonly message: string;
  /** 1-based position of the offending node, when the config came from text. */
  readonly line?: number;
  readonly col?: number;
}

/** `config.yml:14:7 models[1].parameters.density: must be in (0, 1], got 1.5` */
export function formatConfigIssue(file: string, issue: ConfigIssue): string {
  const where = issue.line === undefined ? file : `${file}:${issue.line}:${issue.col ?? 1}`;
  const doc = issue.document > 0 && issue.path !== '' ? `(document ${issue.document + 1}) ` : '';
  const key = issue.path === '' ? '' : `${doc}${issue.path}: `;
  const prefix = issue.severity === 'warning' ? 'warning: ' : '';
  return `${where} ${prefix}${key}${issue.message}`;
}

/**
 * A mergekit config that cannot be merged. Carries every issue found (not only the first); the
 * message lists them one per line. `code` is the issue's code when there is exactly one error,
 * else 'CONFIG_INVALID'.
 */
export class ConfigError extends EvoError {
  readonly file: string;
  readonly issues: readonly ConfigIssue[];

  constructor(file: string, issues: readonly ConfigIssue[]) {
    const errors = issues.filter((i) => i.severity === 'error');
    const first = errors[0];
    const code = errors.length === 1 && first ? first.code : 'CONFIG_INVALID';
    const lines = errors.map((i) => formatConfigIssue(file, i));
    const message = lines.length === 1 ? (lines[0] ?? '') : `${file}: ${lines.length} problems\n  ${lines.join('\n  ')}`;
    super(code, message);
    this.name = 'ConfigError';
    this.file = file;
    this.issues = errors;
  }
}
