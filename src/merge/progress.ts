import { SingleBar } from 'cli-progress';

/** How a merge reports progress: 'auto' draws a bar on a TTY, 'none' and 'json' stay silent. */
export type ProgressMode = 'auto' | 'none' | 'json';

/** What the merge loop tells its progress display. */
export interface MergeProgress {
  /** Called once before the first task, with the totals of the whole merge. */
  start(totals: { readonly tensors: number; readonly inputBytes: number }): void;
  /** Called as work completes: output tensors finished and input bytes read since the last call. */
  advance(done: { readonly tensors: number; readonly inputBytes: number }): void;
  /** Raises the input total by bytes a statistics pass will read that start() could not foresee. */
  grow(extra: { readonly inputBytes: number }): void;
  /** A one-line warning, printed once above the bar. */
  warn(message: string): void;
  /** Called after a successful merge: prints the summary line. */
  finish(summary: MergeProgressSummary): void;
  /** Called on failure or abort: removes the bar, prints nothing more. */
  stop(): void;
}

export interface MergeProgressSummary {
  readonly tensors: number;
  readonly inputBytes: number;
  readonly seconds: number;
  readonly peakRssBytes: number;
}

/** A writable stream as the progress display needs it (process.stderr in the CLI). */
export interface ProgressStream extends NodeJS.WritableStream {
  readonly isTTY?: boolean;
}

/**
 * The progress display for `mode`: a cli-progress bar (tensors, GB, GB/s, ETA) and a final summary
 * line on `stream` when mode is 'auto' and the stream is a TTY; otherwise one that writes nothing,
 * so logs and --json output stay clean.
 */
export function createMergeProgress(mode: ProgressMode, stream: ProgressStream = process.stderr): MergeProgress {
  if (mode !== 'auto' || stream.isTTY !== true) return silentProgress;
  return new BarProgress(stream);
}

const silentProgress: MergeProgress = {
  start() {},
  advance() {},
  grow() {},
  warn() {},
  finish() {},
  stop() {},
};

const GB = 1e9;
const MB = 1e6;

/** `12.3 s: 3.21 GB read at 0.26 GB/s, peak memory 812 MB` (decimal units, as disk tools print). */
export function formatMergeSummary(s: MergeProgressSummary): string {
  const rate = s.seconds > 0 ? s.inputBytes / GB / s.seconds : 0;
  return (
    `merged ${s.tensors} tensors in ${s.seconds.toFixed(1)} s: ` +
    `${(s.inputBytes / GB).toFixed(2)} GB read at ${rate.toFixed(2)} GB/s, ` +
    `peak memory ${Math.round(s.peakRssBytes / MB)} MB`
  );
}

class BarProgress implements MergeProgress {
  readonly #stream: ProgressStream;
  readonly #bar: SingleBar;
  #tensorsDone = 0;
  #tensorsTotal = 0;
  #bytesDone = 0;
  #startedMs = 0;
  #active = false;

  constructor(stream: ProgressStream) {
    this.#stream = stream;
    this.#bar = new SingleBar({
      stream,
      format:
        'merging [{bar}] {percentage}% | {tensors}/{tensorsTotal} tensors | {readGb}/{totalGb} GB | {rate} GB/s | ETA {eta_formatted}',
      barsize: 24,
      hideCursor: null,
      etaBuffer: 50,
      fps: 5,
      gracefulExit: true,
    });
  }

  start(totals: { readonly tensors: number; readonly inputBytes: number }): void {
    this.#tensorsTotal = totals.tensors;
    this.#startedMs = performance.now();
    this.#active = true;
    // The bar counts input bytes, so its percentage and ETA weigh a tensor by its size.
    this.#bar.start(Math.max(totals.inputBytes, 1), 0, this.#payload(totals.inputBytes));
  }

  advance(done: { readonly tensors: number; readonly inputBytes: number }): void {
    this.#tensorsDone += done.tensors;
    this.#bytesDone += done.inputBytes;
    if (this.#active) this.#bar.update(this.#bytesDone, this.#payload(this.#bar.getTotal()));
  }

  grow(extra: { readonly inputBytes: number }): void {
    if (!this.#active) return;
    this.#bar.setTotal(this.#bar.getTotal() + extra.inputBytes);
    this.#bar.update(this.#bytesDone, this.#payload(this.#bar.getTotal()));
  }

  warn(message: string): void {
    // Clear the bar's line, print, and let the next update redraw it.
    this.#stream.write(`\r\u001b[2K${message}\n`);
  }

  finish(summary: MergeProgressSummary): void {
    this.#end();
    this.#stream.write(`${formatMergeSummary(summary)}\n`);
  }

  stop(): void {
    this.#end();
  }

  #end(): void {
    if (!this.#active) return;
    this.#active = false;
    this.#bar.stop();
  }

  #payload(totalBytes: number): Record<string, string | number> {
    const seconds = (performance.now() - this.#startedMs) / 1000;
    return {
      tensors: this.#tensorsDone,
      tensorsTotal: this.#tensorsTotal,
      readGb: (this.#bytesDone / GB).toFixed(2),
      totalGb: (totalBytes / GB).toFixed(2),
      rate: seconds > 0 ? (this.#bytesDone / GB / seconds).toFixed(2) : '0.00',
    };
  }
}
