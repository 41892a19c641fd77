/**
 * Finds and loads one of the package's C++ addons (build/Release/NAME.node, built by `npm install`
 * through binding.gyp) and checks its interface version and exported functions, so that callers
 * can fall back to their TypeScript twins with a reason instead of crashing.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export type AddonLoad = { readonly module: Readonly<Record<string, unknown>> } | { readonly reason: string };

/** Walks up from this module (src/… or dist/src/…) to the package root holding build/Release. */
function findAddon(relativeFile: string): string | undefined {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = path.join(dir, relativeFile);
    if (existsSync(candidate)) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return undefined;
}

/**
 * Loads build/Release/`name`.node when it exists, exports `abiVersion` === `abiVersion` and a
 * function for every name in `functions`. EVOMERGE_KERNELS=ts refuses every addon (forces the twins).
 */
export function loadAddon(name: string, abiVersion: number, functions: readonly string[]): AddonLoad {
  if (process.env.EVOMERGE_KERNELS === 'ts') return { reason: 'EVOMERGE_KERNELS=ts' };
  const relative = path.join('build', 'Release', `${name}.node`);
  const file = findAddon(relative);
  if (file === undefined) return { reason: `${relative} not found (npm install builds it with node-gyp)` };
  let mod: unknown;
  try {
    mod = createRequire(import.meta.url)(file);
  } catch (err) {
    return { reason: `${file} failed to load: ${err instanceof Error ? err.message : String(err)}` };
  }
  if (typeof mod !== 'object' || mod === null) return { reason: `${file} exports no object` };
  const record = mod as Record<string, unknown>;
  if (record.abiVersion !== abiVersion) {
    return { reason: `${file} is interface version ${String(record.abiVersion)}, expected ${abiVersion} (rebuild with npm install)` };
  }
  const missing = functions.filter((k) => typeof record[k] !== 'function');
  if (missing.length > 0) return { reason: `${file} lacks ${missing.join(', ')}` };
  return { module: record };
}
