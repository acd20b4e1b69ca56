/**
 * The first `ferry up` on a machine makes an admin key and keeps it in `<stateDir>/admin.key` (mode 0600),
 * which the CLI on that machine uses when FERRY_API_KEY is not set. It is made once: a second `ferry up`
 * finds the file and leaves it; a file whose key was revoked is replaced.
 */
import { constants } from 'node:fs';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import * as path from 'node:path';
import { looksLikeApiKey } from './apiKey';
import type { KeyStore } from './keyStore';

export function adminKeyPath(stateDir: string): string {
  return path.join(stateDir, 'admin.key');
}

/** The key stored on this machine, if the file exists and holds a key. */
export async function readLocalAdminKey(stateDir: string): Promise<string | undefined> {
  const text = await readFile(adminKeyPath(stateDir), 'utf8').catch(() => undefined);
  const key = text?.trim();
  return key && looksLikeApiKey(key) ? key : undefined;
}

export async function ensureBootstrapAdminKey(
  stateDir: string,
  keys: KeyStore,
): Promise<{ path: string; created: boolean }> {
  const file = adminKeyPath(stateDir);
  const existing = await readLocalAdminKey(stateDir);
  if (existing && (await keys.verify(existing))) return { path: file, created: false };
  await mkdir(stateDir, { recursive: true });
  const { key } = await keys.createKey({
    project: 'default',
    name: `bootstrap-admin-${Date.now().toString(36)}`,
    scopes: ['admin'],
    createdBy: 'ferry up',
  });
  // Written to a new file opened 0600 with O_EXCL, then renamed over: the key is never readable by others,
  // not even for a moment, and a crash leaves either the old file or the new one.
  const tmp = `${file}.${process.pid}.tmp`;
  await rm(tmp, { force: true });
  const handle = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  try {
    await handle.writeFile(`${key}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, file);
  return { path: file, created: true };
}
