import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** `evo search` (the built CLI, bin/evo.js) in a child process that tests kill at chosen moments. */

const evo = path.join(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..'), 'bin', 'evo.js');

export interface Child {
  readonly child: ChildProcess;
  /** JSON events printed so far. */
  readonly events: Record<string, unknown>[];
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
  /** Resolves when `pred` holds for an event (or the marker check), then the child is killed. */
  killWhen(pred: (e: Record<string, unknown>) => boolean, poll?: () => boolean, signal?: NodeJS.Signals): Promise<string>;
}

export function startSearch(args: readonly string[], cwd: string): Child {
  const child = spawn(process.execPath, [evo, 'search', ...args, '--json', '--jobs', '1'], { stdio: ['ignore', 'pipe', 'pipe'], cwd });
  const events: Record<string, unknown>[] = [];
  const watchers: { pred: (e: Record<string, unknown>) => boolean; fire: (why: string) => void }[] = [];
  let stderr = '';
  let buffered = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout?.on('data', (d: Buffer) => {
    buffered += d.toString();
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      const e = JSON.parse(line) as Record<string, unknown>;
      events.push(e);
      for (const w of watchers) if (w.pred(e)) w.fire(`${String(e.event)} ${String(e.id ?? e.generation ?? '')}`);
    }
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, stderr })));
  return {
    child,
    events,
    exit,
    killWhen(pred, poll, signal = 'SIGKILL') {
      return new Promise((resolve, reject) => {
        let done = false;
        const fire = (why: string): void => {
          if (done) return;
          done = true;
          clearInterval(timer);
          child.kill(signal);
          resolve(why);
        };
        const timer = setInterval(() => {
          if (poll?.()) fire('marker');
        }, 2);
        watchers.push({ pred, fire });
        void exit.then((x) => {
          if (done) return;
          clearInterval(timer);
          reject(new Error(`child exited (${String(x.code)}) before the kill point: ${x.stderr}`));
        });
      });
    },
  };
}

