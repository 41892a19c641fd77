import os from 'node:os';

/**
 * llama.cpp's default thread count. With every core given to llama.cpp on a machine whose cores
 * are busy with other work, each decode step waits for the slowest (descheduled) thread: on a
 * loaded 2-core box a 200-token generation took 35 s with 2 threads and 0.18 s with 1. So the
 * default is the cores left idle by the current load: availableParallelism() minus the 1-minute
 * load average, rounded, at least 1. Platforms without load averages (Windows reports 0) get
 * every core. An explicit thread count always wins over this.
 */
export function threadsForLoad(cores: number, loadAverage1m: number): number {
  const n = Math.max(1, Math.floor(cores));
  const load = Number.isFinite(loadAverage1m) && loadAverage1m > 0 ? loadAverage1m : 0;
  return Math.min(n, Math.max(1, Math.round(n - load)));
}

/** threadsForLoad for this machine, now. */
export function defaultLlamaThreads(): number {
  return threadsForLoad(os.availableParallelism(), os.loadavg()[0] ?? 0);
}
