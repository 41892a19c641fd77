/**
 * Filling the Hugging Face cache from the Hub's documented HTTP endpoints:
 * `GET {endpoint}/api/models/{repo}/revision/{rev}` lists a revision's files and commit, and
 * `{endpoint}/{repo}/resolve/{commit}/{file}` serves each file (HEAD for its ETag, which names the
 * blob; GET for the bytes, through a CDN redirect for LFS files). Writes are atomic: temporary
 * blob + fsync + rename, symlinks and refs replaced by rename.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { lstat, mkdir, open, readFile, readlink, rename, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import {
  COMMIT_HASH,
  exists,
  HubError,
  isSafeRelativePath,
  METADATA_FILES,
  shardsNamedByIndex,
  type HubId,
  type HubOptions,
  type HubSnapshot,
} from './hub-layout.js';
import { SAFETENSORS_INDEX_FILE, SAFETENSORS_SINGLE_FILE } from './hf-files.js';

/** A revision's commit and its files (repo-relative paths). */
export interface RepoListing {
  readonly commit: string;
  readonly files: readonly string[];
}

/** Downloads what a checkpoint needs from a revision into the cache and returns its snapshot. */
export async function downloadSnapshot(id: HubId, options: HubOptions, repoDir: string): Promise<HubSnapshot> {
  const listing = await listRepoFiles(id, options);
  const commit = listing.commit;
  const dir = path.join(repoDir, 'snapshots', commit);
  const available = new Set(listing.files);
  const downloaded: string[] = [];
  const ensure = async (file: string): Promise<void> => {
    if (await exists(path.join(dir, file))) return;
    await downloadToCache(id.repo, commit, file, options, repoDir);
    downloaded.push(file);
  };

  for (const file of METADATA_FILES) if (available.has(file)) await ensure(file);
  let weights: string[];
  if (available.has(SAFETENSORS_INDEX_FILE)) {
    await ensure(SAFETENSORS_INDEX_FILE);
    const shards = await shardsNamedByIndex(path.join(dir, SAFETENSORS_INDEX_FILE));
    if (shards === undefined) throw new HubError('HUB_HTTP', id.repo, `${id.repo}: ${SAFETENSORS_INDEX_FILE} from the Hub is not a valid shard index`);
    weights = shards;
  } else if (available.has(SAFETENSORS_SINGLE_FILE)) {
    weights = [SAFETENSORS_SINGLE_FILE];
  } else {
    // No standard name: take every top-level safetensors file and let the reader judge them.
    weights = listing.files.filter((f) => !f.includes('/') && f.endsWith('.safetensors'));
  }
  for (const file of weights) {
    if (!available.has(file)) {
      throw new HubError('HUB_FILE_NOT_FOUND', id.repo, `${id.repo}@${commit.slice(0, 12)}: ${SAFETENSORS_INDEX_FILE} names ${file}, which the repo does not have`);
    }
    await ensure(file);
  }
  if (!COMMIT_HASH.test(id.revision)) await writeRef(repoDir, id.revision, commit);
  return { repo: id.repo, revision: id.revision, commit, dir, downloaded };
}

function authHeaders(options: HubOptions): Record<string, string> {
  return options.token === undefined ? {} : { authorization: `Bearer ${options.token}` };
}

function encodePath(file: string): string {
  return file.split('/').map(encodeURIComponent).join('/');
}

/** Lists a revision's files and its commit through `GET /api/models/{repo}/revision/{rev}`. */
export async function listRepoFiles(id: HubId, options: HubOptions): Promise<RepoListing> {
  const url = `${options.endpoint}/api/models/${id.repo}/revision/${encodeURIComponent(id.revision)}`;
  const response = await hubFetch(id.repo, url, { headers: authHeaders(options) });
  if (!response.ok) throw httpError(id, response, `listing ${id.repo}@${id.revision}`);
  let body: unknown;
  try {
    body = await response.json();
  } catch (err) {
    throw new HubError('HUB_HTTP', id.repo, `${url}: answer is not JSON`, { cause: err });
  }
  if (typeof body !== 'object' || body === null || !('sha' in body) || typeof body.sha !== 'string' || !COMMIT_HASH.test(body.sha)) {
    throw new HubError('HUB_HTTP', id.repo, `${url}: answer has no 40-hex "sha"`);
  }
  const siblings = 'siblings' in body && Array.isArray(body.siblings) ? (body.siblings as unknown[]) : [];
  const files: string[] = [];
  for (const s of siblings) {
    if (typeof s === 'object' && s !== null && 'rfilename' in s && typeof s.rfilename === 'string' && isSafeRelativePath(s.rfilename)) {
      files.push(s.rfilename);
    }
  }
  return { commit: body.sha, files };
}

async function hubFetch(repo: string, url: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (err) {
    const reason = err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
    throw new HubError('HUB_HTTP', repo, `${url}: ${reason} (set HF_HUB_OFFLINE=1 to use only the cache)`, { cause: err });
  }
}

function httpError(id: HubId, response: Response, what: string, file?: string): HubError {
  const errorCode = response.headers.get('x-error-code') ?? '';
  const status = response.status;
  if (status === 401 || status === 403) {
    // The Hub answers 401 for private and for nonexistent repos alike when no token is sent.
    return new HubError('HUB_UNAUTHORIZED', id.repo, `${what}: HTTP ${status}; the repo is gated, private or does not exist (set HF_TOKEN for gated and private repos)`);
  }
  if (status === 404) {
    if (file !== undefined && errorCode !== 'RepoNotFound' && errorCode !== 'RevisionNotFound') {
      return new HubError('HUB_FILE_NOT_FOUND', id.repo, `${what}: ${file} not found in ${id.repo}@${id.revision}`);
    }
    return new HubError('HUB_REPO_NOT_FOUND', id.repo, `${what}: HTTP 404${errorCode ? ` (${errorCode})` : ''}; no repo ${id.repo} with revision ${id.revision}`);
  }
  return new HubError('HUB_HTTP', id.repo, `${what}: HTTP ${status} ${response.statusText}`.trimEnd());
}

/** `"abc"` or `W/"abc"` → `abc`, as huggingface_hub normalises the ETag it names blobs by. */
function normalizeEtag(value: string | null): string | undefined {
  if (value === null) return undefined;
  const bare = value.trim().replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
  return /^[A-Za-z0-9._-]+$/.test(bare) ? bare : undefined;
}

/**
 * Downloads one file of a commit into the cache: HEAD (no redirect) for the etag the blob is
 * named by, GET into a temporary blob, checks size and, for LFS files, sha256, then renames
 * it into blobs/ and points the snapshot at it with a relative symlink.
 */
async function downloadToCache(repo: string, commit: string, file: string, options: HubOptions, repoDir: string): Promise<void> {
  const id: HubId = { repo, revision: commit };
  const url = `${options.endpoint}/${repo}/resolve/${commit}/${encodePath(file)}`;
  const headers = { ...authHeaders(options), 'accept-encoding': 'identity' };
  const head = await headFileMetadata(id, url, file, headers);
  // LFS files redirect to a CDN; X-Linked-Etag carries their sha256, ETag the CDN's tag.
  const etag = normalizeEtag(head.headers.get('x-linked-etag')) ?? normalizeEtag(head.headers.get('etag'));
  if (etag === undefined) throw new HubError('HUB_HTTP', repo, `HEAD ${url}: no ETag header to name the blob by`);
  const sizeHeader = head.headers.get('x-linked-size') ?? (head.ok ? head.headers.get('content-length') : null);
  const expectedSize = sizeHeader === null ? undefined : Number(sizeHeader);

  const blob = path.join(repoDir, 'blobs', etag);
  if (!(await exists(blob))) {
    await mkdir(path.dirname(blob), { recursive: true });
    const temp = `${blob}.${process.pid}.${randomBytes(4).toString('hex')}.incomplete`;
    try {
      const response = await hubFetch(repo, url, { headers });
      if (!response.ok || response.body === null) throw httpError(id, response, `GET ${url}`, file);
      const hash = createHash('sha256');
      let size = 0;
      await pipeline(
        Readable.fromWeb(response.body as WebReadableStream<Uint8Array>),
        async function* (chunks: AsyncIterable<Uint8Array>) {
          for await (const chunk of chunks) {
            hash.update(chunk);
            size += chunk.byteLength;
            yield chunk;
          }
        },
        createWriteStream(temp, { flags: 'wx' }),
      );
      if (expectedSize !== undefined && Number.isSafeInteger(expectedSize) && size !== expectedSize) {
        throw new HubError('HUB_DIGEST_MISMATCH', repo, `GET ${url}: got ${size} bytes, the Hub announced ${expectedSize}`);
      }
      const digest = hash.digest('hex');
      if (/^[0-9a-f]{64}$/.test(etag) && digest !== etag) {
        throw new HubError('HUB_DIGEST_MISMATCH', repo, `GET ${url}: sha256 ${digest} differs from the Hub's ${etag}`);
      }
      const fh = await open(temp, 'r');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(temp, blob);
    } finally {
      await rm(temp, { force: true });
    }
  }

  const pointer = path.join(repoDir, 'snapshots', commit, ...file.split('/'));
  await mkdir(path.dirname(pointer), { recursive: true });
  const target = path.relative(path.dirname(pointer), blob);
  await replaceSymlink(pointer, target);
}

/**
 * HEAD without following the CDN redirect of LFS files (its answer carries X-Linked-Etag), but
 * following same-host redirects, which the Hub uses for renamed repos, as huggingface_hub does.
 */
async function headFileMetadata(id: HubId, url: string, file: string, headers: Record<string, string>): Promise<Response> {
  let current = url;
  for (let hop = 0; ; hop++) {
    const head = await hubFetch(id.repo, current, { method: 'HEAD', redirect: 'manual', headers });
    const redirect = head.status >= 300 && head.status < 400;
    if (!head.ok && !redirect) throw httpError(id, head, `HEAD ${current}`, file);
    const location = head.headers.get('location');
    if (!redirect || head.headers.has('x-linked-etag') || location === null || hop >= 5) return head;
    const next = new URL(location, current);
    if (next.origin !== new URL(current).origin) return head;
    current = next.href;
  }
}

/** Points `link` at `target` atomically: a temporary symlink renamed over the old entry. */
async function replaceSymlink(link: string, target: string): Promise<void> {
  try {
    if ((await lstat(link)).isSymbolicLink() && (await readlink(link)) === target) return;
  } catch {
    // absent: create it
  }
  const temp = `${link}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await symlink(target, temp);
  try {
    await rename(temp, link);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}

/** Writes refs/<revision> = commit through a temporary file and a rename. */
async function writeRef(repoDir: string, revision: string, commit: string): Promise<void> {
  const ref = path.join(repoDir, 'refs', ...revision.split('/'));
  try {
    if ((await readFile(ref, 'utf8')).trim() === commit) return;
  } catch {
    // absent: write it
  }
  await mkdir(path.dirname(ref), { recursive: true });
  const temp = `${ref}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fh = await open(temp, 'wx');
  try {
    await fh.writeFile(commit);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(temp, ref);
}
