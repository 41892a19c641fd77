import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { describe, it } from 'vitest';

/**
 * The `shared/` folder (datasets, golden mergekit cases, models): EVOMERGE_SHARED_DIR when it is
 * set (and only then, so pointing it at a missing folder runs the suite as a lone clone would),
 * else the folder beside the repository root. Undefined when it holds no mergekit-golden/.
 */
export const SHARED_DIR: string | undefined = (() => {
  const fromEnv = process.env.EVOMERGE_SHARED_DIR;
  const dir = fromEnv !== undefined && fromEnv !== '' ? path.resolve(fromEnv) : path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../shared');
  return existsSync(path.join(dir, 'mergekit-golden')) ? dir : undefined;
})();

/** Reason shown when a test is skipped for lack of ../shared. */
export const NO_SHARED_REASON = 'skipped: ../shared (mergekit goldens, datasets, models) not found beside the repo (or at EVOMERGE_SHARED_DIR)';

/**
 * A describe block whose tests need ../shared: `body(shared)` registers them when it is present;
 * when it is absent the block holds one skipped test that gives the reason, and nothing else.
 */
export function describeWithShared(name: string, body: (shared: string) => void): void {
  const shared = SHARED_DIR;
  if (shared === undefined) describe(name, () => it.skip(NO_SHARED_REASON, () => undefined));
  else describe(name, () => body(shared));
}

/** One test that needs ../shared: run with its path when present, else skipped with the reason in its name. */
export function itWithShared(name: string, test: (shared: string) => Promise<void> | void, timeoutMs?: number): void {
  const shared = SHARED_DIR;
  if (shared === undefined) it.skip(`${name} (${NO_SHARED_REASON})`, () => undefined);
  else it(name, () => test(shared), timeoutMs);
}
