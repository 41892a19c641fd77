import { EvoError } from '../errors.js';
import type { MethodSpec, ParamSpec } from './method-spec.js';
import { KARCHER_SPEC } from './methods/karcher-spec.js';
import { LINEAR_SPEC } from './methods/linear-spec.js';
import { MODEL_STOCK_SPEC } from './methods/model-stock-spec.js';
import { MULTISLERP_SPEC } from './methods/multislerp-spec.js';
import { NEARSWAP_SPEC } from './methods/nearswap-spec.js';
import { NUSLERP_SPEC } from './methods/nuslerp-spec.js';
import { PASSTHROUGH_SPEC } from './methods/passthrough-spec.js';
import { SCE_SPEC } from './methods/sce-spec.js';
import { SLERP_SPEC } from './methods/slerp-spec.js';
import { TASK_VECTOR_SPECS } from './methods/task-vector-spec.js';
import type { MethodId } from './task.js';

/**
 * Every merge method evomerge knows, one spec each, in mergekit's registry order. The method id is
 * the YAML spelling. Family files (src/merge/methods/*-spec.ts) declare; this file only collects.
 */
export const METHODS: readonly MethodSpec[] = [
  LINEAR_SPEC,
  SLERP_SPEC,
  NUSLERP_SPEC,
  PASSTHROUGH_SPEC,
  MODEL_STOCK_SPEC,
  KARCHER_SPEC,
  ...TASK_VECTOR_SPECS,
  SCE_SPEC,
  MULTISLERP_SPEC,
  NEARSWAP_SPEC,
];

const BY_ID: ReadonlyMap<string, MethodSpec> = new Map(METHODS.map((m) => [m.id, m]));

/** The ids of every known method, for messages and `--help`. */
export const METHOD_IDS: readonly MethodId[] = METHODS.map((m) => m.id);

/** An unknown `merge_method` or parameter name asked of the registry. */
export class UnknownMethodError extends EvoError {
  constructor(message: string) {
    super('UNKNOWN_METHOD', message);
    this.name = 'UnknownMethodError';
  }
}

export function isMethodId(id: string): id is MethodId {
  return BY_ID.has(id);
}

/** The spec of a method, or undefined for an id mergekit (or evomerge) does not know. */
export function findMethodSpec(id: string): MethodSpec | undefined {
  return BY_ID.get(id);
}

/** The spec of a method; throws UnknownMethodError listing the known ids. */
export function getMethodSpec(id: string): MethodSpec {
  const spec = BY_ID.get(id);
  if (!spec) throw new UnknownMethodError(`unknown merge_method '${id}'; known: ${METHOD_IDS.join(', ')}`);
  return spec;
}

/** One parameter's spec, or undefined when the method has no such parameter. */
export function findParamSpec(method: string, param: string): ParamSpec | undefined {
  return BY_ID.get(method)?.params.find((p) => p.name === param);
}

/**
 * The valid range and search bounds of a method's numeric parameter, as the search space and the
 * exporter read them. Unbounded sides are ±Infinity. Throws UnknownMethodError for an unknown
 * method or parameter, or a boolean one.
 */
export function paramRange(
  method: string,
  param: string,
): {
  readonly min: number;
  readonly max: number;
  readonly minExclusive: boolean;
  readonly maxExclusive: boolean;
  readonly integer: boolean;
  readonly searchRange: readonly [number, number] | undefined;
} {
  const spec = getMethodSpec(method);
  const p = spec.params.find((q) => q.name === param);
  if (!p) {
    throw new UnknownMethodError(
      `merge_method ${method} has no parameter '${param}'; it has: ${spec.params.map((q) => q.name).join(', ')}`,
    );
  }
  if (p.kind !== 'number') throw new UnknownMethodError(`parameter ${param} of ${method} is boolean, it has no range`);
  return {
    min: p.min ?? Number.NEGATIVE_INFINITY,
    max: p.max ?? Number.POSITIVE_INFINITY,
    minExclusive: p.minExclusive ?? false,
    maxExclusive: p.maxExclusive ?? false,
    integer: p.integer ?? false,
    searchRange: p.searchRange,
  };
}
