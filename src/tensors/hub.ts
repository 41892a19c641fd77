/**
 * Hugging Face Hub repositories through the shared local cache that huggingface_hub,
 * transformers, llama.cpp and others use (https://huggingface.co/docs/hub/local-cache):
 *
 *   <cache>/models--<org>--<name>/refs/<revision>          commit hash of a branch or tag
 *   <cache>/models--<org>--<name>/snapshots/<commit>/<file> symlink to ../../blobs/<etag>
 *   <cache>/models--<org>--<name>/blobs/<etag>              the bytes (sha256 for LFS files)
 *
 * A cached snapshot that holds a complete checkpoint is used without touching the network, so a
 * search that opens the same model thousands of times stays offline and reproducible. Missing
 * files are downloaded from the Hub's documented HTTP endpoints into that same layout.
 */
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { downloadSnapshot } from './hub-download.js';
import {
  COMMIT_HASH,
  exists,
  HubError,
  repoFolderName,
  shardsNamedByIndex,
  type HubId,
  type HubOptions,
  type HubSnapshot,
} from './hub-layout.js';
import { SAFETENSORS_INDEX_FILE, SAFETENSORS_SINGLE_FILE } from './hf-files.js';

export { listRepoFiles, type RepoListing } from './hub-download.js';
export { HubError, repoFolderName, type HubErrorCode, type HubId, type HubOptions, type HubSnapshot } from './hub-layout.js';

// An optional namespace and a name of letters, digits, '-', '_', '.', then an optional @revision.
// The Hub enforces its finer rules; this only keeps ids from escaping the cache folder.
const HUB_ID = /^([A-Za-z0-9][A-Za-z0-9._-]*\/)?[A-Za-z0-9][A-Za-z0-9._-]*(@[A-Za-z0-9][A-Za-z0-9._/-]*)?$/;

/**
 * `org/name` or `org/name@revision` as a HubId, or undefined when `ref` cannot be one. Bare
 * names (`gpt2`) are accepted only when `allowBareName` is true, since they read as paths too.
 */
export function parseHubId(ref: string, allowBareName = false): HubId | undefined {
  if (!HUB_ID.test(ref) || ref.includes('..')) return undefined;
  const at = ref.indexOf('@');
  const repo = at < 0 ? ref : ref.slice(0, at);
  const revision = at < 0 ? 'main' : ref.slice(at + 1);
  if (!repo.includes('/') && !allowBareName) return undefined;
  if (revision.endsWith('/') || revision.includes('//')) return undefined;
  return { repo, revision };
}

/** Overrides of the environment for `hubOptionsFromEnv`. */
export interface HubOptionOverrides {
  /** Hugging Face home; the cache is `<hfHome>/hub`. Default: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub. */
  readonly hfHome?: string;
  /** Default: $HF_HUB_OFFLINE is 1/true/yes/on. */
  readonly offline?: boolean;
  /** Default: $HF_ENDPOINT, else https://huggingface.co. */
  readonly endpoint?: string;
}

/** Reads HF_HUB_CACHE, HF_HOME, HF_ENDPOINT, HF_TOKEN and HF_HUB_OFFLINE the way huggingface_hub does. */
export function hubOptionsFromEnv(env: NodeJS.ProcessEnv = process.env, overrides: HubOptionOverrides = {}): HubOptions {
  const nonEmpty = (v: string | undefined): string | undefined => (v === undefined || v.trim() === '' ? undefined : v);
  const home = nonEmpty(env.HOME) ?? os.homedir();
  const cacheDir =
    overrides.hfHome !== undefined
      ? path.join(overrides.hfHome, 'hub')
      : (nonEmpty(env.HF_HUB_CACHE) ?? path.join(nonEmpty(env.HF_HOME) ?? path.join(nonEmpty(env.XDG_CACHE_HOME) ?? path.join(home, '.cache'), 'huggingface'), 'hub'));
  const endpoint = (overrides.endpoint ?? nonEmpty(env.HF_ENDPOINT) ?? 'https://huggingface.co').replace(/\/+$/, '');
  const offline = overrides.offline ?? ['1', 'true', 'yes', 'on'].includes((env.HF_HUB_OFFLINE ?? '').trim().toLowerCase());
  return { cacheDir: path.resolve(cacheDir), endpoint, token: nonEmpty(env.HF_TOKEN), offline };
}

/**
 * Resolves a hub id to a snapshot folder holding a complete safetensors checkpoint: from the
 * cache when it is complete there, else (unless offline) by downloading what is missing.
 * Offline with a miss throws HUB_NOT_CACHED naming the repo and the cache path looked at.
 */
export async function resolveHubSnapshot(id: HubId, options: HubOptions): Promise<HubSnapshot> {
  const repoDir = path.join(options.cacheDir, repoFolderName(id.repo));
  const cachedCommit = await cachedCommitFor(repoDir, id.revision);
  if (cachedCommit !== undefined) {
    const dir = path.join(repoDir, 'snapshots', cachedCommit);
    if (await isCompleteCheckpoint(dir)) {
      return { repo: id.repo, revision: id.revision, commit: cachedCommit, dir, downloaded: [] };
    }
  }
  if (options.offline) {
    const where =
      cachedCommit === undefined
        ? COMMIT_HASH.test(id.revision)
          ? path.join(repoDir, 'snapshots', id.revision)
          : path.join(repoDir, 'refs', id.revision)
        : path.join(repoDir, 'snapshots', cachedCommit);
    const what = cachedCommit === undefined ? 'is not in the cache' : 'is only partly in the cache (no complete safetensors checkpoint)';
    throw new HubError('HUB_NOT_CACHED', id.repo, `${id.repo}@${id.revision} ${what} and downloads are off (HF_HUB_OFFLINE); looked at ${where}`);
  }
  return downloadSnapshot(id, options, repoDir);
}

/** The commit a revision names in the cache, or undefined when the cache does not know it. */
async function cachedCommitFor(repoDir: string, revision: string): Promise<string | undefined> {
  if (COMMIT_HASH.test(revision)) {
    return (await exists(path.join(repoDir, 'snapshots', revision))) ? revision : undefined;
  }
  try {
    const text = (await readFile(path.join(repoDir, 'refs', revision), 'utf8')).trim();
    return COMMIT_HASH.test(text) ? text : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether a folder holds config.json and all weights: every shard the index names, or
 * model.safetensors. The checkpoint reader does the real validation; this only decides whether
 * a download is needed.
 */
async function isCompleteCheckpoint(dir: string): Promise<boolean> {
  if (!(await exists(path.join(dir, 'config.json')))) return false;
  const indexPath = path.join(dir, SAFETENSORS_INDEX_FILE);
  if (await exists(indexPath)) {
    const shards = await shardsNamedByIndex(indexPath);
    if (shards === undefined) return false;
    for (const shard of shards) if (!(await exists(path.join(dir, shard)))) return false;
    return true;
  }
  return exists(path.join(dir, SAFETENSORS_SINGLE_FILE));
}
