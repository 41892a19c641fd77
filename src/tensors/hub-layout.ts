/**
 * The parts of the Hugging Face cache layout and hub vocabulary shared by hub.ts (reading the
 * cache) and hub-download.ts (filling it): errors, ids, options, file names, small checks.
 */
import { readFile, stat } from 'node:fs/promises';
import { EvoError } from '../errors.js';
import { GENERATION_CONFIG_FILE, TOKENIZER_FILE_NAMES } from './hf-files.js';

/** Why a hub model could not be resolved or downloaded. */
export type HubErrorCode =
  /** Offline (or downloads disabled) and the cache lacks the repo, revision or a file. */
  | 'HUB_NOT_CACHED'
  /** The Hub says the repo or revision does not exist (or is private without a token). */
  | 'HUB_REPO_NOT_FOUND'
  | 'HUB_FILE_NOT_FOUND'
  /** 401/403: gated or private repo; set HF_TOKEN. */
  | 'HUB_UNAUTHORIZED'
  /** Any other HTTP failure, a malformed answer, or a network error. */
  | 'HUB_HTTP'
  /** The downloaded bytes do not match the size or sha256 the Hub announced. */
  | 'HUB_DIGEST_MISMATCH';

export class HubError extends EvoError {
  override readonly code: HubErrorCode;
  /** The repo id, e.g. `org/name`. */
  readonly repo: string;

  constructor(code: HubErrorCode, repo: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'HubError';
    this.code = code;
    this.repo = repo;
  }
}

/** A parsed `org/name[@revision]` reference. */
export interface HubId {
  /** `org/name` as written (case is preserved, as the cache does). */
  readonly repo: string;
  /** Branch, tag or 40-hex commit hash. Default: 'main'. */
  readonly revision: string;
}

/** A full commit id, as refs/ files hold and snapshots/ folders are named. */
export const COMMIT_HASH = /^[0-9a-f]{40}$/;

/** Where the cache is and how to reach the Hub. Build one with `hubOptionsFromEnv`. */
export interface HubOptions {
  /** The hub cache folder (the one holding `models--*`). */
  readonly cacheDir: string;
  /** Hub base URL, without trailing slash. Default: $HF_ENDPOINT or https://huggingface.co. */
  readonly endpoint: string;
  /** Bearer token for gated and private repos. Default: $HF_TOKEN. */
  readonly token: string | undefined;
  /** Never use the network; a cache miss is an error. Default: $HF_HUB_OFFLINE. */
  readonly offline: boolean;
}

/** `models--org--name`: the repo's folder in the cache. */
export function repoFolderName(repo: string): string {
  return `models--${repo.split('/').join('--')}`;
}

/** A repo revision present in the cache, ready to read as a checkpoint directory. */
export interface HubSnapshot {
  readonly repo: string;
  /** The revision asked for (branch, tag or hash). */
  readonly revision: string;
  /** The 40-hex commit it resolved to. */
  readonly commit: string;
  /** Absolute path of `snapshots/<commit>/`. */
  readonly dir: string;
  /** Files fetched from the Hub by this call (empty when the cache already had everything). */
  readonly downloaded: readonly string[];
}

/** Files of a model repo that a checkpoint needs besides its weights. */
export const METADATA_FILES: readonly string[] = ['config.json', GENERATION_CONFIG_FILE, ...TOKENIZER_FILE_NAMES];

/** The shard files an index names, or undefined when it is not a readable index. */
export async function shardsNamedByIndex(indexPath: string): Promise<string[] | undefined> {
  try {
    const parsed: unknown = JSON.parse(await readFile(indexPath, 'utf8'));
    if (typeof parsed !== 'object' || parsed === null || !('weight_map' in parsed)) return undefined;
    const map = parsed.weight_map;
    if (typeof map !== 'object' || map === null) return undefined;
    const files = new Set<string>();
    for (const v of Object.values(map)) if (typeof v === 'string' && isSafeRelativePath(v)) files.add(v);
    return [...files].sort();
  } catch {
    return undefined;
  }
}

/** Follows symlinks: true when the path leads to an existing file or folder. */
export async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

/** A repo-relative file name that stays inside its snapshot folder. */
export function isSafeRelativePath(name: string): boolean {
  if (name === '' || name.startsWith('/') || name.includes('\\')) return false;
  return name.split('/').every((part) => part !== '' && part !== '.' && part !== '..');
}
