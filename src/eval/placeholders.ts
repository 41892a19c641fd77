import { EvoError } from '../errors.js';

/**
 * `{name}` placeholders in command templates and reload requests, e.g.
 * `lm_eval --model_args pretrained={model_dir} --output_path {output}`. Unknown names are errors
 * (a typo must not run a command with a literal "{modle_dir}" in it).
 */

export class PlaceholderError extends EvoError {
  constructor(message: string) {
    super('UNKNOWN_PLACEHOLDER', message);
    this.name = 'PlaceholderError';
  }
}

const PLACEHOLDER = /\{([a-z_]+)\}/g;

/** The placeholder names used in a template. */
export function placeholdersIn(template: string): string[] {
  return [...template.matchAll(PLACEHOLDER)].map((m) => m[1] ?? '');
}

/** POSIX shell single-quoting: the value reaches the program as one argument, unexpanded. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * Fills a template. `quote` wraps each value (shellQuote for shell commands). Every placeholder
 * must be in `values`; `where` names the template's setting in errors.
 */
export function fillTemplate(template: string, values: Readonly<Record<string, string>>, where: string, quote: (v: string) => string = (v) => v): string {
  return template.replace(PLACEHOLDER, (whole, name: string) => {
    const v = values[name];
    if (v === undefined) throw new PlaceholderError(`${where}: unknown placeholder ${whole}; known: ${Object.keys(values).map((k) => `{${k}}`).join(', ')}`);
    return quote(v);
  });
}

/** fillTemplate over every string inside a JSON value (for request bodies). */
export function fillJson(value: unknown, values: Readonly<Record<string, string>>, where: string): unknown {
  if (typeof value === 'string') return fillTemplate(value, values, where);
  if (Array.isArray(value)) return value.map((v) => fillJson(v, values, where));
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fillJson(v, values, where)]));
  return value;
}
