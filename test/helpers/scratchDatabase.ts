/**
 * A scratch PostgreSQL database with every migration applied, beside the stack's own, for a test that
 * writes rows the shared database must not keep. `create` also points this process (and the harness's
 * children, which copy its environment) at it; `drop` removes it.
 */
import { Client } from 'pg';
import { applyMigrations } from '../../infra/migrate';
import { loadConfig } from '../../lib/config';

async function onShared(sharedUrl: string, sql: string): Promise<void> {
  const admin = new Client({ connectionString: sharedUrl });
  await admin.connect();
  try {
    await admin.query(sql);
  } finally {
    await admin.end();
  }
}

export function scratchDatabase(label: string): { url: string; create(): Promise<void>; drop(): Promise<void> } {
  const sharedUrl = loadConfig().postgres.url;
  const name = `ferry_${label}_test_${process.pid}_${Date.now()}`;
  const u = new URL(sharedUrl);
  u.pathname = `/${name}`;
  const url = u.toString();
  return {
    url,
    async create() {
      await onShared(sharedUrl, `CREATE DATABASE ${name}`);
      await applyMigrations(url);
      process.env.FERRY_DATABASE_URL = url;
    },
    drop: () => onShared(sharedUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
  };
}
