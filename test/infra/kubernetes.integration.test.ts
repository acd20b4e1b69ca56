/**
 * The dev stack's Kubernetes cluster (start it first: `bash infra/stack.sh start kubernetes`): the node is
 * Ready, a pod runs an image from the stack's registry (pulled with no imagePullSecrets) and its log reads
 * back through the apiserver and the kubelet. Then a second, private cluster (other ports, state dir and
 * pod subnet, so the shared one is never disturbed) runs a pod, stops, and must leave no process, network
 * namespace, mount, bridge or cgroup behind; started again it comes back Ready.
 *
 *   node --import tsx --test test/infra/kubernetes.integration.test.ts
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { loadConfig } from '../../lib/config';

const config = loadConfig();
const run = promisify(execFile);
const STACK = path.join(config.repoRoot, 'infra/stack.sh');
const CLUSTER = path.join(config.repoRoot, 'infra/kubernetes/cluster.sh');
const NODE = 'localhost';
const BUSYBOX = `${new URL(config.registry.url).host}/kubernetes/busybox:1.35`;

function clients(kubeconfigPath: string) {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  return { core: kc.makeApiClient(k8s.CoreV1Api) };
}

async function nodeReady(core: k8s.CoreV1Api): Promise<boolean> {
  const node = await core.readNode({ name: NODE });
  return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    await sleep(250);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

/** Runs a busybox pod that prints `message` and stays up; resolves once it is Running. */
async function runEchoPod(core: k8s.CoreV1Api, namespace: string, message: string): Promise<k8s.V1Pod> {
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  // the apiserver refuses pods in a namespace until the controller-manager has made its default ServiceAccount
  await waitFor("the namespace's default ServiceAccount", 30_000, () =>
    core.readNamespacedServiceAccount({ name: 'default', namespace }),
  );
  await core.createNamespacedPod({
    namespace,
    body: {
      metadata: { name: 'echo' },
      spec: {
        terminationGracePeriodSeconds: 0,
        containers: [{ name: 'echo', image: BUSYBOX, command: ['sh', '-c', `echo ${message}; exec sleep 3600`] }],
      },
    },
  });
  return waitFor('the pod to run', 60_000, async () => {
    const pod = await core.readNamespacedPod({ name: 'echo', namespace });
    const waiting = pod.status?.containerStatuses?.[0]?.state?.waiting;
    if (waiting?.reason && /BackOff|Err|Invalid/.test(waiting.reason)) {
      throw new Error(`pod cannot start: ${waiting.reason}: ${waiting.message ?? ''}`);
    }
    return pod.status?.phase === 'Running' ? pod : undefined;
  });
}

describe('kubernetes: the dev stack cluster', () => {
  const kubeconfig = path.join(config.stateDir, 'kubernetes', 'kubeconfig');
  let core: k8s.CoreV1Api;
  const namespace = `ferry-cluster-test-${randomBytes(3).toString('hex')}`;

  before(() => {
    assert.ok(existsSync(kubeconfig), `no kubeconfig at ${kubeconfig}: bash infra/stack.sh start kubernetes`);
    ({ core } = clients(kubeconfig));
  });
  after(async () => {
    await core?.deleteNamespace({ name: namespace, gracePeriodSeconds: 0 }).catch(() => undefined);
  });

  test('stack.sh status kubernetes reports it healthy (exit 0)', async () => {
    const { stdout } = await run('bash', [STACK, 'status', 'kubernetes'], { env: { ...process.env, TERM: 'dumb' } });
    assert.match(stdout, /^kubernetes\s+healthy/m, stdout);
  });

  test('the node is Ready and runs the kubelet built from source', async () => {
    assert.equal(await nodeReady(core), true);
    const node = await core.readNode({ name: NODE });
    assert.equal(node.status?.nodeInfo?.kubeletVersion, 'v1.37.2');
    assert.match(node.status?.nodeInfo?.containerRuntimeVersion ?? '', /^containerd:\/\//);
  });

  test('a pod from the stack registry runs without imagePullSecrets, and its log reads back', async () => {
    const message = `hello-${randomBytes(4).toString('hex')}`;
    const pod = await runEchoPod(core, namespace, message);
    assert.equal(pod.spec?.imagePullSecrets, undefined);
    assert.match(pod.status?.podIP ?? '', /^\d+\.\d+\.\d+\.\d+$/);
    const log = await waitFor('the log line', 15_000, async () => {
      const text = await core.readNamespacedPodLog({ name: 'echo', namespace, container: 'echo' });
      return text.includes(message) ? text : undefined;
    });
    assert.equal(log.trim(), message);
  });
});

/** What a cluster started in `stateDir` has on this machine, for the leftovers check. */
function clusterTraces(stateDir: string, node: { bridge: string; cgroupRoot: string; netns: readonly string[] }) {
  const dir = `${path.join(stateDir, 'kubernetes')}/`;
  const mounts = readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[1] ?? '')
    .filter((m) => m.startsWith(dir));
  // every process of the cluster names its state dir (flags, config, socket): shims included
  const processes = readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(dir);
      } catch {
        return false;
      }
    });
  return {
    mounts,
    processes,
    netns: node.netns.filter((ns) => existsSync(`/var/run/netns/${ns}`)),
    bridge: existsSync(`/sys/class/net/${node.bridge}`),
    cgroup: existsSync(`/sys/fs/cgroup/memory${node.cgroupRoot}`),
  };
}

const NOTHING_LEFT = { mounts: [], processes: [], netns: [], bridge: false, cgroup: false };

function listNetns(): string[] {
  return existsSync('/var/run/netns') ? readdirSync('/var/run/netns') : [];
}

describe('kubernetes: a second cluster stops cleanly and starts again', () => {
  const stateDir = mkdtempSync(path.join(tmpdir(), 'ferry-k8s-second-'));
  const env = {
    ...process.env,
    TERM: 'dumb',
    FERRY_STATE_DIR: stateDir,
    FERRY_K8S_API_PORT: '26443',
    FERRY_K8S_ETCD_PORT: '22379',
    FERRY_K8S_KUBELET_PORT: '30250',
    FERRY_K8S_CONTROLLER_MANAGER_PORT: '30257',
    FERRY_K8S_SCHEDULER_PORT: '30259',
    FERRY_K8S_POD_SUBNET: '10.89.0.0/24',
    FERRY_REGISTRY_USER: config.registry.credentials?.username ?? '',
    FERRY_REGISTRY_PASSWORD: config.registry.credentials?.password ?? '',
  };
  const cluster = (cmd: string) => run('bash', [CLUSTER, cmd], { env, timeout: 300_000 });

  after(async () => {
    await cluster('stop').catch(() => undefined);
    rmSync(stateDir, { recursive: true, force: true });
  });

  test('start, a pod, stop: nothing left; start again: Ready', { timeout: 600_000 }, async () => {
    const netnsBefore = new Set(listNetns());
    await cluster('start');
    const { core } = clients(path.join(stateDir, 'kubernetes', 'kubeconfig'));
    const pod = await runEchoPod(core, 'leftovers', 'second-cluster');
    assert.ok(pod.status?.podIP?.startsWith('10.89.0.'), `pod IP ${pod.status?.podIP} not in the second subnet`);
    const k8sDir = path.join(stateDir, 'kubernetes');
    const conflist = JSON.parse(readFileSync(path.join(k8sDir, 'cni', 'conf', '10-ferry.conflist'), 'utf8')) as {
      plugins: Array<{ bridge?: string }>;
    };
    const cgroupRoot = /^cgroupRoot: (.+)$/m.exec(
      readFileSync(path.join(k8sDir, 'kubelet', 'config.yaml'), 'utf8'),
    )?.[1];
    const node = {
      bridge: conflist.plugins[0]?.bridge ?? '',
      cgroupRoot: cgroupRoot ?? '',
      netns: listNetns().filter((ns) => !netnsBefore.has(ns)),
    };
    const up = clusterTraces(stateDir, node);
    assert.ok(
      up.bridge && up.cgroup && up.netns.length > 0 && up.mounts.length > 0 && up.processes.length >= 6,
      `the running cluster should show all its traces: ${JSON.stringify(up)}`,
    );

    await cluster('stop');
    assert.deepEqual(clusterTraces(stateDir, node), NOTHING_LEFT);

    await cluster('start');
    assert.equal(await nodeReady(core), true);
    await cluster('stop');
    assert.deepEqual(clusterTraces(stateDir, node), NOTHING_LEFT);
  });
});
