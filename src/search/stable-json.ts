import { createHash } from 'node:crypto';

/**
 * JSON with object keys sorted at every level and `undefined` members dropped, so that two equal
 * values give the same text whatever order their keys were built in. Non-finite numbers are
 * refused (TypeError naming the path): JSON would silently turn them into `null`.
 */
export function stableStringify(value: unknown): string {
  try {
    return write(value);
  } catch (e) {
    if (e instanceof TypeError) throw new TypeError(`stableStringify: ${e.message} at ${badPath(value, '$') ?? '$'}`);
    throw e;
  }
}

function write(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError('non-finite number');
      return Object.is(value, -0) ? '0' : JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) {
          const v: unknown = value[i];
          out += (i > 0 ? ',' : '') + (v === undefined ? 'null' : write(v));
        }
        return `${out}]`;
      }
      const rec = value as Record<string, unknown>;
      let out = '{';
      let first = true;
      for (const k of Object.keys(rec).sort()) {
        const v = rec[k];
        if (v === undefined) continue;
        out += `${first ? '' : ','}${JSON.stringify(k)}:${write(v)}`;
        first = false;
      }
      return `${out}}`;
    }
    default:
      throw new TypeError(`unsupported ${typeof value}`);
  }
}

/** The path of the first value write() refuses (only walked after a failure). */
function badPath(value: unknown, path: string): string | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : path;
  if (value === null || typeof value === 'string' || typeof value === 'boolean' || value === undefined) return undefined;
  if (typeof value !== 'object') return path;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const p = badPath(value[i], `${path}[${i}]`);
      if (p) return p;
    }
    return undefined;
  }
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const p = badPath(v, `${path}.${k}`);
    if (p) return p;
  }
  return undefined;
}

/** Hex SHA-256 of the stable JSON of a value. */
export function stableHash(value: unknown): string {
  return createHash('sha256').update(stableStringify(value)).digest('hex');
}
