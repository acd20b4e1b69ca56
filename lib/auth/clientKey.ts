/**
 * The key a Ferry client on this machine sends (the CLI, the SDK's serving controls, the worker calling the
 * gateway): FERRY_API_KEY when set, else the bootstrap admin key that `ferry up` keeps in the state dir.
 */
import type { FerryConfig } from '../config';
import { readLocalAdminKey } from './bootstrapKey';

export async function clientApiKey(config: FerryConfig): Promise<string | undefined> {
  return config.api.key ?? (await readLocalAdminKey(config.stateDir));
}

/** `{ authorization: 'Bearer …' }` for a request, or no header when there is no key. */
export async function authHeader(config: FerryConfig): Promise<Record<string, string>> {
  const key = await clientApiKey(config);
  return key ? { authorization: `Bearer ${key}` } : {};
}
