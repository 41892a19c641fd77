/**
 * The base of every error evomerge reports to a user. `code` is a stable machine-readable
 * identifier (tests assert it); the message is one line that names the file, tensor or key.
 * The CLI prints `message` alone (no stack unless --debug) and exits with `exitCode`.
 */
export class EvoError extends Error {
  readonly code: string;
  /** 1 = the operation failed (bad input, I/O), 2 = the command line itself was wrong. */
  readonly exitCode: 1 | 2;

  constructor(code: string, message: string, options?: { cause?: unknown; exitCode?: 1 | 2 }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'EvoError';
    this.code = code;
    this.exitCode = options?.exitCode ?? 1;
  }
}

/** A command-line usage error: wrong flags or arguments (exit code 2). */
export class UsageError extends EvoError {
  constructor(message: string) {
    super('USAGE', message, { exitCode: 2 });
    this.name = 'UsageError';
  }
}
