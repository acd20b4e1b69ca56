/** What activities share within one worker process: config, store, database and deployment target. */
import { clientApiKey } from '../lib/auth/clientKey';
import { type FerryConfig, loadConfig } from '../lib/config';
import { getPool } from '../lib/db/pool';
import { FerryRepository } from '../lib/db/repository';
import { ObjectStore } from '../lib/store/objectStore';
import { LocalTarget } from '../lib/targets/local';

export interface ActivityDeps {
  config: FerryConfig;
  store: ObjectStore;
  repo: FerryRepository;
  target: LocalTarget;
}

let deps: ActivityDeps | undefined;

export function activityDeps(): ActivityDeps {
  if (!deps) {
    const config = loadConfig();
    deps = {
      config,
      store: new ObjectStore(config.s3),
      repo: new FerryRepository(getPool(config.postgres.url)),
      // The worker's calls to the gateway carry this machine's client key (FERRY_API_KEY, else the state
      // dir's bootstrap admin key): the pipeline acts for every project.
      target: new LocalTarget(config.gateway.url, () => clientApiKey(config)),
    };
  }
  return deps;
}
