import { lstat, mkdtemp, readdir, readFile, readlink, rm, unlink, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../src/tensors/checkpoint.js';
import { HubError, hubOptionsFromEnv, parseHubId, repoFolderName, resolveHubSnapshot, type HubOptions } from '../../src/tensors/hub.js';
import { cacheHubSnapshot, gitBlobEtag, lfsEtag } from '../fixtures/hf-cache.js';
import { writeTinyLlama, type TinyLlamaInfo } from '../fixtures/tiny-llama.js';

const COMMIT_A = 'a'.repeat(40);
const COMMIT_B = '0123456789abcdef0123456789abcdef01234567';

let root: string;
let counter = 0;
function fresh(name: string): string {
  return path.join(root, `${++counter}-${name}`);
}

const sha256 = lfsEtag;
const gitBlobId = gitBlobEtag;

async function filesOf(dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const name of await readdir(dir)) out.set(name, await readFile(path.join(dir, name)));
  return out;
}

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'evo-hub-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('parseHubId', () => {
  it.each([
    ['org/name', { repo: 'org/name', revision: 'main' }],
    ['Qwen/Qwen2.5-0.5B-Instruct', { repo: 'Qwen/Qwen2.5-0.5B-Instruct', revision: 'main' }],
    ['org/name@v1.0', { repo: 'org/name', revision: 'v1.0' }],
    ['org/name@refs/pr/1', { repo: 'org/name', revision: 'refs/pr/1' }],
    [`org/name@${COMMIT_B}`, { repo: 'org/name', revision: COMMIT_B }],
  ])('%s', (ref, expected) => {
    expect(parseHubId(ref)).toEqual(expected);
  });
  it.each(['gpt2', './org/name', '/abs/dir', 'a/b/c', 'org/..', '../x', 'org/name@', 'org/name@a/../b', 'org/name@x/', '-org/name', 'org name/x', ''])(
    'rejects %j',
    (ref) => {
      expect(parseHubId(ref)).toBeUndefined();
    },
  );
  it('accepts bare names only when asked', () => {
    expect(parseHubId('gpt2', true)).toEqual({ repo: 'gpt2', revision: 'main' });
  });
});

describe('hubOptionsFromEnv', () => {
  it('follows huggingface_hub: HF_HUB_CACHE, then HF_HOME/hub, then XDG_CACHE_HOME, then ~/.cache', () => {
    expect(hubOptionsFromEnv({ HOME: '/h' }).cacheDir).toBe('/h/.cache/huggingface/hub');
    expect(hubOptionsFromEnv({ HOME: '/h', XDG_CACHE_HOME: '/x' }).cacheDir).toBe('/x/huggingface/hub');
    expect(hubOptionsFromEnv({ HOME: '/h', HF_HOME: '/hf' }).cacheDir).toBe('/hf/hub');
    expect(hubOptionsFromEnv({ HOME: '/h', HF_HOME: '/hf', HF_HUB_CACHE: '/c' }).cacheDir).toBe('/c');
    expect(hubOptionsFromEnv({ HF_HUB_CACHE: '/c' }, { hfHome: '/o' }).cacheDir).toBe('/o/hub');
  });
  it('reads endpoint, token and offline', () => {
    expect(hubOptionsFromEnv({})).toMatchObject({ endpoint: 'https://huggingface.co', token: undefined, offline: false });
    expect(hubOptionsFromEnv({ HF_ENDPOINT: 'http://mirror:8080/', HF_TOKEN: 'hf_x', HF_HUB_OFFLINE: '1' })).toMatchObject({
      endpoint: 'http://mirror:8080',
      token: 'hf_x',
      offline: true,
    });
    for (const v of ['true', 'YES', 'on']) expect(hubOptionsFromEnv({ HF_HUB_OFFLINE: v }).offline).toBe(true);
    for (const v of ['0', 'false', '']) expect(hubOptionsFromEnv({ HF_HUB_OFFLINE: v }).offline).toBe(false);
    expect(hubOptionsFromEnv({ HF_HUB_OFFLINE: '1' }, { offline: false }).offline).toBe(false);
  });
  it('names repo folders as the cache does', () => {
    expect(repoFolderName('julien-c/EsperBERTo-small')).toBe('models--julien-c--EsperBERTo-small');
    expect(repoFolderName('gpt2')).toBe('models--gpt2');
  });
});

describe('resolving through a local cache', () => {
  let hfHome: string;
  let cacheDir: string;
  let modelA: TinyLlamaInfo;
  let modelB: TinyLlamaInfo;
  beforeAll(async () => {
    hfHome = fresh('hf-home');
    cacheDir = path.join(hfHome, 'hub');
    modelA = await writeTinyLlama(fresh('src-a'), { layers: 2, seed: 1 });
    modelB = await writeTinyLlama(fresh('src-b'), { layers: 3, seed: 2, shardBytes: 4096 });
    await cacheHubSnapshot(cacheDir, 'org/tiny', COMMIT_A, modelA.dir, ['main']);
    await cacheHubSnapshot(cacheDir, 'org/tiny', COMMIT_B, modelB.dir, ['v2', 'refs/pr/7']);
  });
  const offline = (): { hfHome: string; offline: boolean; env: NodeJS.ProcessEnv } => ({ hfHome, offline: true, env: {} });

  it('follows refs/main to its snapshot', async () => {
    const ckpt = await openCheckpoint('org/tiny', offline());
    expect(ckpt.source).toEqual({ kind: 'hub', repo: 'org/tiny', revision: 'main', commit: COMMIT_A });
    expect(ckpt.dir).toBe(path.join(cacheDir, 'models--org--tiny', 'snapshots', COMMIT_A));
    expect(ckpt.ref).toBe('org/tiny');
    expect(ckpt.config.numHiddenLayers).toBe(2);
    expect(ckpt.tokenizerFiles).toContain('tokenizer.json');
    // Offsets are read through the snapshot symlinks.
    const t = ckpt.tensors.get('model.norm.weight');
    expect(t?.file).toBe(path.join(ckpt.dir, 'model.safetensors'));
    const bytes = await readFile(t?.file ?? '');
    const values = new Float32Array(bytes.buffer.slice(bytes.byteOffset + (t?.byteOffset ?? 0), bytes.byteOffset + (t?.byteOffset ?? 0) + (t?.byteLength ?? 0)));
    expect(values).toEqual(modelA.values.get('model.norm.weight'));
  });

  it('resolves a tag, a pull-request ref and a commit hash', async () => {
    for (const ref of ['org/tiny@v2', 'org/tiny@refs/pr/7', `org/tiny@${COMMIT_B}`]) {
      const ckpt = await openCheckpoint(ref, offline());
      expect(ckpt.source).toMatchObject({ kind: 'hub', commit: COMMIT_B });
      expect(ckpt.config.numHiddenLayers).toBe(3);
      expect(ckpt.shardFiles).toHaveLength(modelB.weightFiles.length);
    }
    const byHash = await openCheckpoint(`org/tiny@${COMMIT_A}`, offline());
    expect(byHash.source).toMatchObject({ revision: COMMIT_A, commit: COMMIT_A });
  });

  it('reads HF_HOME and HF_HUB_OFFLINE from the environment it is given', async () => {
    const ckpt = await openCheckpoint('org/tiny', { env: { HF_HOME: hfHome, HF_HUB_OFFLINE: '1' } });
    expect(ckpt.source).toMatchObject({ commit: COMMIT_A });
  });

  it('offline and missing: HUB_NOT_CACHED naming the repo and the path looked at', async () => {
    const cases: [string, string][] = [
      ['org/absent', path.join(cacheDir, 'models--org--absent', 'refs', 'main')],
      ['org/tiny@v9', path.join(cacheDir, 'models--org--tiny', 'refs', 'v9')],
      [`org/tiny@${'f'.repeat(40)}`, path.join(cacheDir, 'models--org--tiny', 'snapshots', 'f'.repeat(40))],
    ];
    for (const [ref, looked] of cases) {
      const err = await openCheckpoint(ref, offline()).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(HubError);
      expect((err as HubError).code).toBe('HUB_NOT_CACHED');
      expect((err as HubError).message).toContain(ref.split('@')[0]);
      expect((err as HubError).message).toContain(`looked at ${looked}`);
    }
  });

  it('offline with a partial snapshot: HUB_NOT_CACHED, and a relative path that parses as an id says so', async () => {
    const cache2 = path.join(fresh('partial'), 'hub');
    const snap = await cacheHubSnapshot(cache2, 'org/part', COMMIT_B, modelB.dir, ['main']);
    await unlink(path.join(snap, modelB.weightFiles[0] ?? ''));
    const err = (await openCheckpoint('org/part', { hfHome: path.dirname(cache2), offline: true, env: {}, baseDir: root }).catch((e: unknown) => e)) as HubError;
    expect(err.code).toBe('HUB_NOT_CACHED');
    expect(err.message).toContain('only partly in the cache');
    expect(err.message).toContain(`${path.join(root, 'org/part')} does not exist either`);
  });
});

interface ServedFile {
  readonly bytes: Buffer;
  readonly lfs: boolean;
}

/** A stand-in for the Hub's documented endpoints, on 127.0.0.1. */
class FakeHub {
  readonly requests: string[] = [];
  readonly authorizations: (string | undefined)[] = [];
  readonly repos = new Map<string, { commit: string; files: Map<string, ServedFile>; extraListed: string[] }>();
  /** File names whose GET body is corrupted (to test digest checks). */
  readonly corrupt = new Set<string>();
  /** Old repo name → new name. */
  readonly renamed = new Map<string, string>();
  /** Status to answer every API call with, when set. */
  forcedStatus: { status: number; errorCode?: string } | undefined;
  private server: http.Server | undefined;
  endpoint = '';

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.endpoint = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }

  async addRepo(repo: string, commit: string, srcDir: string, extraListed: string[] = []): Promise<void> {
    const files = new Map<string, ServedFile>();
    for (const [name, bytes] of await filesOf(srcDir)) files.set(name, { bytes, lfs: name.endsWith('.safetensors') });
    this.repos.set(repo, { commit, files, extraListed });
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = decodeURIComponent(req.url ?? '');
    this.requests.push(`${req.method} ${url}`);
    this.authorizations.push(req.headers.authorization);
    if (this.forcedStatus !== undefined) {
      res.writeHead(this.forcedStatus.status, this.forcedStatus.errorCode ? { 'x-error-code': this.forcedStatus.errorCode } : {});
      res.end();
      return;
    }
    // A renamed repo answers with a same-host redirect to its new name.
    for (const [from, to] of this.renamed) {
      if (url.startsWith(`/${from}/`) || url.startsWith(`/api/models/${from}/`)) {
        res.writeHead(307, { location: url.replace(from, to) });
        res.end();
        return;
      }
    }
    const api = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/(.+)$/.exec(url);
    if (api) {
      const repo = this.repos.get(api[1] ?? '');
      if (repo === undefined) return this.notFound(res, 'RepoNotFound');
      if (api[2] !== 'main' && api[2] !== repo.commit) return this.notFound(res, 'RevisionNotFound');
      const siblings = [...repo.files.keys(), ...repo.extraListed].map((rfilename) => ({ rfilename }));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: api[1], sha: repo.commit, siblings }));
      return;
    }
    const cdn = /^\/cdn\/([0-9a-f]{64})$/.exec(url);
    if (cdn) {
      for (const repo of this.repos.values()) {
        for (const [name, file] of repo.files) {
          if (sha256(file.bytes) !== cdn[1]) continue;
          const body = this.corrupt.has(name) ? Buffer.from(file.bytes.map((b, i) => (i === 100 ? b ^ 1 : b))) : file.bytes;
          res.writeHead(200, { 'content-length': String(body.byteLength), etag: '"cdn-etag"' });
          res.end(body);
          return;
        }
      }
      return this.notFound(res, 'EntryNotFound');
    }
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([0-9a-f]{40})\/(.+)$/.exec(url);
    const repo = resolve ? this.repos.get(resolve[1] ?? '') : undefined;
    const file = resolve && repo ? repo.files.get(resolve[3] ?? '') : undefined;
    if (!resolve || repo === undefined || resolve[2] !== repo.commit || file === undefined) return this.notFound(res, 'EntryNotFound');
    if (file.lfs) {
      // LFS files redirect to a CDN; the blob name travels in X-Linked-Etag.
      const digest = sha256(file.bytes);
      res.writeHead(302, {
        location: `/cdn/${digest}`,
        'x-linked-etag': `"${digest}"`,
        'x-linked-size': String(file.bytes.byteLength),
        'x-repo-commit': repo.commit,
        etag: 'W/"not-the-blob-name"',
      });
      res.end();
      return;
    }
    res.writeHead(200, { etag: `"${gitBlobId(file.bytes)}"`, 'content-length': String(file.bytes.byteLength), 'x-repo-commit': repo.commit });
    res.end(req.method === 'HEAD' ? undefined : file.bytes);
  }

  private notFound(res: http.ServerResponse, code: string): void {
    res.writeHead(404, { 'x-error-code': code });
    res.end();
  }
}

describe('downloading into the cache', () => {
  const hub = new FakeHub();
  const REMOTE = 'c0ffee'.padEnd(40, '1');
  let single: TinyLlamaInfo;
  let sharded: TinyLlamaInfo;
  beforeAll(async () => {
    await hub.start();
    single = await writeTinyLlama(fresh('remote-single'), { layers: 2, seed: 5 });
    sharded = await writeTinyLlama(fresh('remote-sharded'), { layers: 3, seed: 6, shardBytes: 4096 });
    await writeFile(path.join(sharded.dir, 'README.md'), '# tiny\n');
    await writeFile(path.join(sharded.dir, 'pytorch_model.bin'), 'pickles');
    await hub.addRepo('org/single', REMOTE, single.dir);
    await hub.addRepo('org/sharded', REMOTE, sharded.dir, ['onnx/model.onnx']);
  });
  afterAll(async () => {
    await hub.stop();
  });
  beforeEach(() => {
    hub.requests.length = 0;
    hub.authorizations.length = 0;
    hub.corrupt.clear();
    hub.forcedStatus = undefined;
  });
  const options = (hfHome: string): HubOptions => ({ cacheDir: path.join(hfHome, 'hub'), endpoint: hub.endpoint, token: 'hf_test', offline: false });

  it('downloads a sharded model into blobs/, snapshots/ and refs/, then serves it from the cache', async () => {
    const hfHome = fresh('dl-home');
    const ckpt = await openCheckpoint('org/sharded', { hfHome, env: { HF_ENDPOINT: hub.endpoint, HF_TOKEN: 'hf_test' } });
    const repoDir = path.join(hfHome, 'hub', 'models--org--sharded');
    expect(ckpt.source).toEqual({ kind: 'hub', repo: 'org/sharded', revision: 'main', commit: REMOTE });
    expect(ckpt.dir).toBe(path.join(repoDir, 'snapshots', REMOTE));
    expect((await readFile(path.join(repoDir, 'refs', 'main'), 'utf8')).trim()).toBe(REMOTE);
    // Every snapshot entry is a relative symlink to a blob named by its etag.
    const snapshotEntries = (await readdir(ckpt.dir)).sort();
    expect(snapshotEntries).toEqual(
      ['config.json', 'generation_config.json', 'model.safetensors.index.json', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json', ...sharded.weightFiles].sort(),
    );
    for (const name of snapshotEntries) {
      const entry = path.join(ckpt.dir, name);
      expect((await lstat(entry)).isSymbolicLink()).toBe(true);
      const original = await readFile(path.join(sharded.dir, name));
      const etag = name.endsWith('.safetensors') ? sha256(original) : gitBlobId(original);
      expect(await readlink(entry)).toBe(`../../blobs/${etag}`);
      expect(await readFile(entry)).toEqual(original);
    }
    expect((await readdir(path.join(repoDir, 'blobs'))).filter((f) => f.includes('.'))).toEqual([]);
    // Weights read back exactly.
    expect(ckpt.tensors.size).toBe(sharded.tensorNames.length);
    expect(ckpt.problems).toEqual([]);
    // README, pytorch_model.bin and onnx/ were not fetched; the token went with every request.
    expect(hub.requests.some((r) => r.includes('README') || r.includes('.bin') || r.includes('onnx'))).toBe(false);
    expect(hub.requests.filter((r) => r.startsWith('GET /cdn/'))).toHaveLength(sharded.weightFiles.length);
    expect(hub.authorizations.filter((a, i) => !(hub.requests[i] ?? '').startsWith('GET /cdn/')).every((a) => a === 'Bearer hf_test')).toBe(true);

    // A second open touches no network.
    hub.requests.length = 0;
    const again = await openCheckpoint('org/sharded', { hfHome, env: { HF_ENDPOINT: hub.endpoint } });
    expect(again.source).toEqual(ckpt.source);
    expect(hub.requests).toEqual([]);
  });

  it('fetches only what a partial snapshot lacks, reusing blobs it already has', async () => {
    const hfHome = fresh('dl-partial');
    const first = await resolveHubSnapshot({ repo: 'org/single', revision: 'main' }, options(hfHome));
    expect(first.downloaded).toEqual(['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'model.safetensors']);
    await unlink(path.join(first.dir, 'model.safetensors'));
    await unlink(path.join(first.dir, 'tokenizer.json'));
    hub.requests.length = 0;
    const second = await resolveHubSnapshot({ repo: 'org/single', revision: 'main' }, options(hfHome));
    expect(second.downloaded).toEqual(['tokenizer.json', 'model.safetensors']);
    // The blobs were still there: HEAD requests only, no body downloaded again.
    expect(hub.requests.filter((r) => r.startsWith('GET') && !r.startsWith('GET /api/'))).toEqual([]);
    expect(await readFile(path.join(second.dir, 'model.safetensors'))).toEqual(await readFile(path.join(single.dir, 'model.safetensors')));
  });

  it('follows same-host redirects of a renamed repo and caches under the name asked for', async () => {
    const hfHome = fresh('dl-renamed');
    hub.renamed.set('old/single', 'org/single');
    try {
      const ckpt = await openCheckpoint('old/single', { hfHome, env: { HF_ENDPOINT: hub.endpoint } });
      expect(ckpt.dir).toBe(path.join(hfHome, 'hub', 'models--old--single', 'snapshots', REMOTE));
      expect(ckpt.tensors.size).toBe(single.tensorNames.length);
      expect(hub.requests.filter((r) => r.startsWith('HEAD /old/single/resolve/'))).toHaveLength(6);
    } finally {
      hub.renamed.clear();
    }
  });

  it('downloads a commit hash revision without writing a ref', async () => {
    const hfHome = fresh('dl-hash');
    const snap = await resolveHubSnapshot({ repo: 'org/single', revision: REMOTE }, options(hfHome));
    expect(snap.commit).toBe(REMOTE);
    await expect(readdir(path.join(hfHome, 'hub', 'models--org--single', 'refs'))).rejects.toThrow();
  });

  it('maps Hub errors to codes', async () => {
    const hfHome = fresh('dl-errors');
    const codeOf = async (repo: string, opts: HubOptions = options(hfHome)): Promise<string> => {
      const err = await resolveHubSnapshot({ repo, revision: 'main' }, opts).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(HubError);
      expect((err as Error).message).not.toContain('\n');
      return (err as HubError).code;
    };
    expect(await codeOf('org/missing')).toBe('HUB_REPO_NOT_FOUND');
    hub.forcedStatus = { status: 401 };
    expect(await codeOf('org/single')).toBe('HUB_UNAUTHORIZED');
    hub.forcedStatus = { status: 500 };
    expect(await codeOf('org/single')).toBe('HUB_HTTP');
    hub.forcedStatus = undefined;
    expect(await codeOf('org/single', { ...options(hfHome), endpoint: 'http://127.0.0.1:9' })).toBe('HUB_HTTP');
  });

  it('rejects a corrupted download and leaves no blob or temporary file', async () => {
    const hfHome = fresh('dl-corrupt');
    hub.corrupt.add('model.safetensors');
    const err = (await resolveHubSnapshot({ repo: 'org/single', revision: 'main' }, options(hfHome)).catch((e: unknown) => e)) as HubError;
    expect(err).toBeInstanceOf(HubError);
    expect(err.code).toBe('HUB_DIGEST_MISMATCH');
    const blobs = await readdir(path.join(hfHome, 'hub', 'models--org--single', 'blobs'));
    const weightsBlob = sha256(await readFile(path.join(single.dir, 'model.safetensors')));
    expect(blobs).not.toContain(weightsBlob);
    expect(blobs.filter((b) => b.includes('.'))).toEqual([]);
  });

  it('offline never touches the network', async () => {
    const hfHome = fresh('dl-offline');
    const err = (await openCheckpoint('org/single', { hfHome, offline: true, env: { HF_ENDPOINT: hub.endpoint } }).catch((e: unknown) => e)) as HubError;
    expect(err.code).toBe('HUB_NOT_CACHED');
    expect(hub.requests).toEqual([]);
  });
});
