/**
 * The parts of a weight's gradient a masked fine-tune needs: a few disjoint rectangles that cover
 * every element its update mask lets change. linear() then computes dW only there (ops.ts), which
 * gives those elements the very same sums, in the same order, as the whole product would: the rest
 * of the gradient is never read (AdamW skips masked-out elements, clip norm included).
 */

/** Rows [row0, row1) × columns [col0, col1) of a row-major matrix. */
export interface GradRegion {
  readonly row0: number;
  readonly row1: number;
  readonly col0: number;
  readonly col1: number;
}

/** Maximal runs [start, end) of ones in row r. */
function rowRuns(mask: Uint8Array, r: number, cols: number): number[] {
  const runs: number[] = [];
  const base = r * cols;
  let c = 0;
  while (c < cols) {
    while (c < cols && mask[base + c] !== 1) c++;
    if (c === cols) break;
    const start = c;
    while (c < cols && mask[base + c] === 1) c++;
    runs.push(start, c);
  }
  return runs;
}

function sameRuns(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/**
 * Disjoint rectangles covering every 1 of `mask` (rows × cols). Consecutive rows with the same runs
 * of ones share a band, and rows without any one join the band around them (their elements are
 * computed and never read), so a column band over scattered rows, like an embedding's owned tokens
 * on private dims, is one rectangle. Beyond `maxRegions` rectangles: the bounding box of the ones.
 * No ones at all: none.
 */
export function maskRegions(mask: Uint8Array, rows: number, cols: number, maxRegions = 64): GradRegion[] {
  if (mask.length !== rows * cols) throw new RangeError(`maskRegions: ${mask.length} mask entries for a ${rows} × ${cols} matrix`);
  const regions: GradRegion[] = [];
  let band: number[] = [];
  let bandStart = 0;
  let bandEnd = 0; // one past the band's last row holding ones
  const close = (): void => {
    for (let i = 0; i < band.length; i += 2) regions.push({ row0: bandStart, row1: bandEnd, col0: band[i] ?? 0, col1: band[i + 1] ?? 0 });
  };
  for (let r = 0; r < rows; r++) {
    const runs = rowRuns(mask, r, cols);
    if (runs.length === 0) continue;
    if (band.length > 0 && sameRuns(runs, band)) {
      bandEnd = r + 1;
      continue;
    }
    close();
    band = runs;
    bandStart = r;
    bandEnd = r + 1;
  }
  close();
  if (regions.length <= maxRegions) return regions;
  let row0 = rows;
  let row1 = 0;
  let col0 = cols;
  let col1 = 0;
  for (const g of regions) {
    row0 = Math.min(row0, g.row0);
    row1 = Math.max(row1, g.row1);
    col0 = Math.min(col0, g.col0);
    col1 = Math.max(col1, g.col1);
  }
  return [{ row0, row1, col0, col1 }];
}
