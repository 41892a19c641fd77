import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The package version, read from package.json (works from src/ under vitest and from dist/). */
export function packageVersion(): string {
  for (const rel of ['../../package.json', '../../../package.json']) {
    try {
      const text = readFileSync(fileURLToPath(new URL(rel, import.meta.url)), 'utf8');
      const parsed: unknown = JSON.parse(text);
      if (parsed && typeof parsed === 'object' && 'name' in parsed && parsed.name === 'evomerge' && 'version' in parsed) {
        return String(parsed.version);
      }
    } catch {
      // try the next location
    }
  }
  return '0.0.0';
}
