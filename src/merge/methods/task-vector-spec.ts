import { WEIGHT_PARAM, type MethodRule, type MethodSpec, type ParamSpec, type Sparsifier } from '../method-spec.js';
import type { MethodId } from '../task.js';

/**
 * The generalized task-arithmetic family (semantics §1.2): δᵢ = xᵢ − base, optionally sparsified
 * per model, weighted, optionally sign-elected, optionally normalized, times lambda, plus base.
 * The variants are rows of one table, as in mergekit's registry, not separate declarations.
 */

interface TaskVectorRow {
  readonly id: MethodId;
  readonly title: string;
  readonly reference: string;
  readonly sparsifier?: Sparsifier;
  readonly ties: boolean;
  readonly normalize: boolean;
  readonly rescale: boolean;
}

const ROWS: readonly TaskVectorRow[] = [
  { id: 'task_arithmetic', title: 'Task Arithmetic', reference: 'https://arxiv.org/abs/2212.04089', ties: false, normalize: false, rescale: false },
  { id: 'ties', title: 'TIES', reference: 'https://arxiv.org/abs/2306.01708', sparsifier: 'magnitude', ties: true, normalize: true, rescale: false },
  { id: 'dare_ties', title: 'DARE TIES', reference: 'https://arxiv.org/abs/2311.03099', sparsifier: 'random', ties: true, normalize: false, rescale: true },
  { id: 'dare_linear', title: 'Linear DARE', reference: 'https://arxiv.org/abs/2311.03099', sparsifier: 'random', ties: false, normalize: false, rescale: true },
  { id: 'breadcrumbs', title: 'Model Breadcrumbs', reference: 'https://arxiv.org/abs/2312.06795', sparsifier: 'magnitude_outliers', ties: false, normalize: false, rescale: false },
  { id: 'breadcrumbs_ties', title: 'Model Breadcrumbs with TIES', reference: 'https://arxiv.org/abs/2312.06795', sparsifier: 'magnitude_outliers', ties: true, normalize: false, rescale: false },
  { id: 'della', title: 'DELLA', reference: 'https://arxiv.org/abs/2406.11617', sparsifier: 'della_magprune', ties: true, normalize: true, rescale: true },
  { id: 'della_linear', title: 'Linear DELLA', reference: 'https://arxiv.org/abs/2406.11617', sparsifier: 'della_magprune', ties: false, normalize: false, rescale: true },
];

const DENSITY_PARAM: ParamSpec = {
  name: 'density',
  scope: 'model',
  kind: 'number',
  default: 1,
  required: false,
  min: 0,
  minExclusive: true,
  max: 1,
  searchRange: [0.1, 1],
  doc: 'Fraction of the task vector kept by sparsification (1 keeps everything).',
};

const GAMMA_PARAM: ParamSpec = {
  name: 'gamma',
  scope: 'model',
  kind: 'number',
  default: 0.01,
  required: false,
  min: 0,
  max: 1,
  searchRange: [0, 0.1],
  doc: 'Fraction of the largest-magnitude entries dropped as outliers (int(gamma·numel) = 0 drops the whole delta, as in mergekit).',
};

const EPSILON_PARAM: ParamSpec = {
  name: 'epsilon',
  scope: 'model',
  kind: 'number',
  default: 0.15,
  required: false,
  min: 0,
  max: 0.5,
  maxExclusive: true,
  searchRange: [0.01, 0.2],
  doc: 'Half-width of the keep-probability band around density; density ± epsilon must lie in (0, 1).',
};

function globalParams(row: TaskVectorRow): ParamSpec[] {
  return [
    {
      name: 'int8_mask',
      scope: 'global',
      kind: 'boolean',
      default: false,
      required: false,
      doc: 'Store the sign mask as int8 (no numeric effect).',
    },
    {
      name: 'normalize',
      scope: 'global',
      kind: 'boolean',
      default: row.normalize,
      required: false,
      doc: 'Divide the mixed delta by the sum of the (sign-agreeing) weights.',
    },
    {
      name: 'rescale',
      scope: 'global',
      kind: 'boolean',
      default: row.rescale,
      required: false,
      doc: 'After random pruning, rescale the kept entries to the L1 norm of the whole delta.',
    },
    {
      name: 'lambda',
      scope: 'global',
      kind: 'number',
      default: 1,
      required: false,
      searchRange: [0.5, 1.5],
      doc: 'Multiplier of the mixed delta before it is added to the base.',
    },
  ];
}

function modelParams(row: TaskVectorRow): ParamSpec[] {
  const params: ParamSpec[] = [WEIGHT_PARAM, DENSITY_PARAM];
  if (row.sparsifier === 'magnitude_outliers') params.push(GAMMA_PARAM);
  if (row.sparsifier === 'della_magprune') params.push(EPSILON_PARAM);
  return params;
}

function rules(row: TaskVectorRow): MethodRule[] {
  switch (row.sparsifier) {
    case 'magnitude':
      return ['topk-nonzero'];
    case 'della_magprune':
      return ['della-window'];
    case 'magnitude_outliers':
      return ['breadcrumbs-empty-slice'];
    case 'random':
    case undefined:
      return [];
    default: {
      const never: never = row.sparsifier;
      return never;
    }
  }
}

export const TASK_VECTOR_SPECS: readonly MethodSpec[] = ROWS.map(
  (row): MethodSpec => ({
    id: row.id,
    family: 'task_vector',
    title: row.title,
    reference: row.reference,
    doc:
      `base + lambda · mix(weight · ${row.sparsifier ? `${row.sparsifier}(δ, density)` : 'δ'})` +
      `${row.ties ? ' with TIES sign election' : ''}; normalize defaults to ${row.normalize}, rescale to ${row.rescale}.`,
    params: [...globalParams(row), ...modelParams(row)],
    needsBase: 'yes',
    ...(row.sparsifier ? { sparsifier: row.sparsifier } : {}),
    ...(row.ties ? { consensus: 'sum' as const } : {}),
    embedShapes: 'base',
    otherShapes: 'skip',
    randomized: row.sparsifier === 'random' || row.sparsifier === 'della_magprune',
    rules: rules(row),
  }),
);
