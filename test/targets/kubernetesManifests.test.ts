/** The kubernetes target's pure parts: object names, manifests and rollout decisions (no cluster needed). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1Deployment, V1Pod } from '@kubernetes/client-node';
import { kubeconfigPath } from '../../lib/targets/kubernetes/kubeconfig';
import { deploymentService, pullReference, revisionDeployment } from '../../lib/targets/kubernetes/manifests';
import { labelValue, revisionObjectName, serviceName } from '../../lib/targets/kubernetes/objectNames';
import { rolloutState } from '../../lib/targets/kubernetes/rolloutState';

const DIGEST = `sha256:${'ab'.repeat(32)}`;
const input = {
  namespace: 'models',
  deploymentId: 'MLP_v1.prod',
  model: 'mlp',
  version: '3',
  revision: 'v3',
  image: pullReference({ registry: 'http://127.0.0.1:5000', repository: 'ferry/mlp', digest: DIGEST }),
  replicas: 2,
  resources: { cpus: 0.5, memoryMb: 320 },
  drainTimeoutMs: 12_000,
};

describe('kubernetes object names', () => {
  it('are valid DNS-1123 labels, distinct for ids that differ only in case or punctuation', () => {
    const ids = ['MLP_v1.prod', 'mlp-v1-prod', 'mlp_v1_prod', 'x'.repeat(128)];
    const names = ids.map(serviceName);
    assert.equal(new Set(names).size, ids.length);
    for (const id of ids) {
      for (const name of [serviceName(id), revisionObjectName(id, 'canary-of-a-long-name.2')]) {
        assert.match(name, /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/);
        assert.ok(name.length <= 63, `${name} is ${name.length} characters`);
      }
    }
    assert.notEqual(revisionObjectName('d', 'v1'), revisionObjectName('d', 'V1'));
  });

  it('label values keep a valid id as it is and hash one that is not', () => {
    assert.equal(labelValue('MLP_v1.prod'), 'MLP_v1.prod');
    const long = labelValue('y'.repeat(100));
    assert.ok(long.length <= 63);
    assert.match(long, /^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$/);
    assert.notEqual(labelValue('-a'), labelValue('a-'));
  });
});

describe('revisionDeployment', () => {
  const d = revisionDeployment(input);
  const pod = d.spec!.template.spec!;
  const c = pod.containers[0];

  it('runs the digest-pinned image with the plan limits as requests and limits', () => {
    assert.equal(c.image, `127.0.0.1:5000/ferry/mlp@${DIGEST}`);
    assert.deepEqual(c.resources, {
      requests: { cpu: '500m', memory: '320Mi' },
      limits: { cpu: '500m', memory: '320Mi' },
    });
    assert.equal(d.spec!.replicas, 2);
  });

  it('probes the inference server and gives it its drain time before a kill', () => {
    assert.equal(c.readinessProbe!.httpGet!.path, '/v2/health/ready');
    assert.equal(c.livenessProbe!.httpGet!.path, '/v2/health/live');
    assert.equal(c.readinessProbe!.httpGet!.port, 8000);
    assert.equal(pod.terminationGracePeriodSeconds, 17);
    assert.deepEqual(c.env, [{ name: 'FERRY_DRAIN_TIMEOUT_MS', value: '12000' }]);
  });

  it('runs as the image user, non-root, without privileges', () => {
    assert.equal(pod.securityContext!.runAsNonRoot, true);
    assert.equal(pod.securityContext!.runAsUser, 65532);
    assert.equal(c.securityContext!.allowPrivilegeEscalation, false);
    assert.equal(c.securityContext!.readOnlyRootFilesystem, true);
    assert.deepEqual(c.securityContext!.capabilities!.drop, ['ALL']);
    assert.equal(pod.automountServiceAccountToken, false);
  });

  it('names the Ferry deployment, model, version and revision, and selects only its revision', () => {
    assert.equal(d.metadata!.annotations!['ferry.dev/deployment-id'], 'MLP_v1.prod');
    assert.equal(d.metadata!.annotations!['ferry.dev/model'], 'mlp');
    assert.equal(d.metadata!.annotations!['ferry.dev/model-version'], '3');
    assert.equal(d.metadata!.annotations!['ferry.dev/revision'], 'v3');
    assert.equal(d.metadata!.labels!['app.kubernetes.io/managed-by'], 'ferry');
    assert.deepEqual(d.spec!.selector.matchLabels, {
      'ferry.dev/deployment': 'MLP_v1.prod',
      'ferry.dev/revision': 'v3',
    });
    for (const [k, v] of Object.entries(d.spec!.selector.matchLabels!))
      assert.equal(d.spec!.template.metadata!.labels![k], v);
    assert.deepEqual(d.spec!.strategy!.rollingUpdate, { maxSurge: 1, maxUnavailable: 0 });
  });

  it('is the same object for the same input (so applying it again changes nothing)', () => {
    assert.deepEqual(revisionDeployment(input), d);
  });

  it('refuses an image that is not pinned by digest', () => {
    assert.throws(
      () => pullReference({ registry: 'http://r:5000', repository: 'ferry/mlp', digest: 'latest' }),
      /not an image digest/,
    );
  });
});

describe('deploymentService', () => {
  it('selects every revision of the deployment and keeps the spec as applied', () => {
    const spec = { model: 'mlp', revisions: [{ name: 'v3' }] };
    const s = deploymentService({ ...input, spec, createdAt: '2026-01-01T00:00:00.000Z' });
    assert.deepEqual(s.spec!.selector, { 'ferry.dev/deployment': 'MLP_v1.prod' });
    assert.deepEqual(JSON.parse(s.metadata!.annotations!['ferry.dev/spec']), spec);
    assert.equal(s.metadata!.name, serviceName('MLP_v1.prod'));
  });
});

describe('kubeconfigPath', () => {
  it('uses KUBECONFIG (its first entry), else the stack state dir', () => {
    assert.equal(kubeconfigPath('/s', '/a/config:/b/config'), '/a/config');
    assert.equal(kubeconfigPath('/s', undefined), '/s/kubernetes/kubeconfig');
  });
});

function deployment(status: V1Deployment['status'], replicas = 2, generation = 3): V1Deployment {
  return { metadata: { name: 'd', generation }, spec: { replicas, selector: {}, template: {} }, status };
}

function pod(name: string, status: V1Pod['status'], deleting = false): V1Pod {
  return { metadata: { name, ...(deleting ? { deletionTimestamp: new Date() } : {}) }, status };
}

const waiting = (reason: string, message: string, last?: { reason: string; exitCode: number }): V1Pod['status'] => ({
  containerStatuses: [
    {
      name: 'server',
      image: 'i',
      imageID: '',
      ready: false,
      restartCount: last ? 3 : 0,
      state: { waiting: { reason, message } },
      ...(last ? { lastState: { terminated: last } } : {}),
    },
  ],
});

describe('rolloutState', () => {
  const complete = { observedGeneration: 3, replicas: 2, updatedReplicas: 2, readyReplicas: 2, availableReplicas: 2 };

  it('is ready only when the controller saw the spec, every pod runs it and no old pod is left', () => {
    assert.deepEqual(rolloutState(deployment(complete), []), { phase: 'ready', readyReplicas: 2 });
    assert.equal(rolloutState(deployment({ ...complete, observedGeneration: 2 }), []).phase, 'progressing');
    const old = rolloutState(deployment({ ...complete, replicas: 3 }), []);
    assert.equal(old.phase, 'progressing');
    assert.match((old as { step: string }).step, /1 old pods terminating/);
    const starting = rolloutState(deployment({ ...complete, readyReplicas: 1 }), []);
    assert.deepEqual(starting, { phase: 'progressing', readyReplicas: 1, desiredReplicas: 2, step: '1/2 pods ready' });
  });

  it('is ready at zero replicas (hibernated)', () => {
    assert.equal(rolloutState(deployment({ observedGeneration: 3 }, 0), []).phase, 'ready');
  });

  it('fails on an image that cannot be pulled, with the pod reason and its warning events', () => {
    const events = [
      {
        metadata: {},
        involvedObject: { name: 'p1' },
        type: 'Warning',
        reason: 'Failed',
        message: 'Failed to pull image "r/x@sha256:00": not found',
        lastTimestamp: new Date(2),
      },
      { metadata: {}, involvedObject: { name: 'p1' }, type: 'Normal', reason: 'Pulling', message: 'pulling' },
      { metadata: {}, involvedObject: { name: 'other' }, type: 'Warning', reason: 'Other', message: 'x' },
    ];
    const s = rolloutState(
      deployment({ observedGeneration: 3 }),
      [pod('p1', waiting('ImagePullBackOff', 'Back-off pulling image "r/x@sha256:00"'))],
      events,
    );
    assert.equal(s.phase, 'failed');
    assert.equal((s as { reason: string }).reason, 'ImagePullBackOff');
    const message = (s as { message: string }).message;
    assert.match(message, /pod p1: ImagePullBackOff: Back-off pulling image/);
    assert.match(message, /events: Failed: Failed to pull image .*not found/);
    assert.doesNotMatch(message, /Pulling|Other/);
  });

  it('fails on a crash loop, saying how the container last exited', () => {
    const s = rolloutState(deployment({ observedGeneration: 3 }), [
      pod('p2', waiting('CrashLoopBackOff', 'back-off 10s restarting', { reason: 'OOMKilled', exitCode: 137 })),
    ]);
    assert.equal((s as { reason: string }).reason, 'CrashLoopBackOff');
    assert.match((s as { message: string }).message, /last exit: OOMKilled, code 137/);
  });

  it('fails on a pod no node can take', () => {
    const s = rolloutState(deployment({ observedGeneration: 3 }), [
      pod('p3', {
        conditions: [
          { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/1 nodes: Insufficient cpu' },
        ],
      }),
    ]);
    assert.deepEqual(
      { phase: s.phase, reason: (s as { reason: string }).reason },
      { phase: 'failed', reason: 'Unschedulable' },
    );
    assert.match((s as { message: string }).message, /Insufficient cpu/);
  });

  it('waits through a first pull error and ignores pods being deleted', () => {
    assert.equal(
      rolloutState(deployment({ observedGeneration: 3 }), [pod('p4', waiting('ErrImagePull', 'timeout'))]).phase,
      'progressing',
    );
    assert.equal(
      rolloutState(deployment(complete), [pod('p5', waiting('CrashLoopBackOff', 'x'), true)]).phase,
      'ready',
    );
  });

  it('fails when the controller gave up (deadline, quota)', () => {
    const deadline = rolloutState(
      deployment({
        observedGeneration: 3,
        conditions: [
          { type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded', message: 'took too long' },
        ],
      }),
      [],
    );
    assert.equal((deadline as { reason: string }).reason, 'ProgressDeadlineExceeded');
    const quota = rolloutState(
      deployment({
        observedGeneration: 3,
        conditions: [{ type: 'ReplicaFailure', status: 'True', reason: 'FailedCreate', message: 'exceeded quota' }],
      }),
      [],
    );
    assert.deepEqual(quota, { phase: 'failed', reason: 'FailedCreate', message: 'exceeded quota' });
  });
});
