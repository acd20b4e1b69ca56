/**
 * Versioned SQL migrations for Ferry's metadata database.
 *
 * Files are `infra/migrations/NNN_name.sql`, applied in version order, each inside its own transaction,
 * and recorded in `schema_migrations (version, name, checksum, applied_at)`. An applied file must never
 * change: if its sha256 differs from the recorded checksum, nothing is applied and an error says which
 * file (write a new migration instead). Concurrent runs are serialised with an advisory lock.
 *
 *   npx tsx infra/migrate.ts [--database-url URL] [--status]     (default URL: FERRY_DATABASE_URL / lib/config)
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { Client } from 'pg';
import { loadConfig } from '../lib/config';

export const MIGRATIONS_DIR = path.join(__dirname, 'migrations');

/** Arbitrary constant that names "Ferry migrations" in pg_advisory_lock. */
const ADVISORY_LOCK_KEY = 0x4645_5259; // "FERY"

const FILE_PATTERN = /^(\d{3})_([a-z0-9_]+)\.sql$/;

export interface MigrationFile {
  version: string;
  name: string;
  file: string;
  sql: string;
  checksum: string;
}

export interface MigrationResult {
  /** versions applied by this call, in order */
  applied: string[];
  /** versions that were already applied before this call */
  alreadyApplied: string[];
}

export interface MigrateOptions {
  /** folder holding the NNN_name.sql files (default: infra/migrations) */
  dir?: string;
  /** progress lines (default: silent) */
  log?: (line: string) => void;
}

export class MigrationError extends Error {
  override name = 'MigrationError';
}

export function readMigrations(dir: string = MIGRATIONS_DIR): MigrationFile[] {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .sort();
  const seen = new Map<string, string>();
  const out: MigrationFile[] = [];
  for (const file of files) {
    const m = FILE_PATTERN.exec(file);
    if (!m) throw new MigrationError(`${path.join(dir, file)}: migration files must be named NNN_lower_snake_name.sql`);
    const [, version, name] = m;
    const other = seen.get(version);
    if (other) throw new MigrationError(`two migrations share version ${version}: ${other} and ${file}`);
    seen.set(version, file);
    const bytes = readFileSync(path.join(dir, file));
    out.push({
      version,
      name,
      file,
      sql: bytes.toString('utf8'),
      checksum: createHash('sha256').update(bytes).digest('hex'),
    });
  }
  return out;
}

/**
 * Applies every migration in `dir` that `databaseUrl` has not applied yet. Refuses (throws, applying
 * nothing) if an applied migration's file changed or disappeared.
 */
export async function applyMigrations(databaseUrl: string, options: MigrateOptions = {}): Promise<MigrationResult> {
  const log = options.log ?? (() => {});
  const migrations = readMigrations(options.dir);
  const client = new Client({ connectionString: databaseUrl, connectionTimeoutMillis: 10_000 });
  client.on('notice', () => {}); // "relation already exists, skipping" and friends
  await client.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [ADVISORY_LOCK_KEY]);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version    text PRIMARY KEY,
      name       text NOT NULL,
      checksum   text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const { rows } = await client.query<{ version: string; name: string; checksum: string }>(
      'SELECT version, name, checksum FROM schema_migrations ORDER BY version',
    );
    const byVersion = new Map(migrations.map((m) => [m.version, m]));
    for (const row of rows) {
      const file = byVersion.get(row.version);
      if (!file) {
        throw new MigrationError(
          `the database has migration ${row.version}_${row.name} applied but ${path.join(options.dir ?? MIGRATIONS_DIR, `${row.version}_${row.name}.sql`)} is missing; is this checkout older than the database?`,
        );
      }
      if (file.checksum !== row.checksum) {
        throw new MigrationError(
          `migration ${file.file} was changed after it was applied (recorded sha256 ${row.checksum.slice(0, 12)}…, file now ${file.checksum.slice(0, 12)}…); ` +
            'applied migrations must not be edited: restore the file and add a new migration instead',
        );
      }
    }
    const done = new Set(rows.map((r) => r.version));
    const result: MigrationResult = { applied: [], alreadyApplied: rows.map((r) => r.version) };
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      log(`applying ${m.file}`);
      try {
        await client.query('BEGIN');
        await client.query(m.sql);
        await client.query('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [
          m.version,
          m.name,
          m.checksum,
        ]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        throw new MigrationError(`migration ${m.file} failed and was rolled back: ${(err as Error).message}`);
      }
      result.applied.push(m.version);
    }
    return result;
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [ADVISORY_LOCK_KEY]).catch(() => {});
    await client.end();
  }
}

/** Redacts the password in a postgres:// URL for printing. */
function redact(url: string): string {
  return url.replace(/(\/\/[^:/@]+:)[^@]*@/, '$1***@');
}

async function main(argv: string[]): Promise<void> {
  let databaseUrl = loadConfig().postgres.url;
  let statusOnly = false;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--database-url' && argv[i + 1]) databaseUrl = argv[++i];
    else if (argv[i] === '--status') statusOnly = true;
    else throw new MigrationError(`unknown argument ${argv[i]} (usage: migrate.ts [--database-url URL] [--status])`);
  }
  if (statusOnly) {
    const client = new Client({ connectionString: databaseUrl });
    await client.connect();
    try {
      const exists = await client.query(`SELECT to_regclass('schema_migrations') AS t`);
      const applied = exists.rows[0].t
        ? (await client.query('SELECT version, name, applied_at FROM schema_migrations ORDER BY version')).rows
        : [];
      const appliedSet = new Set(applied.map((r) => r.version as string));
      for (const r of applied) console.log(`applied  ${r.version}_${r.name}  ${(r.applied_at as Date).toISOString()}`);
      for (const m of readMigrations()) if (!appliedSet.has(m.version)) console.log(`pending  ${m.file}`);
    } finally {
      await client.end();
    }
    return;
  }
  const result = await applyMigrations(databaseUrl, { log: (line) => console.log(`  migrate: ${line}`) });
  const total = result.applied.length + result.alreadyApplied.length;
  console.log(
    result.applied.length
      ? `  migrations: applied ${result.applied.join(', ')} to ${redact(databaseUrl)} (${total} in total)`
      : `  migrations: up to date at ${redact(databaseUrl)} (${total} applied)`,
  );
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    console.error(`migrate: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
