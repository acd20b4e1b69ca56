/**
 * Stage 5, monitor: read the serving replicas' Prometheus metrics through the target, store a sample,
 * hibernate when idle, destroy on undeploy.
 */
import {
  histogramQuantile,
  intervalBuckets,
  mergedBuckets,
  parsePrometheusText,
  sumOf,
} from '../../lib/monitor/prometheus';
import { DeploymentNotFoundError } from '../../lib/targets/deploymentTarget';
import type { DeploymentTargetChoice, MetricsSnapshot, ServingState } from '../../workflows/types';
import { activityDeps, targetFor } from '../deps';

const ERRORS = 'ferry_inference_errors_total';
const LATENCY = 'ferry_inference_request_duration_seconds';
/** session.run time: what keeps a replica's CPUs busy (queue waits do not), the usage side of cost allocation. */
const COMPUTE = 'ferry_inference_compute_duration_seconds';

export async function collectDeploymentMetrics(input: {
  deploymentId: string;
  target?: DeploymentTargetChoice;
  /** The previous sample's cumulative latency buckets (from the workflow), for per-interval quantiles. */
  previousBuckets?: MetricsSnapshot['latencyBuckets'];
}): Promise<MetricsSnapshot> {
  const { repo } = activityDeps();
  const target = await targetFor(input.target);
  let status: Awaited<ReturnType<typeof target.status>>;
  try {
    status = await target.status(input.deploymentId);
  } catch (err) {
    // Removed behind Ferry's back (deleted through the gateway's control API, or a gateway restarted
    // without its state): not a failure to retry, a state to record and report.
    if (err instanceof DeploymentNotFoundError) return recordMissing(input.deploymentId);
    throw err;
  }
  const samples = parsePrometheusText(status.replicas.length ? await target.metrics(input.deploymentId) : '');
  const servingState = status.state as ServingState;
  const buckets = mergedBuckets(samples, LATENCY);
  const interval = intervalBuckets(buckets, input.previousBuckets ?? []);
  const toMs = (s: number | null) => (s === null ? null : s * 1000);

  // The gateway's own count survives hibernation (replica counters restart with each replica).
  const requestCount = status.requestsServed;
  const previous = await repo.lastMetrics(input.deploymentId);
  const requestsDelta = Math.max(0, requestCount - (previous?.requestCount ?? 0));
  const lastActivity = Date.parse(status.lastRequestAt ?? status.runningSince ?? new Date().toISOString());
  const snapshot: MetricsSnapshot = {
    at: new Date().toISOString(),
    servingState,
    replicas: status.replicas.length,
    requestCount,
    requestsDelta,
    errorCount: sumOf(samples, ERRORS),
    latencyP50Ms: toMs(histogramQuantile(0.5, interval)),
    latencyP95Ms: toMs(histogramQuantile(0.95, interval)),
    idleMs: Math.max(0, Date.now() - lastActivity),
    latencyBuckets: buckets,
    replicaSet: status.replicas.map((r) => ({ key: String(r.pid), revision: r.revision, startedAt: r.startedAt })),
    replicaCounters: replicaCounters(samples),
    coldStarts: status.coldStarts,
    lastWakeMs: status.lastWakeMs,
    resources: { cpus: status.resources.cpus, memoryMb: status.resources.memoryMb },
  };
  await repo.recordMetrics(input.deploymentId, {
    requestCount,
    errorCount: snapshot.errorCount,
    latencyP50Ms: snapshot.latencyP50Ms,
    latencyP95Ms: snapshot.latencyP95Ms,
    requestsDelta,
    replicas: snapshot.replicas,
  });
  const row = await repo.getDeployment(input.deploymentId);
  if (row && row.state !== servingState) {
    await repo.setDeploymentState(input.deploymentId, servingState, snapshot.replicas);
    await repo.recordEvent(input.deploymentId, servingState === 'running' ? 'woke' : servingState, {});
  }
  return snapshot;
}

/** Each replica's cumulative compute seconds and errors, from the `replica` label the gateway adds. */
function replicaCounters(
  samples: ReturnType<typeof parsePrometheusText>,
): Record<string, { busySeconds: number; errors: number }> {
  const out: Record<string, { busySeconds: number; errors: number }> = {};
  for (const s of samples) {
    const key = s.labels.replica;
    if (key === undefined || (s.name !== `${COMPUTE}_sum` && s.name !== ERRORS)) continue;
    out[key] ??= { busySeconds: 0, errors: 0 };
    if (s.name === ERRORS) out[key].errors += s.value;
    else out[key].busySeconds += s.value;
  }
  return out;
}

/** The sample of a deployment its target does not have: state `missing` in Postgres, with an event once. */
async function recordMissing(deploymentId: string): Promise<MetricsSnapshot> {
  const { repo } = activityDeps();
  const row = await repo.getDeployment(deploymentId);
  if (row && row.state !== 'missing') {
    await repo.setDeploymentState(deploymentId, 'missing', 0);
    await repo.recordEvent(deploymentId, 'missing', {
      previousState: row.state,
      reason: 'the deployment target has no deployment by this id (removed outside Ferry)',
    });
  }
  return {
    at: new Date().toISOString(),
    servingState: 'missing',
    replicas: 0,
    requestCount: 0,
    requestsDelta: 0,
    errorCount: 0,
    latencyP50Ms: null,
    latencyP95Ms: null,
    idleMs: 0,
    latencyBuckets: [],
  };
}

/** Hibernates the replicas; 'missing' (recorded) when the deployment disappeared meanwhile. */
export async function hibernateDeployment(input: {
  deploymentId: string;
  idleMs: number;
  target?: DeploymentTargetChoice;
}): Promise<'hibernated' | 'missing'> {
  const { repo } = activityDeps();
  const target = await targetFor(input.target);
  try {
    await target.hibernate(input.deploymentId);
  } catch (err) {
    if (!(err instanceof DeploymentNotFoundError)) throw err;
    await recordMissing(input.deploymentId);
    return 'missing';
  }
  await repo.setDeploymentState(input.deploymentId, 'hibernated', 0);
  await repo.recordEvent(input.deploymentId, 'hibernated', { idleMs: input.idleMs });
  return 'hibernated';
}

export async function destroyDeployment(input: {
  deploymentId: string;
  target?: DeploymentTargetChoice;
}): Promise<void> {
  const { repo } = activityDeps();
  const target = await targetFor(input.target);
  await target.destroy(input.deploymentId);
  await repo.setDeploymentState(input.deploymentId, 'undeployed', 0);
  await repo.recordEvent(input.deploymentId, 'undeployed', {});
}
