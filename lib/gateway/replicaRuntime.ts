/**
 * What runs an image's replicas on this gateway (lib/config.ts `replicas.runtime`, FERRY_CONTAINER_RUNTIME):
 *
 *   youki | runc   that container runtime, which must be installed (else a replica fails to start, saying so)
 *   process        plain host processes, as asked
 *   auto (unset)   youki if installed, else runc, else plain processes: a fallback that says why
 *
 * Containers need root here (cgroup limits, and the runtime's namespaces and mounts), conmon (their
 * monitor) and a runtime; decided once per gateway, so a runtime installed later is used after a
 * restart. A model directory has no image to run and always runs as a plain process.
 */
import type { ReplicaRuntimeSetting } from '../config';
import type { ContainerLimits } from '../container/bundleSpec';
import { type ContainerRuntime, findRuntime, locateBinary, RUNTIME_NAMES } from '../container/containerRuntime';
import type { ReplicaResources } from '../targets/deploymentTarget';
import type { LaunchPlan } from './launchPlan';

export type RuntimeChoice =
  | { kind: 'container'; runtime: ContainerRuntime }
  /** `fallback`: an image that would run as a container runs as a process; `reason` says why. */
  | { kind: 'process'; fallback: boolean; reason: string };

const MiB = 1 << 20;

export class ReplicaRuntimes {
  private forImages: Promise<RuntimeChoice> | undefined;

  constructor(
    readonly setting: ReplicaRuntimeSetting,
    readonly defaultResources: ReplicaResources,
    private readonly log: (message: string) => void,
  ) {}

  /** How replicas of `plan` run here. Rejects when the configured runtime cannot be used. */
  choose(plan: LaunchPlan): Promise<RuntimeChoice> {
    if (!plan.container) {
      return Promise.resolve({ kind: 'process', fallback: false, reason: 'a model directory runs as a process' });
    }
    if (!this.forImages) {
      this.forImages = this.resolve();
      this.forImages.then(
        (c) => {
          if (c.kind === 'container') this.log(`image replicas run as containers under ${c.runtime.version}`);
          else this.log(`warning: image replicas run as plain processes, without limits or isolation: ${c.reason}`);
        },
        (err: Error) => this.log(`image replicas cannot start: ${err.message}`),
      );
    }
    return this.forImages;
  }

  /** The limits a container replica of `plan` runs with: the spec's, or the gateway's defaults. */
  resourcesOf(plan: LaunchPlan): ReplicaResources {
    return plan.resources ?? this.defaultResources;
  }

  limitsOf(plan: LaunchPlan): ContainerLimits {
    const r = this.resourcesOf(plan);
    return { cpus: r.cpus, memoryBytes: Math.round(r.memoryMb * MiB) };
  }

  private async resolve(): Promise<RuntimeChoice> {
    const setting = this.setting;
    if (setting === 'process') return { kind: 'process', fallback: true, reason: 'FERRY_CONTAINER_RUNTIME=process' };
    const uid = process.getuid?.();
    if (uid !== 0) {
      const why = `containers need root here (the gateway runs as uid ${uid})`;
      if (setting !== 'auto') throw new Error(`FERRY_CONTAINER_RUNTIME=${setting}: ${why}`);
      return { kind: 'process', fallback: true, reason: why };
    }
    if (setting !== 'auto') {
      await locateBinary('conmon');
      return { kind: 'container', runtime: await findRuntime(setting) };
    }
    const missing: string[] = [];
    try {
      await locateBinary('conmon');
    } catch (err) {
      return { kind: 'process', fallback: true, reason: `no container monitor: ${(err as Error).message}` };
    }
    for (const name of RUNTIME_NAMES) {
      try {
        return { kind: 'container', runtime: await findRuntime(name) };
      } catch (err) {
        missing.push((err as Error).message);
      }
    }
    return { kind: 'process', fallback: true, reason: `no container runtime: ${missing.join('; ')}` };
  }
}
