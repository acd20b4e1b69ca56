import { Pool } from 'pg';

const pools = new Map<string, Pool>();

/** One pool per database URL per process; activities share it. */
export function getPool(url: string): Pool {
  let pool = pools.get(url);
  if (!pool) {
    pool = new Pool({ connectionString: url, max: 5, connectionTimeoutMillis: 5000 });
    pool.on('error', () => {
      /* idle client lost (e.g. server restart): the pool replaces it on next use */
    });
    pools.set(url, pool);
  }
  return pool;
}

export async function closePools(): Promise<void> {
  await Promise.all([...pools.values()].map((p) => p.end()));
  pools.clear();
}
