/**
 * `ferry audit`: the audit log through Ferry's HTTP API, newest first: when, who (project and key name),
 * what (the action, its deployment and details) and from where. A key sees its own project's entries, an
 * admin key everyone's.
 */
import type { AuditEntry } from '../../lib/auth/audit';
import type { FerryApiClient } from '../http/ferryApiClient';
import { FerryError } from '../sdk/errors';
import { positiveInt } from './flags';
import { shortTime, textTable } from './textTable';

/** The API's own bound on one listing. */
export const AUDIT_MAX_LIMIT = 1000;

export interface AuditFlags {
  deployment?: string;
  limit?: string;
  json?: boolean;
}

export function parseAuditLimit(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const limit = positiveInt('--limit', raw);
  if (limit > AUDIT_MAX_LIMIT) throw new FerryError(`--limit must be at most ${AUDIT_MAX_LIMIT}, got "${raw}"`);
  return limit;
}

export async function auditCommand(api: FerryApiClient, o: AuditFlags): Promise<void> {
  const limit = parseAuditLimit(o.limit);
  const entries = await api.audit({ deployment: o.deployment, limit });
  if (o.json) {
    console.log(JSON.stringify(entries, null, 2));
    return;
  }
  if (!entries.length) {
    console.log(o.deployment ? `No audit entries for deployment ${o.deployment}.` : 'No audit entries yet.');
    return;
  }
  const header = ['WHEN (UTC)', 'WHO', 'ACTION', 'DEPLOYMENT', 'FROM', 'DETAIL'];
  for (const line of textTable([header, ...entries.map(entryCells)])) console.log(line);
}

function entryCells(e: AuditEntry): string[] {
  return [
    shortTime(e.at),
    `${e.project}/${e.keyName}`,
    e.action,
    e.deploymentId ?? '-',
    e.source ?? '-',
    describeDetail(e.detail),
  ];
}

/** `{ plan: 'int8', scopes: ['read'] }` → `plan=int8 scopes=read`; nested values as JSON. */
export function describeDetail(detail: Record<string, unknown>): string {
  return Object.entries(detail ?? {})
    .filter(([, v]) => v !== undefined && v !== null)
    .map(([k, v]) => {
      if (Array.isArray(v) && v.every((x) => typeof x !== 'object')) return `${k}=${v.join(',')}`;
      return `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`;
    })
    .join(' ');
}
