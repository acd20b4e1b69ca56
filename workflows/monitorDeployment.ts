/**
 * MonitorDeploymentWorkflow: runs for a deployment's whole life. On an interval it collects metrics
 * into Postgres, hibernates the replicas after an idle period (the gateway wakes them on the next
 * request), and on `undeploy` destroys the deployment and ends. Continues as new before history grows.
 *
 * A deployment found gone from its target (deleted through the gateway's control API, a gateway
 * restarted without its state) is marked `missing` (status, Postgres state and event) and the monitor
 * ends: it does not redeploy on its own. The removal may have been an operator's deliberate act, which
 * recreating would undo, and the monitor could not restore what was live anyway (traffic splits,
 * canaries and scaling changed at the target since the deploy). Its status says how to deploy again.
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
    if (sample.servingState === 'missing') return endMissing(status, input, sample.at);

    if (sample.servingState === 'running' && sample.idleMs >= input.settings.idleHibernateMs) {
      const outcome = await acts.hibernateDeployment({ deploymentId: input.deploymentId, idleMs: sample.idleMs });
      if (outcome === 'missing') return endMissing(status, input, new Date().toISOString());
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

/** The deployment is gone from its target: say so and end (see the header for why not redeploy). */
function endMissing(status: MonitorStatus, input: MonitorInput, since: string): MonitorStatus {
  status.servingState = 'missing';
  status.missing = {
    since,
    note:
      `deployment ${input.deploymentId} was removed from its target outside Ferry; monitoring stopped. ` +
      `To serve the model again, deploy it again (\`ferry deploy <model.onnx> --name ${input.model} --version <new version>\`).`,
  };
  upsertSearchAttributes([{ key: ferryStageKey, value: 'missing' }]);
  return status;
}
