/**
 * The batch runner's settings: the one place it reads its environment (it runs inside batch images,
 * bundled without the rest of Ferry's configuration, as the server reads runtime/server/settings.ts).
 *
 *   FERRY_MODEL_DIR          directory holding ferry-models.json (required; the image sets it)
 *   FERRY_BATCH_INPUT        folder or s3://bucket/prefix of request files (required)
 *   FERRY_BATCH_OUTPUT       folder or s3://bucket/prefix for the responses (required)
 *   FERRY_BATCH_CONCURRENCY  requests in flight (default 4)
 *   FERRY_BATCH_MODEL        name or name:version, when the image serves more than one model
 *   FERRY_S3_ENDPOINT, FERRY_S3_REGION, FERRY_S3_ACCESS_KEY, FERRY_S3_SECRET_KEY
 *                            the object store, for s3:// locations (the names lib/config.ts reads)
 */
import { type LocationSpec, parseLocation, type S3Settings } from './batchLocation';
import { DEFAULT_CONCURRENCY } from './batchRunner';

export interface BatchSettings {
  modelDir: string;
  input: LocationSpec;
  output: LocationSpec;
  concurrency: number;
  model: string | undefined;
  s3: Omit<S3Settings, 'bucket'> | undefined;
}

function required(env: NodeJS.ProcessEnv, name: string, what: string): string {
  const value = env[name];
  if (!value) throw new Error(`${name} is not set: ${what}`);
  return value;
}

export function readBatchSettings(env: NodeJS.ProcessEnv = process.env): BatchSettings {
  const modelDir = required(env, 'FERRY_MODEL_DIR', 'point it at a directory with ferry-models.json');
  const input = parseLocation(required(env, 'FERRY_BATCH_INPUT', 'a folder or s3://bucket/prefix of request files'));
  const output = parseLocation(required(env, 'FERRY_BATCH_OUTPUT', 'a folder or s3://bucket/prefix for responses'));
  const rawConcurrency = env.FERRY_BATCH_CONCURRENCY || String(DEFAULT_CONCURRENCY);
  const concurrency = Number(rawConcurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 1024) {
    throw new Error(`FERRY_BATCH_CONCURRENCY must be an integer from 1 to 1024, got "${rawConcurrency}"`);
  }
  const wantsS3 = input.kind === 'bucket' || output.kind === 'bucket';
  const s3 = wantsS3
    ? {
        endpoint: required(env, 'FERRY_S3_ENDPOINT', 'the object store to read s3:// locations from'),
        region: env.FERRY_S3_REGION || 'us-east-1',
        accessKeyId: required(env, 'FERRY_S3_ACCESS_KEY', 'the object store access key'),
        secretAccessKey: required(env, 'FERRY_S3_SECRET_KEY', 'the object store secret key'),
      }
    : undefined;
  return { modelDir, input, output, concurrency, model: env.FERRY_BATCH_MODEL || undefined, s3 };
}
