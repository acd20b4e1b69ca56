/**
 * Projects and API keys in PostgreSQL (migration 003). Keys are made here and shown once; afterwards only
 * their hash and prefix exist. `verify` is what every surface calls with the key from the request.
 */
import type { Pool } from 'pg';
import { assertValidName } from '../names';
import { apiKeyPrefix, generateApiKey, hashApiKey, looksLikeApiKey } from './apiKey';
import type { Principal } from './principal';
import { parseScopes, type Scope } from './scopes';

export interface ApiKeyRow {
  id: number;
  project: string;
  name: string;
  prefix: string;
  scopes: Scope[];
  createdAt: string;
  createdBy: string | null;
  revokedAt: string | null;
  lastUsedAt: string | null;
}

export class KeyNameTakenError extends Error {
  override name = 'KeyNameTakenError';
}
export class UnknownKeyError extends Error {
  override name = 'UnknownKeyError';
}

const PG_UNIQUE_VIOLATION = '23505';

export class KeyStore {
  constructor(private readonly pool: Pool) {}

  async ensureProject(project: string): Promise<void> {
    assertValidName('project', project);
    await this.pool.query('INSERT INTO projects (name) VALUES ($1) ON CONFLICT DO NOTHING', [project]);
  }

  /** Makes a key and returns it in clear, the only time it exists in clear. */
  async createKey(opts: {
    project: string;
    name: string;
    scopes: readonly string[];
    createdBy?: string;
  }): Promise<{ key: string; row: ApiKeyRow }> {
    assertValidName('key name', opts.name);
    const scopes = parseScopes(opts.scopes);
    await this.ensureProject(opts.project);
    const key = generateApiKey();
    try {
      const { rows } = await this.pool.query(
        `INSERT INTO api_keys (project, name, key_prefix, key_sha256, scopes, created_by)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING *`,
        [opts.project, opts.name, apiKeyPrefix(key), hashApiKey(key), scopes, opts.createdBy ?? null],
      );
      return { key, row: toRow(rows[0]) };
    } catch (err) {
      if ((err as { code?: string }).code === PG_UNIQUE_VIOLATION) {
        throw new KeyNameTakenError(`project ${opts.project} already has a key named "${opts.name}"`);
      }
      throw err;
    }
  }

  async listKeys(project?: string): Promise<ApiKeyRow[]> {
    const { rows } = project
      ? await this.pool.query('SELECT * FROM api_keys WHERE project = $1 ORDER BY id', [project])
      : await this.pool.query('SELECT * FROM api_keys ORDER BY id');
    return rows.map(toRow);
  }

  /** Revokes by id, `project/name`, name (when one project has it), or prefix; revoking twice is not an error. */
  async revokeKey(ref: string): Promise<ApiKeyRow> {
    const row = await this.findKey(ref);
    if (!row) throw new UnknownKeyError(`no key "${ref}" (give its id, project/name, name, or prefix)`);
    const { rows } = await this.pool.query(
      'UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 RETURNING *',
      [row.id],
    );
    return toRow(rows[0]);
  }

  async findKey(ref: string): Promise<ApiKeyRow | undefined> {
    let result: { rows: Record<string, unknown>[] };
    if (/^\d+$/.test(ref)) result = await this.pool.query('SELECT * FROM api_keys WHERE id = $1', [Number(ref)]);
    else if (ref.startsWith('fry_')) {
      result = await this.pool.query('SELECT * FROM api_keys WHERE key_prefix = $1', [apiKeyPrefix(ref)]);
      if (result.rows.length > 1) throw new UnknownKeyError(`prefix "${ref}" matches several keys; give the id`);
    } else {
      const slash = ref.indexOf('/');
      if (slash < 0) {
        // A bare name: key names are unique per project only, so it must name one key across projects.
        result = await this.pool.query('SELECT * FROM api_keys WHERE name = $1 ORDER BY id', [ref]);
        if (result.rows.length > 1) {
          const projects = result.rows.map((r) => r.project).join(', ');
          throw new UnknownKeyError(
            `several keys are named "${ref}" (projects ${projects}); give project/name or the id`,
          );
        }
        return result.rows[0] ? toRow(result.rows[0]) : undefined;
      }
      result = await this.pool.query('SELECT * FROM api_keys WHERE project = $1 AND name = $2', [
        ref.slice(0, slash),
        ref.slice(slash + 1),
      ]);
    }
    return result.rows[0] ? toRow(result.rows[0]) : undefined;
  }

  /** The principal a key stands for, or undefined when it is malformed, unknown or revoked. */
  async verify(key: string): Promise<Principal | undefined> {
    if (!looksLikeApiKey(key)) return undefined;
    const { rows } = await this.pool.query(
      'SELECT id, name, project, scopes, last_used_at FROM api_keys WHERE key_sha256 = $1 AND revoked_at IS NULL',
      [hashApiKey(key)],
    );
    const r = rows[0];
    if (!r) return undefined;
    // last_used_at is refreshed at most once a minute per key, so verification stays (almost always) a read.
    if (!r.last_used_at || Date.now() - new Date(r.last_used_at).getTime() > 60_000) {
      await this.pool.query('UPDATE api_keys SET last_used_at = now() WHERE id = $1', [r.id]);
    }
    return { keyId: Number(r.id), keyName: r.name, project: r.project, scopes: r.scopes };
  }
}

/**
 * `verify` with an in-memory cache, for the gateway's request path: a known key costs a sha256 and a map
 * lookup. A revoked key stops working within `ttlMs`.
 */
export class CachedKeyVerifier {
  private readonly cache = new Map<string, { principal: Principal | undefined; until: number }>();

  constructor(
    private readonly verifyKey: (key: string) => Promise<Principal | undefined>,
    private readonly ttlMs = 10_000,
    private readonly maxEntries = 10_000,
  ) {}

  /** The cached answer, if fresh: lets a hot path skip a promise. */
  peek(key: string, nowMs: number): Principal | undefined | 'miss' {
    const hit = this.cache.get(hashApiKey(key));
    return hit && hit.until > nowMs ? hit.principal : 'miss';
  }

  async verify(key: string, nowMs = Date.now()): Promise<Principal | undefined> {
    const peeked = this.peek(key, nowMs);
    if (peeked !== 'miss') return peeked;
    const principal = looksLikeApiKey(key) ? await this.verifyKey(key) : undefined;
    if (this.cache.size >= this.maxEntries) this.cache.clear();
    this.cache.set(hashApiKey(key), { principal, until: nowMs + this.ttlMs });
    return principal;
  }
}

function toRow(r: Record<string, unknown>): ApiKeyRow {
  const iso = (v: unknown) => (v ? new Date(v as string).toISOString() : null);
  return {
    id: Number(r.id),
    project: r.project as string,
    name: r.name as string,
    prefix: r.key_prefix as string,
    scopes: r.scopes as Scope[],
    createdAt: iso(r.created_at) as string,
    createdBy: (r.created_by as string | null) ?? null,
    revokedAt: iso(r.revoked_at),
    lastUsedAt: iso(r.last_used_at),
  };
}
