/** What activities share within one worker process: config, store, database and deployment target. */
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
      target: new LocalTarget(config.gateway.url),
    };
  }
  return deps;
}
