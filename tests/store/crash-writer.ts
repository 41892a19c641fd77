/**
 * Child process for the SIGKILL test: opens the run database given on the command line and runs
 * (or resumes) the scripted search on it. The test kills it with SIGKILL at arbitrary moments.
 * Usage: node crash-writer.js <run.db> <generations> <population> <evalDelayMs>
 */
import { openSqliteRunStore } from '../../src/store/sqlite-store.js';
import { runScripted } from './scripted-run.js';

const [file, generations, population, evalDelayMs] = process.argv.slice(2);
if (file === undefined) throw new Error('usage: crash-writer.js <run.db> <generations> <population> <evalDelayMs>');
const store = openSqliteRunStore(file);
process.stdout.write('ready\n');
await runScripted(store, { generations: Number(generations), population: Number(population), evalDelayMs: Number(evalDelayMs) });
await store.close();
process.stdout.write('done\n');
