/**
 * The dev stack's Kubernetes cluster as tests and benchmarks use it: its kubeconfig (exported as
 * KUBECONFIG, so the worker and the gateway a harness starts find it from their own state dirs), a
 * namespace of their own, and what is left of a Ferry deployment in it (by Ferry's labels).
 */
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import * as k8s from '@kubernetes/client-node';
import { loadConfig } from '../../lib/config';
import { deploymentSelector } from '../../lib/targets/kubernetes/objectNames';

export interface TestCluster {
  kubeconfig: string;
  kc: k8s.KubeConfig;
  core: k8s.CoreV1Api;
  apps: k8s.AppsV1Api;
  autoscaling: k8s.AutoscalingV2Api;
  /** Creates `namespace` and waits for its default ServiceAccount (the apiserver refuses pods before it). */
  createNamespace(namespace: string): Promise<void>;
  deleteNamespace(namespace: string): Promise<void>;
  /** Names of the deployment's objects still in `namespace`: Deployments, ReplicaSets, Services, pods, HPAs. */
  leftovers(namespace: string, deploymentId: string): Promise<string[]>;
}

/**
 * The stack's cluster (start it with `bash infra/stack.sh start kubernetes`); sets process.env.KUBECONFIG
 * to its kubeconfig, which startHarness hands to the processes it starts. Throws when there is none.
 */
export function stackCluster(): TestCluster {
  const kubeconfig = loadConfig().kubernetes.kubeconfig;
  if (!existsSync(kubeconfig))
    throw new Error(`no kubeconfig at ${kubeconfig}: start the cluster with \`bash infra/stack.sh start kubernetes\``);
  process.env.KUBECONFIG = kubeconfig;
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfig);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const apps = kc.makeApiClient(k8s.AppsV1Api);
  const autoscaling = kc.makeApiClient(k8s.AutoscalingV2Api);
  return {
    kubeconfig,
    kc,
    core,
    apps,
    autoscaling,
    async createNamespace(namespace) {
      await core.createNamespace({ body: { metadata: { name: namespace, labels: { 'ferry.dev/test': 'true' } } } });
      const deadline = Date.now() + 30_000;
      for (;;) {
        try {
          await core.readNamespacedServiceAccount({ name: 'default', namespace });
          return;
        } catch (err) {
          if (Date.now() > deadline) throw err;
          await sleep(250);
        }
      }
    },
    async deleteNamespace(namespace) {
      await core.deleteNamespace({ name: namespace, gracePeriodSeconds: 0 }).catch(() => undefined);
    },
    async leftovers(namespace, deploymentId) {
      const labelSelector = deploymentSelector(deploymentId);
      const [deployments, replicaSets, services, pods, hpas] = await Promise.all([
        apps.listNamespacedDeployment({ namespace, labelSelector }),
        apps.listNamespacedReplicaSet({ namespace, labelSelector }),
        core.listNamespacedService({ namespace, labelSelector }),
        core.listNamespacedPod({ namespace, labelSelector }),
        autoscaling.listNamespacedHorizontalPodAutoscaler({ namespace, labelSelector }),
      ]);
      return [
        ...deployments.items.map((o) => `Deployment/${o.metadata?.name}`),
        ...replicaSets.items.map((o) => `ReplicaSet/${o.metadata?.name}`),
        ...services.items.map((o) => `Service/${o.metadata?.name}`),
        ...pods.items.map((o) => `Pod/${o.metadata?.name}`),
        ...hpas.items.map((o) => `HorizontalPodAutoscaler/${o.metadata?.name}`),
      ];
    },
  };
}
