/** What activities share within one worker process: config, store, database and deployment target. */
import { clientApiKey } from '../lib/auth/clientKey';
import { type FerryConfig, loadConfig } from '../lib/config';
import { getPool } from '../lib/db/pool';
import { FerryRepository } from '../lib/db/repository';
import { ObjectStore } from '../lib/store/objectStore';
import type { DeploymentTarget } from '../lib/targets/deploymentTarget';
import { LocalTarget } from '../lib/targets/local';
import type { TargetPlace } from '../lib/targets/targetRecord';
import type { DeploymentTargetChoice } from '../workflows/types';

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

/**
 * The target a deployment runs on: the local gateway, or a namespace of the Kubernetes cluster
 * (kubeconfig from KUBECONFIG, else the stack's). `onProgress`: a rollout's steps, for heartbeats.
 */
export async function targetFor(
  choice: DeploymentTargetChoice | undefined,
  onProgress?: (step: string) => void,
): Promise<DeploymentTarget> {
  const { config, target } = activityDeps();
  if (!choice || choice.kind === 'local') return target;
  const { configuredKubernetesTarget } = await import('../lib/targets/kubernetes/configuredTarget');
  return configuredKubernetesTarget(config, choice.namespace, onProgress);
}

/** Where a target choice puts a deployment (the namespace defaulted as the kubernetes target does). */
export function placeFor(choice: DeploymentTargetChoice | undefined): TargetPlace {
  if (choice?.kind !== 'kubernetes') return { kind: 'local' };
  return { kind: 'kubernetes', namespace: choice.namespace ?? activityDeps().config.kubernetes.namespace };
}
