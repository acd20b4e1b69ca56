/**
 * The gateway's memory across restarts: `<stateDir>/gateway/deployments.json`, one record per
 * deployment with its spec, how to launch it and the pids of its replicas. Written atomically
 * (temp file, fsync, rename) so a crash leaves either the old or the new file, never half of one.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import * as path from 'node:path';
import type {
  DeploymentAccess,
  ImageRef,
  ReplicaEvent,
  ReplicaResources,
  ReplicaRuntimeName,
} from '../targets/deploymentTarget';
import type { AutoscalingSettings } from './autoscaler';
import type { LaunchPlan } from './launchPlan';
import type { NormalizedTrafficPolicy } from './trafficPolicy';

export interface ReplicaRecord {
  pid: number;
  port: number;
  startedAt: string;
  /** Kernel start time of the process (/proc/<pid>/stat field 22): tells our pid from a reused one. */
  procStartTicks: string | null;
  logFile: string;
  /** The launch plan key the replica runs; replicas of an older plan are replaced. */
  planKey: string;
  /** The revision it belongs to (files written before revisions existed: "default"). */
  revision: string;
  /** What runs it; absent (records of older gateways): a plain process. */
  runtime?: ReplicaRuntimeName;
  /** A container's bundle folder (lib/container/container.ts), from which a restarted gateway finds it again. */
  bundleDir?: string;
  /** The unpacked image tree an image's replica runs from: not garbage-collected while it runs. */
  rootfs?: string;
}

export interface RevisionRecord {
  name: string;
  image?: ImageRef;
  modelDir?: string;
  /** Resolved once per spec (after pulling the image), so waking never needs the registry. */
  plan: LaunchPlan;
  /** Overrides the deployment's `replicas`. */
  replicas?: number;
}

export interface DeploymentRecord {
  id: string;
  model: string;
  /** Per revision: the fixed count, or the count to start with when autoscaling. */
  replicas: number;
  revisions: RevisionRecord[];
  traffic: NormalizedTrafficPolicy;
  autoscaling: AutoscalingSettings | null;
  scaleToZeroAfterMs: number | null;
  /** The project it belongs to and whether inference needs a key (files from older gateways: default, keyed). */
  access: DeploymentAccess;
  /** Limits of each image replica as the spec gives them; null: the gateway's defaults. */
  resources: ReplicaResources | null;
  /** The most recent replica events, newest last (ReplicaEvent). */
  events: ReplicaEvent[];
  /** What the operator asked for; 'waking' is never stored (a restart during a wake hibernates). */
  state: 'running' | 'hibernated';
  live: ReplicaRecord[];
  createdAt: string;
  runningSince: string | null;
  lastRequestAt: string | null;
  requestsServed: number;
  coldStarts: number;
  lastWakeMs: number | null;
  restarts: number;
}

/** The single-revision record written before revisions, traffic and autoscaling existed. */
interface LegacyFields {
  image?: ImageRef;
  modelDir?: string;
  plan?: LaunchPlan;
}

/** Deployments made before projects existed belong to the `default` project, and inference needs a key. */
export const DEFAULT_ACCESS: DeploymentAccess = { project: 'default', public: false };

/** Fills in what files from older gateways lack (they describe one revision, "default"). */
function upgradeRecord(raw: DeploymentRecord & LegacyFields): DeploymentRecord {
  const { image, modelDir, plan, ...rest } = raw;
  const revisions = raw.revisions ?? [
    { name: 'default', ...(image ? { image } : {}), ...(modelDir ? { modelDir } : {}), plan: plan! },
  ];
  return {
    ...rest,
    revisions,
    traffic: raw.traffic ?? { split: { [revisions[0].name]: 100 }, rules: [] },
    autoscaling: raw.autoscaling ?? null,
    scaleToZeroAfterMs: raw.scaleToZeroAfterMs ?? null,
    access: raw.access ?? DEFAULT_ACCESS,
    resources: raw.resources ?? null,
    events: raw.events ?? [],
    live: raw.live.map((r) => ({ ...r, revision: r.revision ?? revisions[0].name })),
  };
}

interface StoreFile {
  version: 1;
  deployments: DeploymentRecord[];
}

export class DeploymentStore {
  readonly file: string;
  private writing: Promise<void> = Promise.resolve();
  private pending: (() => DeploymentRecord[]) | undefined;

  constructor(stateDir: string) {
    this.file = path.join(stateDir, 'gateway', 'deployments.json');
    mkdirSync(path.dirname(this.file), { recursive: true });
  }

  load(): DeploymentRecord[] {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const parsed = JSON.parse(text) as StoreFile;
    if (parsed.version !== 1 || !Array.isArray(parsed.deployments)) {
      throw new Error(`${this.file} is not a Ferry gateway state file (version 1)`);
    }
    return parsed.deployments.map((d) => upgradeRecord(d as DeploymentRecord & LegacyFields));
  }

  /**
   * Saves what `snapshot` returns when the write actually happens. Calls made while a write is in
   * flight collapse into one follow-up write, so bursts of changes cost at most two writes.
   */
  save(snapshot: () => DeploymentRecord[]): Promise<void> {
    const alreadyQueued = this.pending !== undefined;
    this.pending = snapshot;
    if (alreadyQueued) return this.writing;
    // A failed write is reported to its callers but must not block the ones after it.
    this.writing = this.writing
      .catch(() => undefined)
      .then(async () => {
        const take = this.pending!;
        this.pending = undefined;
        await this.writeAtomically({ version: 1, deployments: take() });
      });
    return this.writing;
  }

  private async writeAtomically(content: StoreFile): Promise<void> {
    const tmp = `${this.file}.${process.pid}.tmp`;
    const handle = await open(tmp, 'w');
    try {
      await handle.writeFile(JSON.stringify(content, null, 2));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, this.file);
  }
}
