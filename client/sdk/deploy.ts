/**
 * A deploy as the SDK makes it: the file checked and hashed, a canary's target checked, the model
 * streamed to the object store, then the pipeline started with a reference to it (never the bytes).
 */
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import * as path from 'node:path';
import type { FerryConfig } from '../../lib/config';
import { ONE_CLICK_TECHNIQUES } from '../../lib/optimize/plans';
import { type ObjectStore, objectKeys } from '../../lib/store/objectStore';
import { type DeployModelInput, deploymentIdFor, workflowIds } from '../../workflows/types';
import { FerryError } from './errors';
import type { DeploymentRuns } from './runs';
import type { ServingControls } from './serving';
import type { DeployOptions, DeployStarted } from './types';

const MODEL_NAME = /^[a-z0-9][a-z0-9_.-]{0,62}$/;
const VERSION_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/**
 * What a deploy goes through: the object store for the file, the runs to start, the gateway for a canary,
 * and the defaults of what the caller leaves out (lib/config.ts).
 */
export interface DeployParts {
  defaults: FerryConfig['deploy'];
  store: ObjectStore;
  runs: DeploymentRuns;
  serving: ServingControls;
}

/** One-click (or review) deploy: stream the file to the object store, then start the workflow. */
export async function deployModelFile(
  { defaults, store, runs, serving }: DeployParts,
  filePath: string,
  opts: DeployOptions = {},
): Promise<DeployStarted> {
  const info = await stat(filePath).catch(() => {
    throw new FerryError(`model file ${filePath} does not exist`);
  });
  if (!info.isFile()) throw new FerryError(`${filePath} is not a file`);
  const model =
    opts.model ??
    path
      .basename(filePath)
      .replace(/\.onnx$/i, '')
      .toLowerCase()
      .replace(/[^a-z0-9_.-]+/g, '-');
  if (!MODEL_NAME.test(model)) {
    throw new FerryError(
      `model name "${model}" is not allowed: use lowercase letters, digits, '.', '_' or '-' (max 63)`,
    );
  }
  const sha256 = await sha256OfFile(filePath);
  const version = opts.version ?? `sha-${sha256.slice(0, 12)}`;
  if (!VERSION_NAME.test(version))
    throw new FerryError(`version "${version}" is not allowed: use letters, digits, '.', '_' or '-'`);
  const deploymentId = deploymentIdFor(model, version);
  const workflowId = workflowIds.deploy(model, version);
  runs.remember({ deploymentId, workflowId, model, version });
  const existed: DeployStarted = { deploymentId, workflowId, model, version, alreadyExisted: true };

  // Same model version already deployed or deploying: do not upload or run it again.
  if (await runs.isRunningOrDone(workflowId)) return existed;
  // A canary needs a live deployment to join: find it now rather than after the optimize stage.
  const canary = opts.canary ? await serving.canaryTarget(model, version, opts.canary, opts.replicas) : undefined;

  const staged = await store.putFile(objectKeys.staging(randomUUID()), filePath, (sent) =>
    opts.onUploadProgress?.(sent, info.size),
  );
  if (staged.sha256 !== sha256) {
    await store.delete(staged.key);
    throw new FerryError(`${filePath} changed while it was being uploaded; try again`);
  }
  const mode = opts.mode ?? 'one-click';
  const input: DeployModelInput = {
    deploymentId,
    model,
    version,
    upload: { objectKey: staged.key, sha256, sizeBytes: staged.sizeBytes, fileName: path.basename(filePath) },
    mode,
    approvalTimeoutMs: opts.approvalTimeoutMs ?? defaults.approvalTimeoutMs,
    replicas: opts.replicas ?? 1,
    monitor: { intervalMs: defaults.monitorIntervalMs, idleHibernateMs: defaults.idleHibernateMs, ...opts.monitor },
    optimize: {
      ...opts.optimize,
      techniques: opts.optimize?.techniques ?? (mode === 'one-click' ? ONE_CLICK_TECHNIQUES : undefined),
    },
    ...(canary ? { canary } : {}),
  };
  let started: { runId: string } | undefined;
  try {
    started = await runs.start(input);
  } finally {
    if (!started) await store.delete(staged.key); // nothing half-written stays behind
  }
  if (!started) return existed;
  return { deploymentId, workflowId, model, version, runId: started.runId, alreadyExisted: false };
}

export async function sha256OfFile(filePath: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(filePath)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
