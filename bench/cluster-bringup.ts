/**
 * Bring-up time of the dev stack's Kubernetes cluster from cached binaries: `cluster.sh start` until it
 * returns (etcd, apiserver, controller-manager, scheduler, containerd, kubelet, and the node Ready), for
 * a new state dir (certificates made, etcd empty) and for a restart of the same state, and what a stop
 * takes. Runs a private cluster on other ports, state dir and pod subnet, so the stack's own is not
 * touched. Also prints the recorded cold build time of the binaries (build.sh's build-seconds).
 *
 *   npx tsx bench/cluster-bringup.ts [--runs 3]
 *
 * Needs the stack's registry (the node's pause image) and the binaries built (bash infra/kubernetes/build.sh).
 * Figures: median (min–max) over --runs; the machine is shared, read the spread.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { loadConfig } from '../lib/config';

const run = promisify(execFile);
const config = loadConfig();
const CLUSTER = path.join(config.repoRoot, 'infra/kubernetes/cluster.sh');
const BUILD = path.join(config.repoRoot, 'infra/kubernetes/build.sh');

function summary(xs: readonly number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return `${(median / 1000).toFixed(1)} s (${(s[0]! / 1000).toFixed(1)}–${(s[s.length - 1]! / 1000).toFixed(1)})`;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' } } });
  const runs = Number(values.runs);
  const bin = (await run('bash', [BUILD, '--dir'])).stdout.trim();
  if (!existsSync(path.join(bin, 'kubelet'))) throw new Error(`no binaries in ${bin}: bash infra/kubernetes/build.sh`);
  const buildSecondsFile = path.join(path.dirname(bin), 'build-seconds');
  const buildSeconds = existsSync(buildSecondsFile) ? readFileSync(buildSecondsFile, 'utf8').trim() : undefined;

  const fresh: number[] = [];
  const restart: number[] = [];
  const stop: number[] = [];
  for (let i = 0; i < runs; i++) {
    const stateDir = mkdtempSync(path.join(tmpdir(), 'ferry-k8s-bench-'));
    const env = {
      ...process.env,
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
    try {
      fresh.push(await timed(() => cluster('start')));
      stop.push(await timed(() => cluster('stop')));
      restart.push(await timed(() => cluster('start')));
      stop.push(await timed(() => cluster('stop')));
    } finally {
      await cluster('stop').catch(() => undefined);
      rmSync(stateDir, { recursive: true, force: true });
    }
    console.error(
      `run ${i + 1}/${runs}: new state ${(fresh[i]! / 1000).toFixed(1)} s, restart ${(restart[i]! / 1000).toFixed(1)} s`,
    );
  }
  console.log(`cluster bring-up from cached binaries, to node Ready (${runs} runs, median (min–max)):`);
  console.log(`  new state dir (certificates, empty etcd): ${summary(fresh)}`);
  console.log(`  restart of the same state:                ${summary(restart)}`);
  console.log(`  stop (processes, netns, mounts, bridge):  ${summary(stop)}`);
  console.log(
    `build of these binaries, as build.sh recorded it (${bin}): ${buildSeconds ? `${(Number(buildSeconds) / 60).toFixed(1)} min (${buildSeconds} s, recorded by build.sh)` : 'not recorded'}`,
  );
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
