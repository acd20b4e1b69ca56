/**
 * The CLI commands that go through Ferry's HTTP API (`ferry keys`, `ferry audit`): the API's address from
 * the config (FERRY_API_URL), the key from lib/auth/clientKey.ts (FERRY_API_KEY, else the state dir's
 * admin.key), and each refusal of the API turned into one line that says what to do about it.
 */
import { adminKeyPath } from '../../lib/auth/bootstrapKey';
import { clientApiKey } from '../../lib/auth/clientKey';
import type { FerryConfig } from '../../lib/config';
import { FerryApiClient, FerryApiError } from '../http/ferryApiClient';
import { FerryError } from '../sdk/errors';

export async function withApi<T>(config: FerryConfig, fn: (api: FerryApiClient) => Promise<T>): Promise<T> {
  const key = await clientApiKey(config);
  try {
    return await fn(new FerryApiClient(config.api.url, key));
  } catch (err) {
    throw err instanceof FerryApiError ? new FerryError(explainApiError(err, config, key !== undefined)) : err;
  }
}

/** The line the CLI prints for an error answer of the API (or for no answer at all). */
export function explainApiError(err: FerryApiError, config: FerryConfig, sentKey: boolean): string {
  const keyFile = adminKeyPath(config.stateDir);
  if (err.status === 0) return err.message;
  if (err.status === 401) {
    if (!sentKey) return `Ferry's API wants a key (401): set FERRY_API_KEY, or run \`ferry up\` to create ${keyFile}`;
    return config.api.key
      ? 'the key in FERRY_API_KEY was refused (401): it is unknown or revoked'
      : `the key in ${keyFile} was refused (401): it is unknown or revoked; \`ferry up\` makes a new one`;
  }
  if (err.status === 403) return `not allowed (403): ${err.message}`;
  if (err.status >= 500) return `Ferry's API failed (${err.status}): ${err.message}`;
  return err.message;
}
