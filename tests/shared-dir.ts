import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

/**
 * The `shared/` folder beside the repository root (datasets, golden mergekit cases, models), or
 * undefined when the repo was cloned alone. Tests that need it skip with a visible reason.
 */
export const SHARED_DIR: string | undefined = (() => {
  const candidates = [
    process.env.EVOMERGE_SHARED_DIR,
    path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../shared'),
  ];
  for (const c of candidates) if (c && existsSync(path.join(c, 'mergekit-golden'))) return c;
  return undefined;
})();

/** Reason shown when a test is skipped for lack of ../shared. */
export const NO_SHARED_REASON = 'skipped: ../shared (mergekit goldens, datasets, models) not found beside the repo';

export function sharedPath(...parts: string[]): string {
  if (!SHARED_DIR) throw new Error(NO_SHARED_REASON);
  return path.join(SHARED_DIR, ...parts);
}
