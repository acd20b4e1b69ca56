/**
 * MonitorDeploymentWorkflow: runs for a deployment's whole life. On an interval it collects metrics
 * into Postgres, hibernates the replicas after an idle period (the gateway wakes them on the next
 * request), and on `undeploy` destroys the deployment and ends. Continues as new before history grows.
 */
import {
  condition,
  continueAsNew,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type * as activities from '../activities';
import { monitorStatusQuery, undeploySignal } from './messages';
import { ferryStageKey } from './searchAttributes';
import type { MonitorInput, MonitorStatus } from './types';

const acts = proxyActivities<typeof activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1s', maximumInterval: '20s', backoffCoefficient: 2 },
});

/** Collections per run before continuing as new (each is a few history events). */
const COLLECTIONS_PER_RUN = 300;

export async function monitorDeploymentWorkflow(input: MonitorInput): Promise<MonitorStatus> {
  const status: MonitorStatus = {
    deploymentId: input.deploymentId,
    servingState: 'running',
    collections: input.carried?.collections ?? 0,
    hibernations: input.carried?.hibernations ?? 0,
    undeployRequested: false,
  };
  setHandler(monitorStatusQuery, () => status);
  setHandler(undeploySignal, () => {
    status.undeployRequested = true;
  });

  let collectionsThisRun = 0;
  while (!status.undeployRequested) {
    await condition(() => status.undeployRequested, input.settings.intervalMs);
    if (status.undeployRequested) break;

    const sample = await acts.collectDeploymentMetrics({
      deploymentId: input.deploymentId,
      previousBuckets: status.lastSample?.latencyBuckets,
    });
    status.lastSample = sample;
    status.servingState = sample.servingState;
    status.collections++;
    collectionsThisRun++;

    if (sample.servingState === 'running' && sample.idleMs >= input.settings.idleHibernateMs) {
      await acts.hibernateDeployment({ deploymentId: input.deploymentId, idleMs: sample.idleMs });
      status.servingState = 'hibernated';
      status.hibernations++;
    }

    if (collectionsThisRun >= COLLECTIONS_PER_RUN || workflowInfo().continueAsNewSuggested) {
      await continueAsNew<typeof monitorDeploymentWorkflow>({
        ...input,
        carried: { collections: status.collections, hibernations: status.hibernations },
      });
    }
  }

  await acts.destroyDeployment({ deploymentId: input.deploymentId });
  status.servingState = 'undeployed';
  upsertSearchAttributes([{ key: ferryStageKey, value: 'undeployed' }]);
  return status;
}
