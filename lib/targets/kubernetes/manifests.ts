/**
 * The Kubernetes objects of a Ferry deployment, as pure functions of its spec: one Deployment per
 * revision (so a canary's pods and the stable ones scale and roll independently, and the gateway's
 * split chooses between them) and one Service over all of them. Applied by server-side apply
 * (kubernetesApi.ts), so applying the same objects again changes nothing.
 */
import type { V1Deployment, V1Service } from '@kubernetes/client-node';
import { SERVER_PORT } from '../../image/imageKinds';
import { IMAGE_USER } from '../../image/systemFiles';
import type { ReplicaResources } from '../deploymentTarget';
import { ANNOTATIONS, LABELS, labelValue, MANAGED_BY, revisionObjectName, serviceName } from './objectNames';

/** Seconds the kubelet waits after SIGTERM beyond the server's own drain, for it to exit. */
const EXIT_GRACE_SECONDS = 5;

export interface RevisionManifestInput {
  namespace: string;
  deploymentId: string;
  model: string;
  /** The model version the image serves (an annotation for people; absent when unknown). */
  version?: string;
  revision: string;
  /** Digest-pinned pull reference, e.g. 127.0.0.1:5000/ferry/mlp@sha256:… (see pullReference). */
  image: string;
  replicas: number;
  resources: ReplicaResources;
  /** How long the server drains in-flight requests after SIGTERM (FERRY_DRAIN_TIMEOUT_MS). */
  drainTimeoutMs: number;
}

/** The reference a node pulls: the registry's host, the repository and a digest (a re-push cannot change it). */
export function pullReference(image: { registry: string; repository: string; digest: string }): string {
  if (!/^sha256:[0-9a-f]{64}$/.test(image.digest)) throw new Error(`not an image digest: "${image.digest}"`);
  const host = image.registry.replace(/^[a-z]+:\/\//, '').replace(/\/+$/, '');
  return `${host}/${image.repository}@${image.digest}`;
}

function objectLabels(deploymentId: string): Record<string, string> {
  return { [LABELS.managedBy]: MANAGED_BY, [LABELS.deployment]: labelValue(deploymentId) };
}

function revisionLabels(deploymentId: string, revision: string): Record<string, string> {
  return { ...objectLabels(deploymentId), [LABELS.revision]: labelValue(revision), [LABELS.name]: 'ferry-inference' };
}

function cpuQuantity(cpus: number): string {
  return `${Math.max(1, Math.round(cpus * 1000))}m`;
}

export function terminationGraceSeconds(drainTimeoutMs: number): number {
  return Math.ceil(drainTimeoutMs / 1000) + EXIT_GRACE_SECONDS;
}

/** The Deployment of one revision: the digest-pinned image, the plan's limits, health probes, non-root. */
export function revisionDeployment(input: RevisionManifestInput): V1Deployment {
  const labels = revisionLabels(input.deploymentId, input.revision);
  const annotations: Record<string, string> = {
    [ANNOTATIONS.deployment]: input.deploymentId,
    [ANNOTATIONS.model]: input.model,
    [ANNOTATIONS.revision]: input.revision,
    ...(input.version ? { [ANNOTATIONS.version]: input.version } : {}),
  };
  const resources = { cpu: cpuQuantity(input.resources.cpus), memory: `${Math.round(input.resources.memoryMb)}Mi` };
  const probe = (path: string) => ({ httpGet: { path, port: SERVER_PORT, scheme: 'HTTP' } });
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: revisionObjectName(input.deploymentId, input.revision),
      namespace: input.namespace,
      labels,
      annotations,
    },
    spec: {
      replicas: input.replicas,
      selector: {
        matchLabels: {
          [LABELS.deployment]: labels[LABELS.deployment],
          [LABELS.revision]: labels[LABELS.revision],
        },
      },
      // New pods ready first, then the old ones go: the local target's order, and no capacity lost.
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      revisionHistoryLimit: 2,
      progressDeadlineSeconds: 300,
      template: {
        metadata: { labels, annotations },
        spec: {
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          terminationGracePeriodSeconds: terminationGraceSeconds(input.drainTimeoutMs),
          securityContext: {
            runAsNonRoot: true,
            runAsUser: IMAGE_USER.uid,
            runAsGroup: IMAGE_USER.gid,
            seccompProfile: { type: 'RuntimeDefault' },
          },
          containers: [
            {
              name: 'server',
              image: input.image,
              imagePullPolicy: 'IfNotPresent',
              ports: [{ name: 'http', containerPort: SERVER_PORT, protocol: 'TCP' }],
              env: [{ name: 'FERRY_DRAIN_TIMEOUT_MS', value: String(input.drainTimeoutMs) }],
              resources: { requests: resources, limits: resources },
              // Polled every second, so a pod is routable within a second of loading its model (wake from zero).
              readinessProbe: {
                ...probe('/v2/health/ready'),
                periodSeconds: 1,
                failureThreshold: 2,
                timeoutSeconds: 1,
              },
              // Liveness only after the server first answered: a slow model load is not a hung server.
              startupProbe: { ...probe('/v2/health/live'), periodSeconds: 1, failureThreshold: 300, timeoutSeconds: 1 },
              livenessProbe: { ...probe('/v2/health/live'), periodSeconds: 10, failureThreshold: 3, timeoutSeconds: 2 },
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ['ALL'] },
              },
              volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
            },
          ],
          volumes: [{ name: 'tmp', emptyDir: { sizeLimit: '64Mi' } }],
        },
      },
    },
  };
}

/**
 * The Service over every revision's pods (its EndpointSlices list them), carrying the Ferry spec as
 * applied in an annotation: the record the target reads back (status, traffic, promote).
 */
export function deploymentService(input: {
  namespace: string;
  deploymentId: string;
  model: string;
  spec: unknown;
  createdAt: string;
}): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: serviceName(input.deploymentId),
      namespace: input.namespace,
      labels: objectLabels(input.deploymentId),
      annotations: {
        [ANNOTATIONS.deployment]: input.deploymentId,
        [ANNOTATIONS.model]: input.model,
        [ANNOTATIONS.spec]: JSON.stringify(input.spec),
        [ANNOTATIONS.createdAt]: input.createdAt,
      },
    },
    spec: {
      type: 'ClusterIP',
      selector: { [LABELS.deployment]: labelValue(input.deploymentId) },
      ports: [{ name: 'http', port: SERVER_PORT, targetPort: SERVER_PORT, protocol: 'TCP' }],
    },
  };
}
