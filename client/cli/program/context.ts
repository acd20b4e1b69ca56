/** What every group of `ferry` commands is given, and the few pieces they share. */
import type { FerryConfig } from '../../../lib/config';
import type { FerryApiClient } from '../../http/ferryApiClient';
import type { FerryClient } from '../../sdk';

export const DEPLOYMENT = 'a deployment id (model-version), model:version, or a model name (its latest deployment)';
export const JSON_FLAG = 'print JSON instead of text';

export interface CliContext {
  config: FerryConfig;
  /** Runs `fn` with a connected SDK client, closed afterwards (loaded only by the commands that need it). */
  withClient: <T>(fn: (ferry: FerryClient) => Promise<T>) => Promise<T>;
  /** Runs `fn` against Ferry's HTTP API with this machine's key (FERRY_API_KEY or <state dir>/admin.key). */
  withApi: <T>(fn: (api: FerryApiClient) => Promise<T>) => Promise<T>;
}

/** Until a signal stops the process (the long-running commands). */
export const forever = () => new Promise<never>(() => {});

export function stopOnSignal(close: () => Promise<void>): void {
  const stop = () => close().then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
