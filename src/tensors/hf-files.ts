/**
 * File names of a Hugging Face checkpoint folder, as transformers writes them, declared once for
 * everything that reads, writes or downloads such a folder (checkpoint.ts, shards.ts, the hub
 * cache, the llama.cpp backend's tokenizer cache), so a file added here is known to all of them.
 * It imports nothing, so any module of src/tensors can use it without an import cycle.
 */

/** The one-shard weights file. */
export const SAFETENSORS_SINGLE_FILE = 'model.safetensors';
/** The shard index of a multi-shard checkpoint (the default basename). */
export const SAFETENSORS_INDEX_FILE = 'model.safetensors.index.json';
export const GENERATION_CONFIG_FILE = 'generation_config.json';

/** Tokenizer files a checkpoint folder may carry; a merge copies the ones its source has. */
export const TOKENIZER_FILE_NAMES: readonly string[] = [
  'tokenizer.json',
  'tokenizer.model',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'vocab.json',
  'merges.txt',
  'added_tokens.json',
  'chat_template.jinja',
  'chat_template.json',
];
