import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatNumber, formatScore, formatSize } from '../../src/cli/run-format.js';
import type { RunsReport } from '../../src/cli/runs.js';
import type { ShowReport } from '../../src/cli/show.js';
import { runEvo } from '../cli/run-evo.js';
import { runDbPath } from '../../src/store/run-directory.js';
import { openSqliteRunStore } from '../../src/store/sqlite-store.js';
import { crashingAfter, runScripted, SimulatedCrash } from './scripted-run.js';

const runsDir = mkdtempSync(path.join(tmpdir(), 'evomerge-cli-runs-'));
afterAll(() => rmSync(runsDir, { recursive: true, force: true }));

const run = runEvo;

beforeAll(async () => {
  // alpha: a finished run. beta: interrupted inside its second generation. junk: not a database.
  const alpha = openSqliteRunStore(path.join(runsDir, 'alpha', 'run.db'));
  await runScripted(alpha, { generations: 2, population: 4 });
  await alpha.close();
  const beta = openSqliteRunStore(path.join(runsDir, 'beta', 'run.db'));
  await expect(runScripted(crashingAfter(beta, 13), { generations: 3, population: 4 })).rejects.toBeInstanceOf(SimulatedCrash);
  await beta.close();
  mkdirSync(path.join(runsDir, 'junk'));
  writeFileSync(path.join(runsDir, 'junk', 'run.db'), 'not a database '.repeat(50));
  mkdirSync(path.join(runsDir, 'no-db-here'));
});

describe('run formatting', () => {
  it('prints scores with their interval and sample size', () => {
    expect(formatScore({ value: 0.71253, ciLow: 0.69, ciHigh: 0.73412, n: 500 })).toBe('0.7125 [0.69, 0.7341] n=500');
    expect(formatScore({ value: 3.5, ciLow: null, ciHigh: null, n: 1 })).toBe('3.5 n=1');
    expect(formatNumber(123456789)).toBe('1.235e+8');
    expect(formatNumber(-0.000012345)).toBe('-0.00001234');
    expect(formatNumber(0.5)).toBe('0.5');
    expect(formatSize(1.25 * 2 ** 30)).toBe('1.25 GiB');
    expect(formatSize(512)).toBe('512 B');
    expect(formatSize(null)).toBe('-');
  });
});

describe('evo runs', () => {
  it('lists every run with status, generations, evaluations and best (--json)', async () => {
    const r = await run('runs', '--runs-dir', runsDir, '--json');
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as RunsReport;
    expect(report.runs.map((x) => [x.dir, x.ok])).toEqual([
      ['alpha', true],
      ['beta', true],
      ['junk', false],
    ]);
    const alpha = openSqliteRunStore(runDbPath(runsDir, 'alpha'), { readonly: true });
    const first = report.runs[0];
    expect(first?.ok && first.overview).toEqual(JSON.parse(JSON.stringify(await alpha.overview())));
    const bestAcc = (await alpha.best('acc'))[0];
    expect(first?.ok && first.overview.best.acc?.candidateId).toBe(bestAcc?.candidate.id);
    await alpha.close();
    const second = report.runs[1];
    expect(second?.ok && [second.overview.status, second.overview.generationsDone, second.overview.unfinished > 0]).toEqual(['running', 1, true]);
    const junk = report.runs[2];
    expect(junk?.ok === false && junk.code).toBe('NOT_A_RUN_DB');
  });

  it('prints a table with CIs and sample sizes, and lists unreadable runs apart', async () => {
    const r = await run('runs', '--runs-dir', runsDir);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+STATUS\s+GENERATIONS\s+EVALUATIONS\s+FAILED\s+UNFINISHED\s+UPDATED\s+BEST$/);
    expect(lines[1]).toMatch(/^alpha \(scripted\)\s+finished\s+2\/2\s+\d+\s+\d+\s+0\s+\S+Z\s+acc \S+ \[\S+, \S+\] n=100 \(#\d+\); cost \S+ n=1 \(#\d+\)$/);
    expect(lines[2]).toMatch(/^beta \(scripted\)\s+running\s+1\/3\s/);
    expect(lines[3]).toMatch(/^junk\s+unreadable\s/);
    expect(r.stdout).toContain('unreadable runs:');
  });

  it('says so when there are no runs', async () => {
    const empty = path.join(runsDir, 'no-db-here');
    const r = await run('runs', '--runs-dir', empty);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`no runs in ${empty}\n`);
    const missing = await run('runs', '--runs-dir', path.join(runsDir, 'nowhere'), '--json');
    expect(JSON.parse(missing.stdout)).toEqual({ runsDir: path.join(runsDir, 'nowhere'), runs: [] });
  });
});

describe('evo show', () => {
  it('reports the front and the best candidates with scores, CIs and sizes (--json)', async () => {
    const r = await run('show', 'alpha', '--runs-dir', runsDir, '--json', '--top', '2');
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as ShowReport;
    const store = openSqliteRunStore(runDbPath(runsDir, 'alpha'), { readonly: true });
    expect(report.run.name).toBe('scripted');
    expect(report.frontGeneration).toBe(1);
    const front = await store.front();
    expect(report.front.map((c) => c.id)).toEqual(front.map((s) => s.candidate.id));
    expect(report.front[0]?.scores).toEqual(front[0]?.result?.scores);
    expect(report.front[0]?.modelBytes).toBe(1000 + (report.front[0]?.id ?? 0));
    for (const objective of ['acc', 'cost']) {
      expect(report.best[objective]?.map((c) => c.id)).toEqual((await store.best(objective, 2)).map((s) => s.candidate.id));
    }
    expect(report.generations.map((g) => g.generation)).toEqual([0, 1]);
    await store.close();
  });

  it('prints the front, best lists and generations as text', async () => {
    const r = await run('show', path.join(runsDir, 'alpha'));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^run {10}scripted \(.*alpha\/run\.db\)$/m);
    expect(r.stdout).toMatch(/^status {7}finished; 2 of 2 generations;/m);
    expect(r.stdout).toMatch(/^front after generation 1 \(\d+ candidates\)$/m);
    expect(r.stdout).toMatch(/^ {2}ID\s+GEN\s+acc \(max\)\s+cost \(min\)\s+SIZE\s+SECONDS\s+RECIPE$/m);
    expect(r.stdout).toMatch(/^ {2}#\d+\s+\d\s+\S+ \[\S+, \S+\] n=100\s+\S+ n=1\s+\d+ B\s+0\.5\s+w/m);
    expect(r.stdout).toContain('best by acc (maximize)');
    expect(r.stdout).toContain('best by cost (minimize)');
    expect(r.stdout).toMatch(/^generations$/m);
  });

  it('reads a run while its writer holds the lease', async () => {
    const writer = openSqliteRunStore(runDbPath(runsDir, 'beta'));
    const r = await run('show', 'beta', '--runs-dir', runsDir, '--json');
    await writer.close();
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as ShowReport).overview.status).toBe('running');
  });

  it('fails clearly for a missing run and a bad --top', async () => {
    const missing = await run('show', 'nope', '--runs-dir', runsDir);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`no run 'nope' in ${runsDir}`);
    const bad = await run('show', 'alpha', '--runs-dir', runsDir, '--top', '0');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--top must be a positive integer');
    const junk = await run('show', 'junk', '--runs-dir', runsDir);
    expect(junk.code).toBe(1);
    expect(junk.stderr).toContain('junk/run.db');
  });
});

describe('evo export', () => {
  const out = (name: string): string => path.join(runsDir, 'exports', name);

  it('writes the best candidate\'s mergekit config exactly as stored', async () => {
    const r = await run('export', 'alpha', '--runs-dir', runsDir, '--objective', 'acc', '-o', out('best.yml'));
    expect(r.code, r.stderr).toBe(0);
    const store = openSqliteRunStore(runDbPath(runsDir, 'alpha'), { readonly: true });
    const best = (await store.best('acc'))[0];
    expect(readFileSync(out('best.yml'), 'utf8')).toBe(best?.candidate.config);
    expect(r.stdout).toContain(`#${best?.candidate.id} (done: acc `);
    expect(r.stdout).toContain(`wrote ${out('best.yml')}`);
    await store.close();
  });

  it('writes the front as a recipe (JSON) and as one YAML per candidate', async () => {
    const store = openSqliteRunStore(runDbPath(runsDir, 'alpha'), { readonly: true });
    const front = await store.front();
    const r = await run('export', 'alpha', '--runs-dir', runsDir, '--front', '--format', 'recipe', '-o', out('front.json'));
    expect(r.code, r.stderr).toBe(0);
    const recipe = JSON.parse(readFileSync(out('front.json'), 'utf8')) as { format: string; run: { spaceHash: string }; candidates: { id: number; genome: unknown; config: string; scores: unknown }[] };
    expect(recipe.format).toBe('evomerge-recipe');
    expect(recipe.run.spaceHash).toBe('space-hash-1');
    expect(recipe.candidates.map((c) => [c.id, c.genome, c.config, c.scores])).toEqual(front.map((s) => [s.candidate.id, s.candidate.genome, s.candidate.config, s.result?.scores]));
    const d = await run('export', 'alpha', '--runs-dir', runsDir, '--front', '-o', out('front-dir'), '--json');
    expect(d.code, d.stderr).toBe(0);
    expect(readdirSync(out('front-dir')).sort()).toEqual(front.map((s) => `candidate-${s.candidate.id}.yml`).sort());
    for (const s of front) expect(readFileSync(path.join(out('front-dir'), `candidate-${s.candidate.id}.yml`), 'utf8')).toBe(s.candidate.config);
    expect((JSON.parse(d.stdout) as { candidates: number[] }).candidates).toEqual(front.map((s) => s.candidate.id));
    await store.close();
  });

  it('exports one candidate by id, failed ones included, as a recipe', async () => {
    const store = openSqliteRunStore(runDbPath(runsDir, 'alpha'), { readonly: true });
    const failed = (await store.candidates()).find((c) => c.status === 'failed');
    await store.close();
    expect(failed).toBeDefined();
    const r = await run('export', 'alpha', '--runs-dir', runsDir, '--candidate', String(failed?.id), '--format', 'recipe', '-o', out('one.json'));
    expect(r.code, r.stderr).toBe(0);
    const recipe = JSON.parse(readFileSync(out('one.json'), 'utf8')) as { candidates: { id: number; status: string; scores: unknown }[] };
    expect(recipe.candidates).toMatchObject([{ id: failed?.id, status: 'failed', scores: null }]);
  });

  it('refuses ambiguous or impossible requests', async () => {
    const several = await run('export', 'alpha', '--runs-dir', runsDir, '-o', out('x.yml'));
    expect(several.code).toBe(2);
    expect(several.stderr).toContain('--objective NAME');
    expect((await run('export', 'alpha', '--runs-dir', runsDir, '--best', '--front', '-o', out('x.yml'))).code).toBe(2);
    expect((await run('export', 'alpha', '--runs-dir', runsDir, '--objective', 'acc')).stderr).toContain('-o FILE');
    expect((await run('export', 'alpha', '--runs-dir', runsDir, '--objective', 'loss', '-o', out('x.yml'))).code).toBe(2);
    expect((await run('export', 'alpha', '--runs-dir', runsDir, '--objective', 'acc', '--format', 'gguf', '-o', out('x.yml'))).code).toBe(2);
    const missing = await run('export', 'alpha', '--runs-dir', runsDir, '--candidate', '999', '-o', out('x.yml'));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no candidate 999');
    expect(existsSync(out('x.yml'))).toBe(false);
  });
});
