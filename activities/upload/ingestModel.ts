/**
 * Stage 1, upload: validate the staged file, store it content-addressed, record it in Postgres.
 * A model that is not valid ONNX fails for good (retrying cannot fix it) and leaves nothing behind.
 * The file is streamed to a scratch folder and validated there, never held in memory whole; the scratch
 * folder holds only the model, so external data it points at is refused as not part of the upload.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { ApplicationFailure, heartbeat } from '@temporalio/activity';
import { ModelVersionConflictError } from '../../lib/db/repository';
import { ModelValidationError, type ValidatedModel, validateModelFile } from '../../lib/onnx/validate';
import { objectKeys } from '../../lib/store/objectStore';
import type { ModelSummary, StagedUpload } from '../../workflows/types';
import { activityDeps } from '../deps';
import { whileHeartbeating } from '../heartbeat';
import { withScratchDir } from '../scratch';

/** Largest model the upload stage accepts: protobuf's ceiling for one message. */
export const MAX_MODEL_BYTES = 2 * 1024 * 1024 * 1024 - 1;

export interface IngestResult {
  modelVersionId: number;
  sha256: string;
  objectKey: string;
  sizeBytes: number;
  summary: ModelSummary;
}

export async function ingestModel(input: {
  model: string;
  version: string;
  upload: StagedUpload;
}): Promise<IngestResult> {
  const { store, repo } = activityDeps();
  const { upload } = input;

  // A retry after a completed ingest finds the staged file gone and the version recorded: same answer.
  const known = await repo.findModelVersion(input.model, input.version);
  if (known && known.sha256 === upload.sha256 && !(await store.exists(upload.objectKey))) {
    return {
      modelVersionId: known.id,
      sha256: known.sha256,
      objectKey: known.objectKey,
      sizeBytes: known.sizeBytes,
      summary: known.analysis as ModelSummary,
    };
  }

  if (!(await store.exists(upload.objectKey))) {
    throw ApplicationFailure.nonRetryable(
      `the uploaded file ${upload.fileName} is not in the object store (key ${upload.objectKey}); upload it again`,
      'InvalidModel',
    );
  }
  if (upload.sizeBytes > MAX_MODEL_BYTES) {
    await store.delete(upload.objectKey);
    throw ApplicationFailure.nonRetryable(
      `${upload.fileName} is ${upload.sizeBytes} bytes, over the limit of ${MAX_MODEL_BYTES} bytes (too-large)`,
      'InvalidModel',
    );
  }

  const reject = async (message: string): Promise<never> => {
    await store.delete(upload.objectKey);
    throw ApplicationFailure.nonRetryable(message, 'InvalidModel');
  };

  const { sha256, sizeBytes, summary, dependencies } = await withScratchDir('ingest', async (dir) => {
    const file = path.join(dir, 'model.onnx');
    await whileHeartbeating({ step: 'downloading', bytes: upload.sizeBytes }, () =>
      store.getFile(upload.objectKey, file),
    );
    const sha256 = await whileHeartbeating({ step: 'hashing' }, () => sha256OfFile(file));
    if (sha256 !== upload.sha256) {
      await reject(
        `upload of ${upload.fileName} was corrupted in transit (sha256 ${sha256}, expected ${upload.sha256})`,
      );
    }

    heartbeat({ step: 'validating' });
    let validated: ValidatedModel;
    try {
      validated = validateModelFile(file, { maxBytes: MAX_MODEL_BYTES, modelDir: dir });
    } catch (err) {
      if (err instanceof ModelValidationError) {
        return reject(`${upload.fileName} is not a valid ONNX model (${err.code}): ${err.message}`);
      }
      throw err;
    }

    const objectKey = objectKeys.model(sha256);
    if (!(await store.exists(objectKey))) {
      await whileHeartbeating({ step: 'storing', bytes: validated.sizeBytes }, () => store.putFile(objectKey, file));
    }
    return {
      sha256,
      sizeBytes: validated.sizeBytes,
      summary: toModelSummary(validated.analysis),
      dependencies: validated.dependencies,
    };
  });
  const objectKey = objectKeys.model(sha256);

  let modelVersionId: number;
  try {
    modelVersionId = await repo.recordModelVersion({
      model: input.model,
      version: input.version,
      sha256,
      sizeBytes,
      objectKey,
      analysis: summary,
      dependencies,
    });
  } catch (err) {
    if (err instanceof ModelVersionConflictError) {
      await store.delete(upload.objectKey);
      throw ApplicationFailure.nonRetryable(err.message, 'ModelVersionConflict');
    }
    throw err;
  }
  await store.delete(upload.objectKey);
  return { modelVersionId, sha256, objectKey, sizeBytes, summary };
}

async function sha256OfFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file, { highWaterMark: 1 << 20 }), hash);
  return hash.digest('hex');
}

function toModelSummary(a: {
  parameterCount: number;
  weightBytes: number;
  nodeCount: number;
  opHistogram: Record<string, number>;
  inputs: ModelSummary['inputs'];
  outputs: ModelSummary['outputs'];
  opsets: ModelSummary['opsets'];
  dynamicDims: string[];
}): ModelSummary {
  return {
    parameterCount: a.parameterCount,
    weightBytes: a.weightBytes,
    nodeCount: a.nodeCount,
    opHistogram: a.opHistogram,
    inputs: a.inputs,
    outputs: a.outputs,
    opsets: a.opsets,
    dynamicDims: a.dynamicDims,
  };
}
