/**
 * Stage 1, upload: validate the staged file, store it content-addressed, record it in Postgres.
 * A model that is not valid ONNX fails for good (retrying cannot fix it) and leaves nothing behind.
 */
import { createHash } from 'node:crypto';
import { ApplicationFailure, heartbeat } from '@temporalio/activity';
import { ModelVersionConflictError } from '../../lib/db/repository';
import { ModelValidationError, validateModel } from '../../lib/onnx/validate';
import { objectKeys } from '../../lib/store/objectStore';
import type { ModelSummary, StagedUpload } from '../../workflows/types';
import { activityDeps } from '../deps';
import { whileHeartbeating } from '../heartbeat';

/** Largest model the upload stage reads into memory for validation. */
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
  const bytes = await whileHeartbeating({ step: 'downloading', bytes: upload.sizeBytes }, () =>
    store.getBytes(upload.objectKey, MAX_MODEL_BYTES),
  );

  const reject = async (message: string): Promise<never> => {
    await store.delete(upload.objectKey);
    throw ApplicationFailure.nonRetryable(message, 'InvalidModel');
  };

  const sha256 = createHash('sha256').update(bytes).digest('hex');
  if (sha256 !== upload.sha256) {
    await reject(`upload of ${upload.fileName} was corrupted in transit (sha256 ${sha256}, expected ${upload.sha256})`);
  }

  heartbeat({ step: 'validating' });
  let summary: ModelSummary;
  try {
    summary = toModelSummary(validateModel(bytes).analysis);
  } catch (err) {
    if (err instanceof ModelValidationError) {
      return reject(`${upload.fileName} is not a valid ONNX model (${err.code}): ${err.message}`);
    }
    throw err;
  }

  const objectKey = objectKeys.model(sha256);
  if (!(await store.exists(objectKey))) {
    await whileHeartbeating({ step: 'storing', bytes: bytes.length }, () => store.putBytes(objectKey, bytes));
  }

  let modelVersionId: number;
  try {
    modelVersionId = await repo.recordModelVersion({
      model: input.model,
      version: input.version,
      sha256,
      sizeBytes: bytes.length,
      objectKey,
      analysis: summary,
    });
  } catch (err) {
    if (err instanceof ModelVersionConflictError) {
      await store.delete(upload.objectKey);
      throw ApplicationFailure.nonRetryable(err.message, 'ModelVersionConflict');
    }
    throw err;
  }
  await store.delete(upload.objectKey);
  return { modelVersionId, sha256, objectKey, sizeBytes: bytes.length, summary };
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
