/**
 * `npm run bench -- <name> [args]`: runs bench/<name>.ts, which prints its figures and the ratios
 * to baselines measured in the same run. Names: io, merge, search, eval, store, train.
 */
const BENCHES = ['io', 'merge', 'search', 'eval', 'store', 'train'] as const;
type BenchName = (typeof BENCHES)[number];

interface BenchModule {
  run(args: readonly string[]): Promise<void>;
}

function isBenchName(s: string | undefined): s is BenchName {
  return (BENCHES as readonly string[]).includes(s ?? '');
}

const [name, ...rest] = process.argv.slice(2);
const selected: readonly BenchName[] = name === undefined ? BENCHES : isBenchName(name) ? [name] : [];
if (selected.length === 0) {
  process.stderr.write(`bench: unknown benchmark "${name}"; expected one of ${BENCHES.join(', ')}\n`);
  process.exit(2);
}
for (const b of selected) {
  const mod = (await import(`./${b}.js`)) as BenchModule;
  process.stdout.write(`== bench ${b}\n`);
  await mod.run(rest);
}
