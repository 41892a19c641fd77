/**
 * A deterministic SQL text dump of a SQLite database (schema in creation order, then every row in
 * column order), and its inverse. Fixture databases are kept as such dumps: small, diffable, and
 * loaded into a real database file at test time.
 */
import Database from 'better-sqlite3';

function literal(value: unknown): string {
  if (value === null) return 'NULL';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`cannot dump ${value}`);
    return String(value);
  }
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'string') return `'${value.replaceAll("'", "''")}'`;
  if (Buffer.isBuffer(value)) return `X'${value.toString('hex')}'`;
  throw new Error(`cannot dump a ${typeof value}`);
}

/** The dump of `file`, leaving out the rows of `skipRowsOf` (their tables are still created). */
export function dumpDatabase(file: string, header: string, skipRowsOf: readonly string[] = []): string {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const lines = header.split('\n').map((l) => `-- ${l}`.trimEnd());
    const schema = db.prepare<[], { type: string; name: string; sql: string | null }>('SELECT type, name, sql FROM sqlite_master ORDER BY rowid').all();
    for (const s of schema) if (s.sql !== null) lines.push(`${s.sql};`);
    for (const t of schema.filter((s) => s.type === 'table')) {
      if (skipRowsOf.includes(t.name)) continue;
      const columns = db.prepare(`SELECT * FROM "${t.name}" LIMIT 0`).columns().length;
      const order = Array.from({ length: columns }, (_, i) => i + 1).join(', ');
      const rows = db.prepare(`SELECT * FROM "${t.name}" ORDER BY ${order}`).raw().all() as unknown[][];
      for (const row of rows) lines.push(`INSERT INTO "${t.name}" VALUES (${row.map(literal).join(', ')});`);
    }
    return `${lines.join('\n')}\n`;
  } finally {
    db.close();
  }
}

/** Creates `file` (which must not exist) from a dump. */
export function loadDump(sql: string, file: string): void {
  const db = new Database(file);
  try {
    db.exec(`BEGIN;\n${sql}\nCOMMIT;`);
  } finally {
    db.close();
  }
}
