/**
 * MonitorDeploymentWorkflow: runs for a deployment's whole life. On an interval it collects metrics
 * into Postgres, hibernates the replicas after an idle period (the gateway wakes them on the next
 * request), and on `undeploy` destroys the deployment and ends. Continues as new before history grows.
 *
 * Each collection is also priced (replica-seconds held, at the resource they run on) and stored, and its
 * signals are scored against their history; the workflow decides when a score has stayed high long
 * enough to open an anomaly and when it cleared, stores both and posts them to the alert webhook.
 * Analytics never stand in the way of monitoring: if they fail (after retries), the collection goes on.
 *
 * A deployment found gone from its target (deleted through the gateway's control API, a gateway
 * restarted without its state) is marked `missing` (status, Postgres state and event) and the monitor
 * ends: it does not redeploy on its own. The removal may have been an operator's deliberate act, which
 * recreating would undo, and the monitor could not restore what was live anyway (traffic splits,
 * canaries and scaling changed at the target since the deploy). Its status says how to deploy again.
 */
import {
  ActivityFailure,
  condition,
  continueAsNew,
  patched,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type * as activities from '../activities';
import { type AlertState, initialAlertState, SIGNAL_SETTINGS, SIGNALS, stepAlert } from '../lib/analytics/anomaly';
import { monitorStatusQuery, undeploySignal } from './messages';
import { ferryStageKey } from './searchAttributes';
import type { MetricsSnapshot, MonitorInput, MonitorStatus } from './types';

const acts = proxyActivities<typeof activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1s', maximumInterval: '20s', backoffCoefficient: 2 },
});

/** Cost accounting and anomaly bookkeeping: retried a few times, then that interval's analytics are skipped. */
const analytics = proxyActivities<typeof activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1s', maximumInterval: '10s', backoffCoefficient: 2, maximumAttempts: 3 },
});

/** The alert webhook: retried with backoff for about two minutes, then given up (the anomaly stays stored). */
const alerts = proxyActivities<typeof activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '2s', maximumInterval: '30s', backoffCoefficient: 2, maximumAttempts: 6 },
});

/**
 * Collections per run before continuing as new. Each is two activities (collect, then price and score),
 * about 12 history events: 200 stay under the size at which Temporal suggests continuing as new.
 */
const COLLECTIONS_PER_RUN = 200;
const ANALYTICS_PATCH = 'monitor-cost-accounting';

/**
 * The predictive floor at this collection (mode on or forecast-only): the decision goes into the status.
 * A failed forecast is recorded, not fatal: reactive scaling stays in charge. True when a floor above
 * zero is in force on the target.
 */
async function predict(input: MonitorInput, status: MonitorStatus): Promise<boolean> {
  const mode = input.settings.predictive ?? 'off';
  if (mode === 'off') return false;
  try {
    status.predictive = await analytics.applyPredictiveFloor({
      deploymentId: input.deploymentId,
      ...onTarget(input),
      mode,
      intervalMs: input.settings.intervalMs,
    });
  } catch (err) {
    const why = err instanceof ActivityFailure && err.cause ? err.cause.message : String(err);
    status.predictive = {
      at: new Date().toISOString(),
      mode,
      floor: 0,
      applied: false,
      woke: false,
      forecastPeakPerMinute: 0,
      expectedRequests: 0,
      leadMinutes: 0,
      reason: `no forecast this interval: ${why}`,
    };
  }
  return status.predictive.applied && status.predictive.floor > 0;
}

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

  status.lastSample = input.carried?.lastSample;
  const alertStates: Partial<Record<(typeof SIGNALS)[number], AlertState>> = { ...input.carried?.alerts };
  status.anomalies = openAnomalies(alertStates);
  /** When the monitor hibernated the replicas since the last sample: they were held until then. */
  let stoppedAt: string | undefined;

  let collectionsThisRun = 0;
  while (!status.undeployRequested) {
    await condition(() => status.undeployRequested, input.settings.intervalMs);
    if (status.undeployRequested) break;

    const previous = status.lastSample;
    const sample = await acts.collectDeploymentMetrics({
      deploymentId: input.deploymentId,
      ...onTarget(input),
      previousBuckets: previous?.latencyBuckets,
    });
    status.lastSample = sample;
    status.servingState = sample.servingState;
    status.collections++;
    collectionsThisRun++;
    if (sample.servingState === 'missing') return endMissing(status, input, sample.at);

    // Runs started before cost accounting existed replay without it (their history has no such activity).
    const withAnalytics = patched(ANALYTICS_PATCH);
    if (withAnalytics) await accountAndAlert(input, status, alertStates, previous, sample, stoppedAt);
    stoppedAt = undefined;

    // Predictive scaling only when the input asks for it (runs from before it have no such setting, so
    // their histories replay unchanged). A floor in force keeps the deployment from being hibernated.
    const floorHeld = await predict(input, status);

    if (!floorHeld && sample.servingState === 'running' && sample.idleMs >= input.settings.idleHibernateMs) {
      const outcome = await acts.hibernateDeployment({
        deploymentId: input.deploymentId,
        idleMs: sample.idleMs,
        ...onTarget(input),
      });
      if (outcome === 'missing') return endMissing(status, input, new Date().toISOString());
      status.servingState = 'hibernated';
      status.hibernations++;
      stoppedAt = new Date().toISOString();
    }

    // 300: the count before the patch (a run recorded then replays with it).
    const perRun = withAnalytics ? (input.settings.collectionsPerRun ?? COLLECTIONS_PER_RUN) : 300;
    if (collectionsThisRun >= perRun || workflowInfo().continueAsNewSuggested) {
      await continueAsNew<typeof monitorDeploymentWorkflow>({
        ...input,
        carried: {
          collections: status.collections,
          hibernations: status.hibernations,
          lastSample: status.lastSample,
          alerts: alertStates,
        },
      });
    }
  }

  await acts.destroyDeployment({ deploymentId: input.deploymentId, ...onTarget(input) });
  status.servingState = 'undeployed';
  upsertSearchAttributes([{ key: ferryStageKey, value: 'undeployed' }]);
  return status;
}

/**
 * Prices the interval and steps each signal's alerting state; an anomaly that opened or cleared is
 * stored and posted to the webhook. A failure here is logged by Temporal and skipped: the next interval
 * is priced from this sample all the same.
 */
async function accountAndAlert(
  input: MonitorInput,
  status: MonitorStatus,
  states: Partial<Record<(typeof SIGNALS)[number], AlertState>>,
  previous: MetricsSnapshot | undefined,
  sample: MetricsSnapshot,
  stoppedAt: string | undefined,
): Promise<void> {
  let account: Awaited<ReturnType<typeof analytics.accountInterval>>;
  try {
    account = await analytics.accountInterval({
      deploymentId: input.deploymentId,
      previous,
      current: sample,
      stoppedAt,
    });
  } catch {
    return;
  }
  const s = account.summary;
  if (s) {
    status.cost = {
      per1kUsd: s.per1kUsd,
      perDayUsd: s.perDayUsd,
      projectedMonthUsd: s.projectedMonthUsd,
      idleUsd: s.idleUsd,
      allocatedUsd: s.allocatedUsd,
      replicaSeconds: s.replicaSeconds,
      requests: s.requests,
      coldStarts: s.coldStarts,
      coldStartMeanMs: s.coldStartMeanMs,
      priceSource: account.interval.pricing.price.source,
      lastIntervalPer1kUsd: account.interval.per1kUsd,
      since: new Date(s.from).toISOString(),
    };
  }
  const t = Date.parse(sample.at);
  for (const signal of SIGNALS) {
    const scored = account.scores[signal];
    const state = states[signal] ?? initialAlertState();
    // A signal with no value this interval (no request, no cold start) is calm: it can only clear.
    if (!scored && !state.open) continue;
    const step = stepAlert(
      state,
      t,
      scored?.score ?? 0,
      scored?.value ?? 0,
      scored?.baseline ?? 0,
      SIGNAL_SETTINGS[signal],
      input.settings.intervalMs,
    );
    states[signal] = step.state;
    const tr = step.transition;
    if (!tr) continue;
    const event =
      tr.kind === 'opened'
        ? {
            deploymentId: input.deploymentId,
            signal,
            kind: tr.kind,
            since: new Date(tr.since).toISOString(),
            at: sample.at,
            score: tr.score,
            value: tr.value,
            baseline: tr.baseline,
          }
        : {
            deploymentId: input.deploymentId,
            signal,
            kind: tr.kind,
            since: new Date(tr.since).toISOString(),
            at: sample.at,
            score: tr.peakScore,
          };
    try {
      await analytics.recordAnomalyTransition(event);
      await alerts.sendAnomalyAlert(event);
    } catch {
      // Stored or not, the alerting state moved on; the failure is in the workflow's history.
    }
  }
  status.anomalies = openAnomalies(states);
}

function openAnomalies(states: Partial<Record<(typeof SIGNALS)[number], AlertState>>): MonitorStatus['anomalies'] {
  return SIGNALS.flatMap((signal) => {
    const open = states[signal]?.open;
    return open ? [{ signal, since: new Date(open.since).toISOString(), peakScore: open.peakScore }] : [];
  });
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

/** The target field of an activity's input (absent for the local gateway, as in runs started before targets). */
function onTarget(input: MonitorInput): Pick<MonitorInput, 'target'> {
  return input.target ? { target: input.target } : {};
}
