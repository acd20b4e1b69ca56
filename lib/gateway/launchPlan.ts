/**
 * How to start one replica of a deployment on this machine.
 *
 * For an image, two ways: as a container (`container`: the unpacked rootfs and the image config's
 * process settings, run by lib/container under youki or runc with the plan's `resources` as limits),
 * or, as the fallback, as a plain process: its Entrypoint + Cmd with the host's node binary, inside the
 * unpacked rootfs, with absolute paths in the arguments, FERRY_MODEL_DIR and WorkingDir mapped into the
 * rootfs the way a container's mount namespace would see them (no isolation beyond the process).
 * A model directory always runs as a plain process.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import type { ReplicaResources } from '../targets/deploymentTarget';

/** What a container runtime needs to run an image's replica. */
export interface ContainerLaunch {
  /** Absolute path of the unpacked image root filesystem (mounted read-only, shared by the replicas). */
  rootfs: string;
  /** The image config's process settings. */
  config: ImageProcessConfig;
}

export interface ImageProcessConfig {
  Entrypoint?: string[];
  Cmd?: string[];
  Env?: string[];
  WorkingDir?: string;
  User?: string;
}

export interface LaunchPlan {
  /** Identity of what runs: replicas started from another key belong to an older spec. */
  key: string;
  command: string;
  args: string[];
  /** Added to a minimal host environment; PORT and HOST are set per replica. */
  env: Record<string, string>;
  cwd: string;
  /** Digest the image reference resolved to (an index's, for a multi-platform image), when launched from one. */
  digest?: string;
  /** Digest of the manifest that runs: this machine's platform's, when `digest` is an index. */
  platformDigest?: string;
  /**
   * True when the program listens on the Unix domain socket named by FERRY_SOCKET (the inference
   * server since it has runtime/server/settings.ts's FERRY_SOCKET): its replicas get a socket, not a port.
   */
  socket?: boolean;
  /** True when the standby process may load the program ahead of a cold start (main.ts's standby entry). */
  standbyEntry?: boolean;
  /** Set for an image: how to run it as a container (the fields above run it as a plain process). */
  container?: ContainerLaunch;
  /** A container's limits as the deployment spec gives them; absent: the gateway's defaults. */
  resources?: ReplicaResources;
}

/**
 * What a replica's record keeps as its `planKey`: the program, and the limits it runs under when they
 * are the spec's. Replicas started from another key belong to an older spec and are replaced.
 */
export function replicaPlanKey(plan: LaunchPlan): string {
  const r = plan.container ? plan.resources : undefined;
  return r ? `${plan.key};cpus=${r.cpus};memoryMb=${r.memoryMb}` : plan.key;
}

/** `plan` with the spec's limits (images only: a model directory's processes have none). */
export function withResources(plan: LaunchPlan, resources: ReplicaResources | null): LaunchPlan {
  if (!plan.container) return plan;
  const { resources: _old, ...rest } = plan;
  return resources ? { ...rest, resources } : rest;
}

/** What the repo's inference server (runtime/server/main.ts) supports: its bundle gets all of it. */
const SERVER_FEATURES = { socket: true, standbyEntry: true } as const;

/** The parts of a pulled image the gateway needs (lib/oci/pull's PulledImage has these). */
export interface PulledImageForLaunch {
  digest: string;
  resolvedDigest?: string;
  config: {
    config?: { [K in keyof ImageProcessConfig]?: ImageProcessConfig[K] | null };
  };
  rootfs: string;
}

const repoRoot = path.resolve(__dirname, '../..');
const NODE_NAMES = new Set(['node', 'nodejs']);
/** Env vars that name paths inside the image. */
const PATH_ENV_VARS = ['FERRY_MODEL_DIR'];

export function launchPlanForImage(image: PulledImageForLaunch): LaunchPlan {
  const cfg = image.config.config ?? {};
  const argv = [...(cfg.Entrypoint ?? []), ...(cfg.Cmd ?? [])];
  if (argv.length === 0) throw new Error(`image ${image.digest} has no Entrypoint or Cmd to run`);
  if (!NODE_NAMES.has(path.posix.basename(argv[0]))) {
    throw new Error(
      `image ${image.digest} runs "${argv[0]}"; the local target runs node entrypoints only (with this machine's node)`,
    );
  }
  const inRootfs = (p: string) => path.join(image.rootfs, p);
  const env: Record<string, string> = {};
  for (const entry of cfg.Env ?? []) {
    const eq = entry.indexOf('=');
    if (eq <= 0) continue;
    const name = entry.slice(0, eq);
    const value = entry.slice(eq + 1);
    if (name === 'PATH') continue; // the image's PATH means nothing on the host
    env[name] = PATH_ENV_VARS.includes(name) && path.posix.isAbsolute(value) ? inRootfs(value) : value;
  }
  const args = argv
    .slice(1)
    .map((arg) => (path.posix.isAbsolute(arg) && existsSync(inRootfs(arg)) ? inRootfs(arg) : arg));
  const workingDir = cfg.WorkingDir && existsSync(inRootfs(cfg.WorkingDir)) ? inRootfs(cfg.WorkingDir) : image.rootfs;
  const features = args.length > 0 ? serverFeaturesOf(path.resolve(workingDir, args[0])) : {};
  return {
    key: `image:${image.digest}`,
    command: process.execPath,
    args,
    env,
    cwd: workingDir,
    digest: image.resolvedDigest ?? image.digest,
    ...(image.resolvedDigest && image.resolvedDigest !== image.digest ? { platformDigest: image.digest } : {}),
    ...features,
    container: {
      rootfs: image.rootfs,
      config: Object.fromEntries(
        Object.entries(cfg).filter(
          ([k, v]) => v !== null && v !== undefined && ['Entrypoint', 'Cmd', 'Env', 'WorkingDir', 'User'].includes(k),
        ),
      ) as ImageProcessConfig,
    },
  };
}

/**
 * What an image's entry script supports of what the repo's server does now (images built before a
 * feature lack it: they listen on PORT, are polled for readiness, start from scratch). Read once, when
 * the plan is made after a pull.
 */
function serverFeaturesOf(script: string): Pick<LaunchPlan, 'socket' | 'standbyEntry'> {
  let text: string;
  try {
    if (!script.endsWith('.js')) return {};
    text = readFileSync(script, 'latin1');
  } catch {
    return {};
  }
  return {
    ...(text.includes('process.env.FERRY_SOCKET') ? { socket: true } : {}),
    ...(text.includes('ferry.standbyEntry') ? { standbyEntry: true } : {}),
  };
}

/**
 * Serves a model directory with the repo's own inference server, bundled into one plain CommonJS file
 * (the same esbuild bundle images carry as /app/server.js) and run with plain node: starting it through
 * tsx instead costs ~300 ms of TypeScript loading on every cold start. onnxruntime-node stays
 * external and resolves from the repo's node_modules (NODE_PATH). If bundling fails, runs through tsx.
 */
export async function launchPlanForModelDir(modelDir: string, stateDir: string): Promise<LaunchPlan> {
  const dir = path.resolve(modelDir);
  const plan = { key: `dir:${dir}`, command: process.execPath, cwd: repoRoot };
  try {
    const bundle = await bundledServer(stateDir);
    return {
      ...plan,
      args: [bundle],
      env: { FERRY_MODEL_DIR: dir, NODE_PATH: path.join(repoRoot, 'node_modules') },
      ...SERVER_FEATURES,
    };
  } catch {
    return {
      ...plan,
      args: ['--import', 'tsx', path.join(repoRoot, 'runtime/server/main.ts')],
      env: { FERRY_MODEL_DIR: dir },
      socket: true,
    };
  }
}

const bundles = new Map<string, Promise<string>>();

/** `<stateDir>/gateway/runtime/server-<sha256 prefix>.js`, built once per gateway process. */
function bundledServer(stateDir: string): Promise<string> {
  let bundle = bundles.get(stateDir);
  if (!bundle) {
    bundle = (async () => {
      const { bundleServer } = await import('../image/runtimeLayer');
      const bytes = await bundleServer(path.join(repoRoot, 'runtime/server/main.ts'), repoRoot);
      const dir = path.join(stateDir, 'gateway', 'runtime');
      await mkdir(dir, { recursive: true });
      const file = path.join(dir, `server-${createHash('sha256').update(bytes).digest('hex').slice(0, 16)}.js`);
      if (!existsSync(file)) {
        const tmp = `${file}.${process.pid}.tmp`;
        await writeFile(tmp, bytes);
        await rename(tmp, file);
      }
      return file;
    })();
    bundle.catch(() => bundles.delete(stateDir)); // try again next time
    bundles.set(stateDir, bundle);
  }
  return bundle;
}
