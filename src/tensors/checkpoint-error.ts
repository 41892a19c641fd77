import { EvoError } from '../errors.js';

/** Why a model checkpoint (directory, file or hub id) could not be opened. */
export type CheckpointErrorCode =
  /** The reference is neither an existing path nor a hub id found in the cache or on the Hub. */
  | 'NOT_FOUND'
  /** The directory holds no weight files at all. */
  | 'NO_WEIGHTS'
  /** Only PyTorch (.bin/.pt/.pth), GGUF or other non-safetensors weights are present. */
  | 'UNSUPPORTED_WEIGHTS'
  /** The directory holds a LoRA/PEFT adapter, not a full model. */
  | 'ADAPTER_NOT_SUPPORTED'
  | 'CONFIG_MISSING'
  /** config.json is not JSON, not an object, or a known key has the wrong type. */
  | 'CONFIG_INVALID'
  /** config.json has no num_hidden_layers (nor an alias such as n_layer). */
  | 'MISSING_LAYERS_KEY'
  /** The shard index names a file that is not there. */
  | 'SHARD_MISSING'
  | 'TENSOR_IN_TWO_SHARDS'
  /** The shard index maps a tensor to a shard that does not hold it. */
  | 'INDEX_MISMATCH'
  /** A tensor's bytes end past the end of its file (the file shrank after its header was read). */
  | 'TENSOR_TRUNCATED';

/** A checkpoint could not be opened; the message names the file and the problem. */
export class CheckpointError extends EvoError {
  override readonly code: CheckpointErrorCode;
  /** The file (or directory) the problem is in. */
  readonly file: string;
  /** The tensor concerned, when there is one. */
  readonly tensor: string | undefined;

  constructor(code: CheckpointErrorCode, file: string, message: string, options?: { tensor?: string; cause?: unknown }) {
    super(code, message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CheckpointError';
    this.code = code;
    this.file = file;
    this.tensor = options?.tensor;
  }
}
