import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { GGUF_OUT_TYPES, convertHfToGguf } from '../convert/hf-to-gguf.js';
import type { GgufOutType } from '../convert/hf-to-gguf.js';
import { convertLlama2cToHf } from '../convert/llama2c.js';
import { formatBytes } from './inspect.js';
import { emitResult } from './output.js';

interface ConvertFlags {
  out?: string;
  outtype: string;
  name?: string;
  pre?: string;
  tokenizer?: string;
  hfOut?: string;
  json: boolean;
}

/** `evo convert --json` output. */
export interface ConvertReport {
  readonly source: string;
  /** The HF folder written from a llama2.c checkpoint (--hf-out), else null. */
  readonly hfDir: string | null;
  readonly gguf: { readonly file: string; readonly bytes: number; readonly tensors: number; readonly outType: GgufOutType } | null;
}

function parseOutType(v: string): GgufOutType {
  const t = v.toLowerCase();
  if ((GGUF_OUT_TYPES as readonly string[]).includes(t)) return t as GgufOutType;
  throw new UsageError(`--outtype must be one of ${GGUF_OUT_TYPES.join(', ')}, got ${v}`);
}

/**
 * Registers `evo convert <source> --out model.gguf [--outtype ...]`: an HF model folder to GGUF,
 * or a llama2.c checkpoint (`--tokenizer tok.bin`) to an HF folder (`--hf-out`) and/or GGUF.
 */
export function registerConvert(program: Command): void {
  program
    .command('convert')
    .description('convert a Hugging Face model folder (llama, mistral, qwen2) or a llama2.c checkpoint to GGUF for llama.cpp')
    .argument('<source>', 'HF model folder, or a llama2.c .bin checkpoint (with --tokenizer)')
    .option('-o, --out <file>', 'GGUF file to write')
    .option('--outtype <type>', `matrix type: ${GGUF_OUT_TYPES.join(', ')} (auto keeps the stored float type)`, 'auto')
    .option('--name <name>', 'general.name written in the GGUF (default: the output file name)')
    .option('--pre <name>', 'llama.cpp pre-tokenizer name for byte-level BPE tokenizers (default: detected)')
    .option('--tokenizer <file>', 'llama2.c tokenizer (tok*.bin) for a llama2.c checkpoint')
    .option('--hf-out <dir>', 'also keep the HF folder converted from a llama2.c checkpoint here')
    .option('--json', 'print one JSON document instead of text', false)
    .action(async (source: string, flags: ConvertFlags) => {
      const outType = parseOutType(flags.outtype);
      if (flags.out === undefined && flags.hfOut === undefined) throw new UsageError('convert: give --out <file.gguf> (or --hf-out <dir> for a llama2.c checkpoint)');
      const isFile = (await stat(source).catch(() => undefined))?.isFile() === true;
      if (!isFile && (flags.tokenizer !== undefined || flags.hfOut !== undefined)) {
        throw new UsageError('convert: --tokenizer and --hf-out apply to llama2.c checkpoint files only');
      }
      if (isFile && flags.tokenizer === undefined) throw new UsageError(`convert: ${source} is a file; a llama2.c checkpoint needs --tokenizer <tok.bin>`);

      let hfDir = source;
      let tempDir: string | undefined;
      try {
        if (isFile && flags.tokenizer !== undefined) {
          hfDir = flags.hfOut ?? (tempDir = await mkdtemp(path.join(os.tmpdir(), 'evo-llama2c-')));
          await convertLlama2cToHf(source, flags.tokenizer, hfDir);
        }
        let gguf: ConvertReport['gguf'] = null;
        if (flags.out !== undefined) {
          const summary = await convertHfToGguf(hfDir, flags.out, {
            outType,
            ...(flags.name === undefined ? {} : { name: flags.name }),
            ...(flags.pre === undefined ? {} : { pre: flags.pre }),
          });
          gguf = { file: path.resolve(summary.file), bytes: summary.bytes, tensors: summary.tensorCount, outType };
        }
        const report: ConvertReport = { source, hfDir: isFile && flags.hfOut !== undefined ? path.resolve(flags.hfOut) : null, gguf };
        emitResult(flags.json, report, () =>
          [
            report.hfDir === null ? undefined : `wrote HF folder ${report.hfDir}`,
            gguf === null ? undefined : `wrote ${gguf.file}: ${gguf.tensors} tensors, ${formatBytes(gguf.bytes)} (${gguf.outType})`,
          ]
            .filter((l) => l !== undefined)
            .join('\n'),
        );
      } finally {
        if (tempDir !== undefined) await rm(tempDir, { recursive: true, force: true });
      }
    });
}
