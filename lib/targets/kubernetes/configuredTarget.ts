/**
 * The kubernetes target as Ferry's settings describe it (lib/config.ts: the kubeconfig, the default
 * namespace, the gateway in front of the pods, a pod's default limits): one place for the worker's
 * deploy and monitor activities and for the SDK's serving controls (traffic, promote, rollback). One
 * API client per kubeconfig and process.
 */
import type { FerryConfig } from '../../config';
import { ClusterClient, loadKubeConfig } from './clusterClient';
import { KubernetesTarget } from './kubernetesTarget';

/** The server's drain after SIGTERM in Ferry's images (FERRY_DRAIN_TIMEOUT_MS's default). */
const DRAIN_TIMEOUT_MS = 30_000;

const clients = new Map<string, ClusterClient>();

export function configuredKubernetesTarget(
  config: Pick<FerryConfig, 'kubernetes' | 'gateway' | 'replicas'>,
  namespace: string | undefined,
  onProgress?: (step: string) => void,
): KubernetesTarget {
  const file = config.kubernetes.kubeconfig;
  let client = clients.get(file);
  if (!client) {
    client = new ClusterClient(loadKubeConfig(file));
    clients.set(file, client);
  }
  return new KubernetesTarget({
    client,
    namespace: namespace ?? config.kubernetes.namespace,
    gatewayUrl: config.gateway.url,
    defaultResources: config.replicas.defaultResources,
    drainTimeoutMs: DRAIN_TIMEOUT_MS,
    ...(onProgress ? { onProgress } : {}),
  });
}
