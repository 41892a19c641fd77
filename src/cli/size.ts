import { UsageError } from '../errors.js';

/** Decimal (kB, MB, GB, TB) and binary (KiB, MiB, GiB, TiB) size suffixes, in bytes. Case-insensitive; `B` is optional. */
const UNITS: Readonly<Record<string, number>> = {
  '': 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  m: 1e6,
  mb: 1e6,
  g: 1e9,
  gb: 1e9,
  t: 1e12,
  tb: 1e12,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

/**
 * Parses a size such as `4GB`, `512MiB`, `1.5 G` or `1048576` into a whole number of bytes
 * (decimal units as disk tools print them, binary ones with `i`). Throws UsageError naming the
 * option for anything else, zero included.
 */
export function parseSizeBytes(text: string, option: string): number {
  const m = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*([a-z]*)\s*$/i.exec(text);
  const unit = m?.[2]?.toLowerCase() ?? '';
  const scale = UNITS[unit];
  if (!m || scale === undefined) {
    throw new UsageError(`${option} must be a size such as 4GB, 512MiB or 1048576, got '${text}'`);
  }
  const bytes = Math.round(Number(m[1]) * scale);
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new UsageError(`${option} must be a positive size, got '${text}'`);
  return bytes;
}
