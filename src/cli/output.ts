/** Writes a command's result: JSON on one document when --json, else the human text. */
export function emitResult(json: boolean, value: unknown, human: () => string): void {
  if (json) process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  else process.stdout.write(human().replace(/\n?$/, '\n'));
}
