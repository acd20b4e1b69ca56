/**
 * The calls the kubernetes target makes to the API server, in one place: server-side apply (with
 * Ferry's field manager, so applying the same object twice is a no-op and a retried activity never
 * creates a second object), the scale subresource, listing by Ferry's labels, watches.
 */
import { existsSync } from 'node:fs';
import {
  ApiException,
  AppsV1Api,
  CoreV1Api,
  type CoreV1Event,
  KubeConfig,
  type KubernetesObject,
  KubernetesObjectApi,
  PatchStrategy,
  setHeaderOptions,
  type V1Deployment,
  type V1Pod,
  type V1PodList,
  type V1Service,
  Watch,
} from '@kubernetes/client-node';
import { ClusterRequestError } from './clusterErrors';
import { NoKubeconfigError } from './kubeconfig';
import { FIELD_MANAGER } from './objectNames';

/** The cluster's config from `file` (config.kubernetes.kubeconfig); throws NoKubeconfigError when it is missing. */
export function loadKubeConfig(file: string): KubeConfig {
  if (!existsSync(file)) throw new NoKubeconfigError(file);
  const kc = new KubeConfig();
  kc.loadFromFile(file);
  return kc;
}

/** The HTTP status of an API error, or undefined for anything else (a refused connection). */
export function statusOf(err: unknown): number | undefined {
  return err instanceof ApiException ? err.code : undefined;
}

/** Rewrites an API error into one that says what was refused and why (the server's message). */
function explained(err: unknown, what: string): unknown {
  if (!(err instanceof ApiException)) return err;
  let message = String(err.body ?? '');
  let reason = '';
  try {
    const body = (typeof err.body === 'string' ? JSON.parse(err.body) : err.body) as {
      message?: string;
      reason?: string;
    };
    message = body.message ?? message;
    reason = body.reason ?? '';
  } catch {
    /* not JSON: keep the text */
  }
  return new ClusterRequestError(err.code, reason, `${what}: the API server answered ${err.code}: ${message}`);
}

/** A collection to list and watch: its kind, where (no namespace: all of them) and which of its objects. */
export interface WatchedObjects {
  /** e.g. v1, apps/v1 */
  apiVersion: string;
  kind: string;
  /** The collection's name in paths, e.g. deployments. */
  plural: string;
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
}

function collectionPath(w: WatchedObjects): string {
  const group = w.apiVersion.includes('/') ? `/apis/${w.apiVersion}` : `/api/${w.apiVersion}`;
  return `${group}${w.namespace ? `/namespaces/${w.namespace}` : ''}/${w.plural}`;
}

export class ClusterClient {
  readonly apps: AppsV1Api;
  readonly core: CoreV1Api;
  private readonly objects: KubernetesObjectApi;
  private readonly watcher: Watch;

  constructor(readonly kc: KubeConfig) {
    this.apps = kc.makeApiClient(AppsV1Api);
    this.core = kc.makeApiClient(CoreV1Api);
    this.objects = KubernetesObjectApi.makeApiClient(kc);
    this.watcher = new Watch(kc);
  }

  /** Server-side apply: Ferry's fields of `object` become these, whoever changed them last. */
  async apply<T extends KubernetesObject>(object: T): Promise<T> {
    try {
      return await this.objects.patch(object, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
    } catch (err) {
      throw explained(err, `applying ${object.kind} ${object.metadata?.namespace}/${object.metadata?.name}`);
    }
  }

  async readService(namespace: string, name: string): Promise<V1Service | undefined> {
    return this.orUndefined(
      () => this.core.readNamespacedService({ namespace, name }),
      `reading Service ${namespace}/${name}`,
    );
  }

  async readDeployment(namespace: string, name: string): Promise<V1Deployment | undefined> {
    return this.orUndefined(
      () => this.apps.readNamespacedDeployment({ namespace, name }),
      `reading Deployment ${namespace}/${name}`,
    );
  }

  async listServices(namespace: string | undefined, labelSelector: string): Promise<V1Service[]> {
    return this.call(
      async () =>
        (namespace
          ? await this.core.listNamespacedService({ namespace, labelSelector })
          : await this.core.listServiceForAllNamespaces({ labelSelector })
        ).items,
      `listing Services (${labelSelector})`,
    );
  }

  async listDeployments(namespace: string, labelSelector: string): Promise<V1Deployment[]> {
    return this.call(
      async () => (await this.apps.listNamespacedDeployment({ namespace, labelSelector })).items,
      `listing Deployments in ${namespace}`,
    );
  }

  async listPods(namespace: string, labelSelector: string): Promise<V1Pod[]> {
    return this.call(
      async () => (await this.core.listNamespacedPod({ namespace, labelSelector })).items,
      `listing pods in ${namespace}`,
    );
  }

  /** The list with its resourceVersion (to watch from). */
  async listPodList(namespace: string, labelSelector: string): Promise<V1PodList> {
    return this.call(() => this.core.listNamespacedPod({ namespace, labelSelector }), `listing pods in ${namespace}`);
  }

  /** Events about the pods named (the rollout's failure report shows their warnings). */
  async podEvents(namespace: string, pods: string[]): Promise<CoreV1Event[]> {
    const out: CoreV1Event[] = [];
    for (const name of pods) {
      const list = await this.call(
        () =>
          this.core.listNamespacedEvent({
            namespace,
            fieldSelector: `involvedObject.kind=Pod,involvedObject.name=${name}`,
          }),
        `listing events of pod ${name}`,
      );
      out.push(...list.items);
    }
    return out;
  }

  /** Sets a Deployment's replica count through the scale subresource (what an autoscaler owns). */
  async scale(namespace: string, name: string, replicas: number): Promise<void> {
    await this.call(
      () =>
        this.apps.patchNamespacedDeploymentScale(
          { namespace, name, body: { spec: { replicas } } },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        ),
      `scaling Deployment ${namespace}/${name} to ${replicas}`,
    );
  }

  /** Merges `annotations` into a Service's (the target's record of a deployment's spec). */
  async annotateService(namespace: string, name: string, annotations: Record<string, string>): Promise<V1Service> {
    return this.call(
      () =>
        this.core.patchNamespacedService(
          { namespace, name, body: { metadata: { annotations } } },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        ),
      `annotating Service ${namespace}/${name}`,
    );
  }

  /** Deletes an object; one that is gone already is no error. Pods go with their Deployment (foreground). */
  async deleteDeployment(namespace: string, name: string): Promise<void> {
    await this.orUndefined(
      () => this.apps.deleteNamespacedDeployment({ namespace, name, propagationPolicy: 'Background' }),
      `deleting Deployment ${namespace}/${name}`,
    );
  }

  async deleteService(namespace: string, name: string): Promise<void> {
    await this.orUndefined(
      () => this.core.deleteNamespacedService({ namespace, name }),
      `deleting Service ${namespace}/${name}`,
    );
  }

  /**
   * Lists the objects of `w`, hands each to `onEvent` as ADDED, then watches them from the list's
   * resourceVersion (an informer's list-then-watch). A watch opened without a resourceVersion would
   * have to start from a consistent read, which API servers on storage without watch progress
   * notifications (etcd 3.4) refuse. Resolves with a stop function; `onDone` is called when the
   * server closes the watch (the caller lists and watches again).
   */
  async listAndWatch(
    w: WatchedObjects,
    onEvent: (type: string, object: KubernetesObject) => void,
    onDone: (err: unknown) => void,
  ): Promise<() => void> {
    const list = await this.call(
      () =>
        this.objects.list(
          w.apiVersion,
          w.kind,
          w.namespace,
          undefined,
          undefined,
          undefined,
          w.fieldSelector,
          w.labelSelector,
        ),
      `listing ${w.kind}s${w.namespace ? ` in ${w.namespace}` : ''}`,
    );
    for (const item of list.items) onEvent('ADDED', item);
    const query = {
      ...(w.labelSelector ? { labelSelector: w.labelSelector } : {}),
      ...(w.fieldSelector ? { fieldSelector: w.fieldSelector } : {}),
      resourceVersion: list.metadata?.resourceVersion,
    };
    return this.watch(collectionPath(w), query, onEvent, onDone);
  }

  /**
   * Watches `path` (e.g. /apis/apps/v1/namespaces/x/deployments) from `resourceVersion`; `onEvent` gets
   * each change. Resolves with a stop function; `onDone` is called when the server closes the watch.
   */
  async watch(
    path: string,
    query: Record<string, string | number | boolean | undefined>,
    onEvent: (type: string, object: KubernetesObject) => void,
    onDone: (err: unknown) => void,
  ): Promise<() => void> {
    const controller = await this.watcher.watch(path, { allowWatchBookmarks: true, ...query }, onEvent, onDone);
    return () => controller.abort();
  }

  private async call<T>(fn: () => Promise<T>, what: string): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw explained(err, what);
    }
  }

  private async orUndefined<T>(fn: () => Promise<T>, what: string): Promise<T | undefined> {
    try {
      return await fn();
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw explained(err, what);
    }
  }
}
