/**
 * Follows a revision's rollout through watches on its Deployment and its pods (no polling loop):
 * every change the API server sends is fed to rolloutState, progress is reported as it changes, and
 * the rollout ends ready, failed (with the failing pod's reason and events) or timed out. Each watch
 * starts from a list (ClusterClient.listAndWatch); one the server closes (its timeout, an API server
 * restart) is listed and opened again, so nothing is missed in between.
 */
import type { KubernetesObject, V1Deployment, V1Pod } from '@kubernetes/client-node';
import type { ClusterClient, WatchedObjects } from './clusterClient';
import { RolloutFailedError } from './clusterErrors';
import { type RolloutState, rolloutState } from './rolloutState';

export interface RolloutWatchOptions {
  timeoutMs: number;
  onProgress?: (step: string) => void;
}

/** Resolves with the ready state; rejects with RolloutFailedError (failed or timed out). */
export function watchRollout(
  client: ClusterClient,
  namespace: string,
  name: string,
  podSelector: string,
  opts: RolloutWatchOptions,
): Promise<Extract<RolloutState, { phase: 'ready' }>> {
  return new Promise((resolve, reject) => {
    let deployment: V1Deployment | undefined;
    const pods = new Map<string, V1Pod>();
    const stops: Array<() => void> = [];
    let finished = false;
    let lastStep = 'waiting for the Deployment';
    const finish = (outcome: () => void) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      for (const stop of stops) stop();
      outcome();
    };
    const timer = setTimeout(
      () =>
        finish(() =>
          reject(
            new RolloutFailedError(
              'Timeout',
              `the rollout of ${namespace}/${name} was not ready within ${opts.timeoutMs} ms (last: ${lastStep})`,
            ),
          ),
        ),
      opts.timeoutMs,
    );
    const decide = () => {
      if (finished || !deployment) return;
      const state = rolloutState(deployment, [...pods.values()]);
      if (state.phase === 'ready') return finish(() => resolve(state));
      if (state.phase === 'failed') {
        const failed = state;
        // With the failing pod's events: what the kubelet and the scheduler said about it.
        void client
          .podEvents(namespace, failed.pod ? [failed.pod] : [])
          .then(
            (events) => rolloutState(deployment!, [...pods.values()], events),
            () => failed,
          )
          .then((withEvents) => {
            const s = withEvents.phase === 'failed' ? withEvents : failed;
            finish(() =>
              reject(new RolloutFailedError(s.reason, `rollout of ${namespace}/${name} failed: ${s.message}`)),
            );
          });
        return;
      }
      if (state.step !== lastStep) {
        lastStep = state.step;
        opts.onProgress?.(state.step);
      }
    };
    /** Lists and watches `w`; a watch the server closes is opened again from a fresh list (`reset` first). */
    const open = (w: WatchedObjects, onObject: (type: string, o: KubernetesObject) => void, reset: () => void) => {
      if (finished) return;
      client
        .listAndWatch(
          w,
          (type, object) => {
            // The server's refusal of the watch (a Status object): said when the rollout times out.
            if (type === 'ERROR') lastStep = `watch refused: ${(object as { message?: string }).message ?? 'unknown'}`;
            onObject(type, object);
            decide();
          },
          () =>
            setTimeout(() => {
              if (finished) return;
              reset();
              open(w, onObject, reset);
            }, 200).unref(),
        )
        .then(
          (stop) => (finished ? stop() : stops.push(stop)),
          (err: Error) => finish(() => reject(err)),
        );
    };
    open(
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        plural: 'deployments',
        namespace,
        fieldSelector: `metadata.name=${name}`,
      },
      (type, o) => {
        if (type === 'ADDED' || type === 'MODIFIED') deployment = o as V1Deployment;
        if (type === 'DELETED')
          finish(() => reject(new RolloutFailedError('Deleted', `${namespace}/${name} was deleted`)));
      },
      () => {},
    );
    open(
      { apiVersion: 'v1', kind: 'Pod', plural: 'pods', namespace, labelSelector: podSelector },
      (type, o) => {
        const pod = o as V1Pod;
        const key = pod.metadata?.name ?? '';
        if (type === 'DELETED') pods.delete(key);
        else if (type === 'ADDED' || type === 'MODIFIED') pods.set(key, pod);
      },
      () => pods.clear(),
    );
  });
}

/** Resolves once no pod matches `podSelector` (their Deployment was deleted or scaled to zero). */
export function watchPodsGone(
  client: ClusterClient,
  namespace: string,
  podSelector: string,
  timeoutMs: number,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const pods = new Set<string>();
    let stop: (() => void) | undefined;
    let finished = false;
    const finish = (outcome: () => void) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      stop?.();
      outcome();
    };
    const timer = setTimeout(
      () =>
        finish(() =>
          reject(
            new Error(`pods ${podSelector} in ${namespace} still exist after ${timeoutMs} ms: ${[...pods].join(', ')}`),
          ),
        ),
      timeoutMs,
    );
    // The list says which pods exist now; the watch from its resourceVersion sees them go. A watch the
    // server closes is followed by a fresh list.
    const sync = async () => {
      const list = await client.listPodList(namespace, podSelector);
      pods.clear();
      for (const p of list.items) pods.add(p.metadata?.name ?? '');
      if (pods.size === 0) return finish(resolve);
      if (finished) return;
      const s = await client.watch(
        `/api/v1/namespaces/${namespace}/pods`,
        { labelSelector: podSelector, resourceVersion: list.metadata?.resourceVersion },
        (type, o) => {
          const key = o.metadata?.name ?? '';
          if (type === 'DELETED') pods.delete(key);
          else if (type === 'ADDED') pods.add(key);
          if (pods.size === 0) finish(resolve);
        },
        () => {
          if (!finished) setTimeout(() => sync().catch((err: Error) => finish(() => reject(err))), 200).unref();
        },
      );
      if (finished) s();
      else stop = s;
    };
    sync().catch((err: Error) => finish(() => reject(err)));
  });
}
