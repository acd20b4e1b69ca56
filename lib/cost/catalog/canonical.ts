/**
 * The catalog's content hash: sha256 over a canonical JSON form (object keys sorted at every level, rows
 * in a fixed order), so reformatting a data file, reordering its keys or its rows, or splitting it
 * differently leaves the hash alone, and changing any figure, source or date changes it.
 */
import { createHash } from 'node:crypto';
import type { EgressPrice, InstancePrice, PriceCatalog, ServerlessPrice } from './types';

/** JSON with every object's keys sorted; undefined members are left out, as JSON.stringify does. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/** The identity of a row: the catalog holds at most one row per key. */
export const instanceKey = (r: InstancePrice) => `${r.provider}/${r.region}/${r.instanceType}`;
export const serverlessKey = (r: ServerlessPrice) => `${r.provider}/${r.service}/${r.region}/${r.arch}`;
export const egressKey = (r: EgressPrice) => `${r.provider}/${r.region}`;

export function sortByKey<T>(rows: T[], key: (r: T) => string): T[] {
  return [...rows].sort((a, b) => {
    const ka = key(a);
    const kb = key(b);
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  });
}

export function contentHash(catalog: Omit<PriceCatalog, 'contentHash'>): string {
  const canonical = canonicalJson({
    schemaVersion: catalog.schemaVersion,
    snapshotDate: catalog.snapshotDate,
    instances: sortByKey(catalog.instances, instanceKey),
    serverless: sortByKey(catalog.serverless, serverlessKey),
    egress: sortByKey(catalog.egress, egressKey),
  });
  return createHash('sha256').update(canonical).digest('hex');
}
