/**
 * Stage 4, deploy: hand the image to the target (the `local` gateway by default) and wait until its
 * replicas answer. Applying the same spec twice is a no-op, so a retry never doubles the replicas.
 *
 * A canary release (`input.canary`) creates no deployment: the image becomes a new revision of a live
 * one, with a share of its traffic (lib/targets/revisions.ts). Adding a revision that is there already
 * with the same image changes nothing, so a retry is a no-op too.
 */
import { ApplicationFailure, heartbeat } from '@temporalio/activity';
import { getPool } from '../../lib/db/pool';
import { loadOptimizationResults } from '../../lib/optimize/results';
import {
  type DeploymentAccess,
  DeploymentNotFoundError,
  type DeploymentSpec,
  type DeploymentStatus,
  type ImageRef,
  type ReplicaResources,
} from '../../lib/targets/deploymentTarget';
import { ClusterRequestError, RolloutFailedError } from '../../lib/targets/kubernetes/clusterErrors';
import { GatewayRequestError } from '../../lib/targets/local';
import { resourcesForMeasurement } from '../../lib/targets/replicaResources';
import { RevisionConflictError, specWithCanary } from '../../lib/targets/revisions';
import { targetRecord } from '../../lib/targets/targetRecord';
import {
  type CanaryRequest,
  type CanaryStatus,
  canaryRevisionName,
  type DeploymentTargetChoice,
  type ImageRecord,
  type MonitorSettings,
  workflowIds,
} from '../../workflows/types';
import { activityDeps, placeFor, targetFor } from '../deps';
import { whileHeartbeating } from '../heartbeat';

export interface DeployInput {
  deploymentId: string;
  modelVersionId: number;
  imageId: number;
  image: ImageRecord;
  model: string;
  replicas: number;
  monitor: MonitorSettings;
  /** Set for a canary release (with the version, which names the revision). */
  canary?: CanaryRequest & { version: string };
  /** The project the deployment belongs to and whether inference needs a key; absent: `default`, keyed. */
  access?: DeploymentAccess;
  /** Where it runs; absent: the local gateway. */
  target?: DeploymentTargetChoice;
}

export interface DeployResult {
  endpoint: string;
  inferUrl: string;
  /** Ready replicas of the deployment (of the canary's revision, for a canary). */
  replicas: number;
  canary?: CanaryStatus;
}

/** Read-modify-write rounds lost to concurrent changes before the attempt fails (and the activity retries). */
const MAX_CONFLICTS = 5;

export async function deployToLocalTarget(input: DeployInput): Promise<DeployResult> {
  if (input.canary) return deployCanaryRevision(input, input.canary);
  const { repo } = activityDeps();
  const target = await targetFor(input.target, (step) => heartbeat({ step }));
  const resources = await plannedResources(input.modelVersionId);
  const status = await whileHeartbeating({ step: 'starting replicas' }, () =>
    target
      .apply({
        id: input.deploymentId,
        model: input.model,
        replicas: input.replicas,
        image: imageRefOf(input.image),
        ...(input.access ? { access: input.access } : {}),
        ...(resources ? { resources } : {}),
      })
      .catch(refusalIsFinal),
  );
  const inferUrl = inferUrlOf(status.endpoint, input.model);
  await repo.upsertDeployment({
    ...deploymentRowOf(input, status.endpoint),
    state: status.state,
    replicas: status.replicas.length,
    config: { replicas: input.replicas, monitor: input.monitor, inferUrl },
  });
  await repo.recordEvent(input.deploymentId, 'deployed', {
    image: input.image.digest,
    replicas: status.replicas.length,
  });
  return { endpoint: status.endpoint, inferUrl, replicas: status.replicas.length };
}

/** A failed rollout or a cluster's refusal (RBAC, a bad namespace) would fail again: not retried. */
function refusalIsFinal(err: unknown): never {
  if (err instanceof RolloutFailedError) throw ApplicationFailure.nonRetryable(err.message, 'RolloutFailed');
  if (
    err instanceof ClusterRequestError &&
    err.status >= 400 &&
    err.status < 500 &&
    err.status !== 409 &&
    err.status !== 429
  )
    throw ApplicationFailure.nonRetryable(err.message, 'ClusterRefused');
  throw err;
}

/**
 * Adds the image as revision `canaryRevisionName(version)` of deployment `canary.of` with `percent` of
 * its split (the other revisions' shares scaled down proportionally, header rules kept) and waits
 * until its replicas answer; no replica of the other revisions restarts. Records the version's row
 * (state 'canary', the base's endpoint; no monitor of its own) and a `canary-added` event on the base.
 */
async function deployCanaryRevision(
  input: DeployInput,
  canary: CanaryRequest & { version: string },
): Promise<DeployResult> {
  const { repo } = activityDeps();
  const target = await targetFor(input.target, (step) => heartbeat({ step }));
  const revision = canaryRevisionName(canary.version);
  const image = imageRefOf(input.image);
  const what = `${input.model} ${canary.version} as a canary of deployment "${canary.of}"`;

  // Read, add the revision, apply only over what was read (If-Match): a concurrent change of the same
  // deployment (another canary, a traffic change) is never undone; it makes this read again.
  let status: DeploymentStatus | undefined;
  for (let attempt = 1; !status; attempt++) {
    let base: DeploymentStatus;
    try {
      base = await target.status(canary.of);
    } catch (err) {
      if (err instanceof DeploymentNotFoundError) {
        throw ApplicationFailure.nonRetryable(
          `cannot deploy ${what}: it is not live (the gateway serves no deployment "${canary.of}"; it was undeployed or never deployed). ` +
            `Deploy ${input.model} without --canary first, or name a live deployment with --canary-of`,
          'NoLiveDeployment',
        );
      }
      throw err;
    }
    if (base.model !== input.model) {
      throw ApplicationFailure.nonRetryable(
        `cannot deploy ${what}: that deployment serves model "${base.model}"`,
        'CanaryConflict',
      );
    }
    let spec: DeploymentSpec | undefined;
    try {
      spec = specWithCanary(base, { name: revision, image, percent: canary.percent });
    } catch (err) {
      if (err instanceof RevisionConflictError)
        throw ApplicationFailure.nonRetryable(`cannot deploy ${what}: ${err.message}`, 'CanaryConflict');
      throw err;
    }
    if (!spec) {
      status = base; // there already (an earlier attempt): nothing new to apply
      break;
    }
    const apply = spec;
    try {
      status = await whileHeartbeating({ step: `adding revision ${revision} to ${canary.of}` }, () =>
        target.apply(apply, { ifMatch: base.specVersion }).catch(refusalIsFinal),
      );
    } catch (err) {
      if (err instanceof GatewayRequestError && err.status === 409 && attempt < MAX_CONFLICTS) continue;
      // The gateway refused the spec (4xx): the same spec would be refused again.
      if (err instanceof GatewayRequestError && err.status < 500 && err.status !== 409) {
        throw ApplicationFailure.nonRetryable(`cannot deploy ${what}: ${err.gatewayMessage}`, 'CanaryConflict');
      }
      throw err;
    }
  }

  const served = status.revisions.find((r) => r.name === revision);
  const replicas = status.replicas.filter((r) => r.revision === revision && r.ready).length;
  const result: CanaryStatus = {
    baseDeploymentId: status.id,
    revision,
    percent: served?.percent ?? canary.percent,
    split: status.traffic.split,
  };
  const baseRow = await repo.getDeployment(canary.of);
  if (baseRow) result.baseMonitorWorkflowId = workflowIds.monitor(baseRow.model, baseRow.version);

  const inferUrl = inferUrlOf(status.endpoint, input.model);
  await repo.upsertDeployment({
    ...deploymentRowOf(input, status.endpoint),
    state: 'canary',
    replicas,
    config: { canaryOf: canary.of, revision, percent: result.percent, inferUrl },
  });
  const detail = {
    revision,
    version: canary.version,
    deployment: input.deploymentId,
    image: input.image.digest,
    percent: result.percent,
    split: result.split,
  };
  // Deployments applied to the gateway by hand have no row (and so no events).
  if (baseRow) await repo.recordEventOnce(canary.of, 'canary-added', detail, { revision, image: input.image.digest });
  await repo.recordEventOnce(
    input.deploymentId,
    'deployed',
    { ...detail, canaryOf: canary.of },
    { canaryOf: canary.of, image: input.image.digest },
  );
  return { endpoint: status.endpoint, inferUrl, replicas, canary: result };
}

/**
 * The replicas' limits from the chosen plan's measured row (peak memory, cores): see
 * lib/targets/replicaResources.ts. None when the plan has no measurement; the gateway's defaults apply.
 */
async function plannedResources(modelVersionId: number): Promise<ReplicaResources | undefined> {
  const rows = await loadOptimizationResults(getPool(activityDeps().config.postgres.url), modelVersionId);
  const measured = rows.find((r) => r.chosen)?.benchmark as { peakRssBytes?: unknown; cores?: unknown } | undefined;
  if (typeof measured?.peakRssBytes !== 'number' || !(measured.peakRssBytes > 0)) return undefined;
  return resourcesForMeasurement({
    peakRssBytes: measured.peakRssBytes,
    cores: typeof measured.cores === 'number' ? measured.cores : 1,
  });
}

function imageRefOf(image: ImageRecord): ImageRef {
  return { registry: image.registry, repository: image.repository, reference: image.digest };
}

function inferUrlOf(endpoint: string, model: string): string {
  return `${endpoint}/v2/models/${model}/infer`;
}

/** The deployments row's fields that a plain deploy and a canary fill alike. */
function deploymentRowOf(input: DeployInput, endpoint: string) {
  return {
    id: input.deploymentId,
    modelVersionId: input.modelVersionId,
    imageId: input.imageId,
    // Where it runs, so the serving controls (traffic, promote, rollback) reach it there.
    target: targetRecord(placeFor(input.target)),
    endpoint,
    ...(input.access ? { access: input.access } : {}),
  };
}
