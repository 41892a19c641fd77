import seedrandom from 'seedrandom';

/**
 * Seeded random streams with saved state (design.md, Contracts; style.md §6). Every draw of the
 * search comes from a named stream of an RngStreams passed in by the caller, never from
 * Math.random or a module-level generator, and the streams' states are part of every saved
 * optimizer state, so a resumed search draws exactly what an uninterrupted one would have.
 *
 * The generator is seedrandom's Alea: its state is four numbers, which keeps saved states small
 * and round-trips exactly through JSON.
 */

/** The state of one stream (Alea's registers), as JSON. */
export interface RngStreamState {
  readonly c: number;
  readonly s0: number;
  readonly s1: number;
  readonly s2: number;
}

/** The state of a tree of named streams: its seed path and the streams drawn from so far. */
export interface RngState {
  readonly seed: string;
  readonly streams: Readonly<Record<string, RngStreamState>>;
}

type AleaPrng = seedrandom.StatefulPRNG<seedrandom.State.Alea>;

function isStreamState(v: unknown): v is RngStreamState {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Record<string, unknown>;
  return ['c', 's0', 's1', 's2'].every((k) => typeof r[k] === 'number' && Number.isFinite(r[k]));
}

/** One stream of uniform numbers, with helpers for the distributions the optimizers use. */
export class Rng {
  readonly #prng: AleaPrng;

  /** Internal: use RngStreams.stream(name). */
  constructor(seed: string, state?: RngStreamState) {
    this.#prng = state === undefined ? seedrandom.alea(seed, { state: true }) : seedrandom.alea('', { state: { ...state } });
  }

  /** A uniform number in [0, 1) with 53 bits of randomness. */
  next(): number {
    return this.#prng.double();
  }

  /** A uniform integer in [0, n); n must be a positive integer. */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0) throw new RangeError(`Rng.int: n must be a positive integer, got ${n}`);
    return Math.min(n - 1, Math.floor(this.next() * n));
  }

  /**
   * A standard normal draw (Box–Muller). Both uniforms are consumed and the second normal is
   * discarded, so the stream's state is only its four registers (no cached spare to save).
   */
  normal(): number {
    const u1 = 1 - this.next(); // (0, 1]: log is finite
    const u2 = this.next();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /** A uniformly chosen element; the array must not be empty. */
  pick<T>(items: readonly T[]): T {
    const v = items[this.int(items.length)];
    if (v === undefined) throw new RangeError('Rng.pick: empty array');
    return v;
  }

  /** The indices 0..n−1 in a uniformly random order (Fisher–Yates). */
  permutation(n: number): number[] {
    const out = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const a = out[i] ?? 0;
      out[i] = out[j] ?? 0;
      out[j] = a;
    }
    return out;
  }

  state(): RngStreamState {
    const s = this.#prng.state();
    return { c: s.c, s0: s.s0, s1: s.s1, s2: s.s2 };
  }
}

/**
 * A tree of independent named streams under one seed. Stream `name` is seeded from
 * `${seed}/${name}`, so adding a new stream never shifts the draws of existing ones, and
 * `child(name)` gives a sub-tree (e.g. `optimizer`) that a component owns and saves by itself.
 */
export class RngStreams {
  readonly seed: string;
  readonly #streams = new Map<string, Rng>();

  /** @param seed any number or string; the same seed gives the same streams. */
  constructor(seed: number | string, saved?: Readonly<Record<string, RngStreamState>>) {
    this.seed = String(seed);
    if (saved) {
      for (const [name, st] of Object.entries(saved)) this.#streams.set(name, new Rng(`${this.seed}/${name}`, st));
    }
  }

  /** Restores streams saved by saveState(); throws RangeError on a malformed state. */
  static fromState(state: RngState): RngStreams {
    if (typeof state.seed !== 'string' || typeof state.streams !== 'object' || state.streams === null) {
      throw new RangeError('RngStreams.fromState: malformed state');
    }
    for (const [name, st] of Object.entries(state.streams)) {
      if (!isStreamState(st)) throw new RangeError(`RngStreams.fromState: malformed state of stream '${name}'`);
    }
    return new RngStreams(state.seed, state.streams);
  }

  /** The stream called `name`, created on first use. */
  stream(name: string): Rng {
    let s = this.#streams.get(name);
    if (!s) {
      s = new Rng(`${this.seed}/${name}`);
      this.#streams.set(name, s);
    }
    return s;
  }

  /** An independent tree seeded from `${seed}/${name}/`; its state is saved separately. */
  child(name: string): RngStreams {
    return new RngStreams(`${this.seed}/${name}/`);
  }

  /** JSON-serializable state of every stream drawn from so far, sorted by name. */
  saveState(): RngState {
    const streams: Record<string, RngStreamState> = {};
    for (const name of [...this.#streams.keys()].sort()) {
      const s = this.#streams.get(name);
      if (s) streams[name] = s.state();
    }
    return { seed: this.seed, streams };
  }
}
