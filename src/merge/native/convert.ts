import type { ConvertArgs } from './binding.js';
import { BLOCK, elementReader, elementWriter, loadBlock, scratch, storeBlock } from './numeric.js';

/** TypeScript twin of convert.cc: out[j] = encode(round(decode(src[j]))) for j in [start, end). */
export function convertDType(a: ConvertArgs): void {
  const r = elementReader(a.src, a.srcDType, a.end, 'src');
  const w = elementWriter(a.out, a.outDType, a.start, a.end, 'out');
  const buf = scratch();
  for (let j = a.start; j < a.end; j += BLOCK) {
    const n = Math.min(BLOCK, a.end - j);
    loadBlock(r, j, n, buf.f, buf.u, a.roundDType);
    storeBlock(buf.f, buf.u, n, w, j);
  }
  w.finish();
}
