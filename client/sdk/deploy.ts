/**
 * A deploy as the SDK makes it: the file checked and hashed, a canary's target checked, the model
 * streamed to the object store, then the pipeline started with a reference to it (never the bytes).
 */
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import * as path from 'node:path';
import { type Readable, Transform } from 'node:stream';
import type { FerryConfig } from '../../lib/config';
import { assertValidName } from '../../lib/names';
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
  /**
   * Makes `project` the owner of the model name, or refuses a name another project owns
   * (lib/auth/modelOwnership.ts), before anything is uploaded.
   */
  claimModel(model: string, project: string): Promise<void>;
}

/** One-click (or review) deploy: stream the file to the object store, then start the workflow. */
export async function deployModelFile(
  { defaults, store, runs, serving, claimModel }: DeployParts,
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
  if (opts.access) await claimModel(model, opts.access.project);
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
  const canary = opts.canary
    ? await serving.canaryTarget(model, version, opts.canary, opts.replicas, opts.target)
    : undefined;

  const staged = await store.putFile(objectKeys.staging(randomUUID()), filePath, (sent) =>
    opts.onUploadProgress?.(sent, info.size),
  );
  if (staged.sha256 !== sha256) {
    await store.delete(staged.key);
    throw new FerryError(`${filePath} changed while it was being uploaded; try again`);
  }
  return startOnUpload({ defaults, store, runs }, opts, existed, canary, {
    objectKey: staged.key,
    sha256,
    sizeBytes: staged.sizeBytes,
    fileName: path.basename(filePath),
  });
}

/** Where a deploy made through the API belongs, and whether its inference needs a key. */
export interface DeployAccess {
  project: string;
  public: boolean;
}

export class ModelTooLargeError extends FerryError {
  override name = 'ModelTooLargeError';
}

/**
 * A deploy from a stream (the API's upload): the bytes go straight to a staging object while they are
 * hashed and counted, never to local disk; over `maxBytes` the upload is aborted and nothing stays behind.
 * The version defaults to the hash, so it is known only once the last byte is in.
 */
export async function deployModelStream(
  { defaults, store, runs, serving, claimModel }: DeployParts,
  body: Readable,
  opts: DeployOptions & { model: string; maxBytes: number; fileName: string; access?: DeployAccess },
): Promise<DeployStarted> {
  const model = assertValidName('model', opts.model);
  if (opts.version !== undefined) assertValidName('version', opts.version);
  // Before a byte is read: a name another project owns is refused without taking the upload.
  if (opts.access) await claimModel(model, opts.access.project);
  let seen = 0;
  const limiter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      seen += chunk.length;
      if (seen > opts.maxBytes) done(new ModelTooLargeError(`model is larger than the ${opts.maxBytes}-byte limit`));
      else done(null, chunk);
    },
  });
  body.on('error', (err) => limiter.destroy(err));
  body.on('aborted', () => limiter.destroy(new FerryError('the upload was interrupted')));
  const stagingKey = objectKeys.staging(randomUUID());
  let staged: Awaited<ReturnType<ObjectStore['putStream']>>;
  try {
    staged = await store.putStream(stagingKey, body.pipe(limiter));
  } catch (err) {
    await store.delete(stagingKey).catch(() => {});
    throw err instanceof FerryError
      ? err
      : seen > opts.maxBytes
        ? new ModelTooLargeError(`model is larger than the ${opts.maxBytes}-byte limit`)
        : err;
  }
  if (staged.sizeBytes === 0) {
    await store.delete(staged.key);
    throw new FerryError("the upload is empty: send the model's bytes as the body (application/octet-stream)");
  }
  const version = opts.version ?? `sha-${staged.sha256.slice(0, 12)}`;
  const deploymentId = deploymentIdFor(model, version);
  const workflowId = workflowIds.deploy(model, version);
  runs.remember({ deploymentId, workflowId, model, version });
  const existed: DeployStarted = { deploymentId, workflowId, model, version, alreadyExisted: true };
  if (await runs.isRunningOrDone(workflowId)) {
    await store.delete(staged.key);
    return existed;
  }
  // The canary's revision is named after the version, known only now: check it before starting.
  let canary: DeployModelInput['canary'];
  try {
    canary = opts.canary
      ? await serving.canaryTarget(model, version, opts.canary, opts.replicas, opts.target)
      : undefined;
  } catch (err) {
    await store.delete(staged.key);
    throw err;
  }
  return startOnUpload({ defaults, store, runs }, opts, existed, canary, {
    objectKey: staged.key,
    sha256: staged.sha256,
    sizeBytes: staged.sizeBytes,
    fileName: opts.fileName,
  });
}

/**
 * Starts the run on the staged upload. When it does not start (a run of that id exists, or starting
 * failed) the upload is deleted: nothing half-written stays behind.
 */
async function startOnUpload(
  { defaults, store, runs }: Pick<DeployParts, 'defaults' | 'store' | 'runs'>,
  opts: DeployOptions,
  existed: DeployStarted,
  canary: DeployModelInput['canary'],
  upload: DeployModelInput['upload'],
): Promise<DeployStarted> {
  const { deploymentId, workflowId, model, version } = existed;
  const input = pipelineInput(defaults, opts, { deploymentId, model, version, upload, canary, access: opts.access });
  let started: { runId: string } | undefined;
  try {
    started = await runs.start(input);
  } finally {
    if (!started) await store.delete(upload.objectKey);
  }
  if (!started) return existed;
  return { deploymentId, workflowId, model, version, runId: started.runId, alreadyExisted: false };
}

/** The workflow's input from the caller's options and the deploy's defaults (lib/config.ts). */
function pipelineInput(
  defaults: FerryConfig['deploy'],
  opts: DeployOptions,
  known: Pick<DeployModelInput, 'deploymentId' | 'model' | 'version' | 'upload' | 'canary' | 'access'>,
): DeployModelInput {
  const mode = opts.mode ?? 'one-click';
  const { canary, access, ...rest } = known;
  return {
    ...rest,
    mode,
    approvalTimeoutMs: opts.approvalTimeoutMs ?? defaults.approvalTimeoutMs,
    replicas: opts.replicas ?? 1,
    monitor: { intervalMs: defaults.monitorIntervalMs, idleHibernateMs: defaults.idleHibernateMs, ...opts.monitor },
    optimize: {
      ...opts.optimize,
      techniques: opts.optimize?.techniques ?? (mode === 'one-click' ? ONE_CLICK_TECHNIQUES : undefined),
    },
    ...(canary ? { canary } : {}),
    ...(access ? { access } : {}),
    ...(opts.target ? { target: opts.target } : {}),
    ...(opts.cost ? { cost: opts.cost } : {}),
  };
}

export async function sha256OfFile(filePath: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(filePath)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
