/**
 * Reused f32 buffers for the activations, gradients and scratch of training steps. Every step of
 * a run allocates the same sizes; fresh typed arrays cost a page fault per 4 KiB on first touch
 * and a zeroing memset (page faults took about a sixth of a step on the 2-core VM, per perf), so
 * a tape takes its buffers here and gives them all back when its step is done. A taken buffer is
 * zeroed, exactly as a new one, so results do not change by a bit.
 */
export class BufferPool {
  readonly #free = new Map<number, Float32Array[]>();

  /** A zeroed buffer of `length` floats. */
  take(length: number): Float32Array {
    const buffer = this.#free.get(length)?.pop();
    if (buffer === undefined) return new Float32Array(length);
    buffer.fill(0);
    return buffer;
  }

  /** Returns buffers for reuse; the caller must hold no view of them any more. */
  give(buffers: Iterable<Float32Array>): void {
    for (const b of buffers) {
      const list = this.#free.get(b.length);
      if (list === undefined) this.#free.set(b.length, [b]);
      else list.push(b);
    }
  }
}
