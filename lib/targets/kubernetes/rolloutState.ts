/**
 * Where a revision's rollout stands, decided from what the API server reports (its Deployment, its
 * pods, their events): a pure function, so the watch (rolloutWatch.ts) only feeds it objects, and the
 * decisions are tested without a cluster. A rollout fails as soon as a pod shows a state that waiting
 * does not fix (an image that cannot be pulled, a container that keeps crashing, a pod no node can
 * take), with the pod's own reason and its latest warning events.
 */
import type { CoreV1Event, V1Deployment, V1Pod } from '@kubernetes/client-node';

export type RolloutState =
  | { phase: 'ready'; readyReplicas: number }
  | { phase: 'progressing'; readyReplicas: number; desiredReplicas: number; step: string }
  | { phase: 'failed'; reason: string; message: string; pod?: string };

/** Container waiting reasons that mean the rollout will not succeed by itself. */
const FATAL_WAITING = new Set([
  'ImagePullBackOff',
  'ErrImageNeverPull',
  'InvalidImageName',
  'CreateContainerConfigError',
  'CreateContainerError',
  'CrashLoopBackOff',
  'RunContainerError',
]);

/** Warning events shown with a failure. */
const EVENTS_SHOWN = 3;

function podFailure(pod: V1Pod): { reason: string; message: string } | undefined {
  for (const c of pod.status?.containerStatuses ?? []) {
    const waiting = c.state?.waiting;
    if (waiting?.reason && FATAL_WAITING.has(waiting.reason)) {
      const last = c.lastState?.terminated;
      const lastWords = last ? ` (last exit: ${last.reason ?? 'terminated'}, code ${last.exitCode})` : '';
      return { reason: waiting.reason, message: `${waiting.message ?? waiting.reason}${lastWords}` };
    }
  }
  const scheduled = pod.status?.conditions?.find((c) => c.type === 'PodScheduled');
  if (scheduled?.status === 'False' && scheduled.reason === 'Unschedulable') {
    return { reason: 'Unschedulable', message: scheduled.message ?? 'no node can run the pod' };
  }
  return undefined;
}

function eventsOf(pod: string, events: CoreV1Event[]): string[] {
  return events
    .filter((e) => e.involvedObject?.name === pod && e.type === 'Warning')
    .sort((a, b) => eventTime(a) - eventTime(b))
    .slice(-EVENTS_SHOWN)
    .map((e) => `${e.reason}: ${e.message ?? ''}`.trim());
}

function eventTime(e: CoreV1Event): number {
  const t = e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? e.metadata?.creationTimestamp;
  return t ? new Date(t as unknown as string).getTime() : 0;
}

/**
 * The rollout of `deployment` (its spec as applied), given its pods (those being deleted are
 * ignored) and the namespace's recent events.
 */
export function rolloutState(deployment: V1Deployment, pods: V1Pod[], events: CoreV1Event[] = []): RolloutState {
  const desired = deployment.spec?.replicas ?? 1;
  const s = deployment.status ?? {};
  const ready = s.readyReplicas ?? 0;
  const live = pods.filter((p) => !p.metadata?.deletionTimestamp);
  for (const pod of live) {
    const failure = podFailure(pod);
    if (!failure) continue;
    const name = pod.metadata?.name ?? '?';
    const seen = eventsOf(name, events);
    return {
      phase: 'failed',
      reason: failure.reason,
      pod: name,
      message: `pod ${name}: ${failure.reason}: ${failure.message}${seen.length ? `; events: ${seen.join('; ')}` : ''}`,
    };
  }
  const progressing = s.conditions?.find((c) => c.type === 'Progressing');
  if (progressing?.status === 'False' && progressing.reason === 'ProgressDeadlineExceeded') {
    return {
      phase: 'failed',
      reason: 'ProgressDeadlineExceeded',
      message: progressing.message ?? 'the rollout made no progress',
    };
  }
  const replicaFailure = s.conditions?.find((c) => c.type === 'ReplicaFailure' && c.status === 'True');
  if (replicaFailure) {
    return {
      phase: 'failed',
      reason: replicaFailure.reason ?? 'ReplicaFailure',
      message: replicaFailure.message ?? 'pods could not be created',
    };
  }
  const observed = (s.observedGeneration ?? 0) >= (deployment.metadata?.generation ?? 0);
  // Ready: the controller saw this spec, every pod runs it, and no pod of an older template is left.
  if (observed && (s.updatedReplicas ?? 0) >= desired && ready >= desired && (s.replicas ?? 0) <= desired) {
    return { phase: 'ready', readyReplicas: ready };
  }
  let step: string;
  if (!observed) step = 'waiting for the controller';
  else if ((s.updatedReplicas ?? 0) < desired)
    step = `${s.updatedReplicas ?? 0}/${desired} pods of the new spec created`;
  else if (ready < desired) step = `${ready}/${desired} pods ready`;
  else step = `${(s.replicas ?? 0) - desired} old pods terminating`;
  return { phase: 'progressing', readyReplicas: ready, desiredReplicas: desired, step };
}
