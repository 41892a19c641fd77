/**
 * mergekit's parameter resolution as pure functions of (setting, tensor name, t):
 * gradients, filters and the precedence of levels (docs/mergekit-semantics.md §0.1, §0.2, §2).
 */

/** A leaf value. Strings never come out of config.ts; they exist here so the pure rule is whole. */
export type SettingLeaf = number | boolean | string;

/** `{filter, value}`: applies when `filter` is absent, `"*"`, or a substring of the tensor name. */
export interface ConditionalSetting<L extends SettingLeaf = number | boolean> {
  readonly filter?: string;
  readonly value: L | readonly L[];
}

/**
 * A parameter's setting as written in YAML: a scalar, a gradient (list of scalars), or a list of
 * conditional entries (first match wins). config.ts rejects the bare single `{filter, value}`
 * mapping that mergekit's schema admits but its evaluator cannot handle.
 */
export type Setting<L extends SettingLeaf = number | boolean> =
  | L
  | readonly L[]
  | readonly ConditionalSetting<L>[];

/** `parameters:` of one level (source, slice, module or top level). */
export type ParameterMap = Readonly<Record<string, Setting>>;

function isLeaf(v: unknown): v is SettingLeaf {
  return typeof v === 'number' || typeof v === 'boolean' || typeof v === 'string';
}

/**
 * The value of a setting for one tensor at depth position t ∈ [0, 1], or undefined when it is a
 * filter list and no entry matches (the caller then falls through to the next level).
 *
 * * A list of numbers (booleans count as 0/1, as Python's bool is an int) is interpolated at
 *   s = t·(m−1): (1−f)·g[i0] + f·g[i1], with the same operation order as mergekit so that the
 *   result is the same double.
 * * Any other list of scalars is a step function, g[int(t·(m−1))].
 * * A list of conditional entries returns the first entry whose filter is missing, "*", or a
 *   substring of `tensorName` (so "layers.1" also matches "layers.10", §0.2).
 */
export function resolveSetting<L extends SettingLeaf>(
  setting: Setting<L> | ConditionalSetting<L>['value'],
  tensorName: string,
  t: number,
): L | number | undefined {
  if (isLeaf(setting)) return setting;
  const list: readonly unknown[] = setting;
  if (list.length === 0) return undefined;
  if (list.every((e) => typeof e === 'number' || typeof e === 'boolean')) {
    const g = list as readonly (number | boolean)[];
    const scaled = t * (g.length - 1);
    const i0 = Math.trunc(scaled);
    const i1 = Math.min(g.length - 1, i0 + 1);
    const frac = scaled - i0;
    return (1 - frac) * Number(g[i0]) + frac * Number(g[i1]);
  }
  if (list.every(isLeaf)) {
    return (list as readonly L[])[Math.trunc(t * (list.length - 1))];
  }
  for (const cond of list as readonly ConditionalSetting<L>[]) {
    const f = cond.filter;
    if (f === undefined || f === '*' || (tensorName !== '' && tensorName.includes(f))) {
      return resolveSetting<L>(cond.value, tensorName, t);
    }
  }
  return undefined;
}

/**
 * Resolves parameter `name` through `levels`, most specific first (source entries of the model,
 * slice, module, top level): the first level that has the key AND yields a value wins; a filter
 * list that matches nothing falls through (§0.2). Undefined when no level decides.
 */
export function resolveParameter(
  name: string,
  levels: readonly (ParameterMap | undefined)[],
  tensorName: string,
  t: number,
): number | boolean | undefined {
  for (const level of levels) {
    if (!level || !Object.hasOwn(level, name)) continue;
    const setting = level[name];
    if (setting === undefined) continue;
    const value = resolveSetting(setting, tensorName, t);
    if (value !== undefined) return value;
  }
  return undefined;
}

/**
 * Depth position of layer `index` in a slice of `count` layers: index/(count−1), and 1 for a
 * one-layer slice (§0.1). Pre- and post-weights (embeddings, final norm, lm_head) use 0.
 */
export function layerPosition(index: number, count: number): number {
  return count > 1 ? index / (count - 1) : 1;
}

/** Python truthiness / bool-as-int, as mergekit applies them to resolved values. */
export function coerceParamValue(kind: 'number' | 'boolean', value: number | boolean): number | boolean {
  if (kind === 'boolean') return typeof value === 'boolean' ? value : value !== 0;
  return typeof value === 'number' ? value : value ? 1 : 0;
}
