/**
 * What `ferry up` and `ferry demo` do first: make sure this machine has its bootstrap admin key (in
 * `<state dir>/admin.key`, mode 0600, stored hashed in PostgreSQL), then start Ferry's own services. The
 * key comes first so the services, and the CLI right after, find it.
 */
import { Pool } from 'pg';
import { ensureBootstrapAdminKey } from '../../lib/auth/bootstrapKey';
import { KeyStore } from '../../lib/auth/keyStore';
import type { FerryConfig } from '../../lib/config';
import { FerryError } from '../sdk/errors';
import { describeStart, FERRY_SERVICES, startService } from '../services';

const PG_UNDEFINED_TABLE = '42P01';

/** The admin key file of this machine, made on the first call (one line for the console). */
export async function ensureLocalAdminKey(config: FerryConfig): Promise<string> {
  // A pool of its own, ended here: `ferry up` needs the database for this one step only.
  const pool = new Pool({ connectionString: config.postgres.url, max: 1, connectionTimeoutMillis: 5000 });
  pool.on('error', () => {});
  try {
    await reachDatabase(pool, config);
    const { path, created } = await ensureBootstrapAdminKey(config.stateDir, new KeyStore(pool));
    return created
      ? `ferry admin key: created ${path} (mode 0600); the CLI on this machine uses it unless FERRY_API_KEY is set`
      : `ferry admin key: ${path} (kept)`;
  } catch (err) {
    throw explainDatabaseError(err, config);
  } finally {
    await pool.end();
  }
}

const SQLSTATE = /^[0-9A-Z]{5}$/;

function errorCode(err: unknown): string | undefined {
  const e = err as { code?: string; errors?: Array<{ code?: string }> };
  return e.code ?? e.errors?.[0]?.code;
}

/**
 * One connection first, so that a failure to connect is told apart by where it happened rather than by
 * its message: anything but the server's own answer (a SQLSTATE, such as a refused password) means the
 * database is not there (refused, unresolvable, or pg's connection timeout, which carries no code).
 */
async function reachDatabase(pool: Pool, config: FerryConfig): Promise<void> {
  try {
    (await pool.connect()).release();
  } catch (err) {
    const code = errorCode(err);
    if (code !== undefined && SQLSTATE.test(code)) throw err;
    throw new FerryError(
      `PostgreSQL at ${new URL(config.postgres.url).host} is not reachable (${code ?? 'timeout'}) to make the admin key: start the stack with \`bash infra/stack.sh start\``,
    );
  }
}

function explainDatabaseError(err: unknown, config: FerryConfig): unknown {
  if (errorCode(err) === PG_UNDEFINED_TABLE) {
    const where = `PostgreSQL at ${new URL(config.postgres.url).host}`;
    return new FerryError(`${where} has no api_keys table: apply the migrations with \`bash infra/stack.sh migrate\``);
  }
  return err;
}

/** `ferry up`: the admin key, then the gateway, worker and API; a line for each. */
export async function startFerry(config: FerryConfig, print: (line: string) => void = console.log): Promise<void> {
  print(await ensureLocalAdminKey(config));
  for (const name of FERRY_SERVICES) print(describeStart(name, await startService(config, name)));
}
