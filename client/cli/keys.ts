/**
 * `ferry keys create|list|revoke`: API keys through Ferry's HTTP API (an `admin` key is needed). A new
 * key is printed once, alone on stdout (so `KEY=$(ferry keys create ...)` works), with the notes on stderr;
 * afterwards only its prefix is ever shown.
 */
import type { ApiKeyRow } from '../../lib/auth/keyStore';
import { parseScopes } from '../../lib/auth/scopes';
import { assertValidName } from '../../lib/names';
import type { FerryApiClient } from '../http/ferryApiClient';
import { FerryError } from '../sdk/errors';
import { shortTime, textTable } from './textTable';

export interface KeysCreateFlags {
  project: string;
  scope: string;
  name?: string;
  json?: boolean;
}

/** Checks what the API would refuse anyway, so the message is Ferry's own and nothing is sent. */
export function parseKeysCreateFlags(o: KeysCreateFlags): { project: string; scopes: ReturnType<typeof parseScopes> } {
  try {
    assertValidName('project', o.project);
    if (o.name !== undefined) assertValidName('key name', o.name);
    return { project: o.project, scopes: parseScopes(o.scope) };
  } catch (err) {
    throw new FerryError((err as Error).message);
  }
}

export async function keysCreateCommand(api: FerryApiClient, o: KeysCreateFlags): Promise<void> {
  const { project, scopes } = parseKeysCreateFlags(o);
  const made = await api.createKey(project, scopes, o.name);
  if (o.json) {
    console.log(JSON.stringify(made, null, 2));
    return;
  }
  const r = made.row;
  console.error(`Created key ${r.project}/${r.name} (id ${r.id}, scopes ${r.scopes.join(',')}):`);
  console.log(made.key);
  console.error(
    'It will not be shown again: keep it now. Clients send it as FERRY_API_KEY or "Authorization: Bearer <key>".',
  );
}

export async function keysListCommand(api: FerryApiClient, project: string | undefined, json: boolean): Promise<void> {
  if (project !== undefined) {
    try {
      assertValidName('project', project);
    } catch (err) {
      throw new FerryError((err as Error).message);
    }
  }
  const rows = await api.listKeys(project);
  if (json) {
    console.log(JSON.stringify(rows, null, 2));
    return;
  }
  if (!rows.length) {
    console.log(
      `No keys${project ? ` in project ${project}` : ''}. Make one with: ferry keys create --project P --scope read`,
    );
    return;
  }
  const header = ['ID', 'NAME', 'PROJECT', 'SCOPES', 'PREFIX', 'CREATED (UTC)', 'LAST USED', 'REVOKED'];
  for (const line of textTable([header, ...rows.map(keyCells)])) console.log(line);
}

function keyCells(r: ApiKeyRow): string[] {
  return [
    String(r.id),
    r.name,
    r.project,
    r.scopes.join(','),
    r.prefix,
    shortTime(r.createdAt),
    r.lastUsedAt ? shortTime(r.lastUsedAt) : 'never',
    r.revokedAt ? shortTime(r.revokedAt) : '-',
  ];
}

export async function keysRevokeCommand(api: FerryApiClient, ref: string, json: boolean): Promise<void> {
  const row = await api.revokeKey(ref);
  if (json) {
    console.log(JSON.stringify(row, null, 2));
    return;
  }
  console.log(
    `Revoked key ${row.project}/${row.name} (id ${row.id}, ${row.prefix}…) at ${shortTime(row.revokedAt)} UTC: requests with it are refused (401); a server that caches key checks notices within 10 s.`,
  );
}
