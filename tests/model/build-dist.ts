import { execFile } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * Compiles the project to dist/ when the llama.cpp child entry there is missing or older than its
 * source (the child process runs from dist/: a plain node child cannot load .ts; it imports only
 * types from our other files). Type errors elsewhere in the tree do not stop tsc from emitting, so
 * only the child entry is checked afterwards.
 */
export async function buildDist(): Promise<void> {
  const child = path.join(root, 'dist', 'src', 'eval', 'llamacpp-child.js');
  const source = path.join(root, 'src', 'eval', 'llamacpp-child.ts');
  if (existsSync(child) && statSync(child).mtimeMs >= statSync(source).mtimeMs) return;
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  await promisify(execFile)(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { cwd: root }).catch(() => undefined);
  if (!existsSync(child) || statSync(child).mtimeMs < statSync(source).mtimeMs) throw new Error(`build did not produce an up-to-date ${child}`);
}
