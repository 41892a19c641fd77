import { Command, CommanderError } from 'commander';
import { EvoError } from '../errors.js';
import { registerConvert } from './convert.js';
import { registerEval } from './eval.js';
import { registerExport } from './export.js';
import { registerInspect } from './inspect.js';
import { registerMerge } from './merge.js';
import { registerRuns } from './runs.js';
import { registerResume, registerSearch } from './search.js';
import { registerShow } from './show.js';
import { packageVersion } from './version.js';

/** Options every command sees. */
export interface GlobalOptions {
  /** Print stack traces on error. Default: false. */
  debug: boolean;
}

/** Builds the `evo` program; each command lives in its own module under src/cli/. */
export function buildProgram(): Command {
  const program = new Command();
  program
    .name('evo')
    .description('Breed language models: evolutionary search over mergekit merge recipes.')
    .version(packageVersion(), '-V, --version')
    .option('--debug', 'print stack traces on error', false)
    .showHelpAfterError(false)
    .exitOverride();
  // Command registrations (one line each; keep sorted).
  registerConvert(program);
  registerEval(program);
  registerExport(program);
  registerInspect(program);
  registerMerge(program);
  registerResume(program);
  registerRuns(program);
  registerSearch(program);
  registerShow(program);
  return program;
}

/** Runs the CLI and returns the process exit code: 0 ok, 1 failed, 2 bad usage. */
export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  const debug = argv.includes('--debug');
  try {
    await program.parseAsync([...argv]);
    return 0;
  } catch (err) {
    return reportError(err, debug);
  }
}

function reportError(err: unknown, debug: boolean): number {
  if (err instanceof CommanderError) {
    // --help and --version exit through here with code 0; commander already printed.
    if (err.exitCode === 0 || err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0;
    return 2;
  }
  if (err instanceof EvoError) {
    process.stderr.write(`evo: ${err.message}\n`);
    if (debug && err.stack) process.stderr.write(`${err.stack}\n`);
    return err.exitCode;
  }
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`evo: ${message.split('\n')[0] ?? message}\n`);
  if (debug && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  return 1;
}
