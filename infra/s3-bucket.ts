/**
 * Used by infra/stack.sh: `ping` sends a signed ListBuckets (the store answers and accepts Ferry's keys);
 * `check` sends a signed HeadBucket for Ferry's bucket; `ensure` creates the bucket if it is missing, then
 * checks it. Endpoint, bucket and keys come from
 * lib/config.ts, so this exercises exactly what Ferry's own S3 client will send.
 *
 *   node --import tsx infra/s3-bucket.ts ping|check|ensure
 */
import {
  CreateBucketCommand,
  HeadBucketCommand,
  ListBucketsCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { loadConfig } from '../lib/config';

function isMissingBucket(err: unknown): boolean {
  if (!(err instanceof S3ServiceException)) return false;
  return err.$metadata.httpStatusCode === 404 || err.name === 'NotFound' || err.name === 'NoSuchBucket';
}

function describe(err: unknown): string {
  if (err instanceof S3ServiceException) return `${err.name} (HTTP ${err.$metadata.httpStatusCode}): ${err.message}`;
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

async function main(mode: string): Promise<void> {
  const { s3 } = loadConfig();
  const client = new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    maxAttempts: 1,
  });
  try {
    if (mode === 'ping') {
      const { Buckets = [] } = await client.send(new ListBucketsCommand({}));
      console.log(`S3 at ${s3.endpoint} answers; ${Buckets.length} bucket(s) visible to ${s3.accessKeyId}`);
      return;
    }
    let created = false;
    try {
      await client.send(new HeadBucketCommand({ Bucket: s3.bucket }));
    } catch (err) {
      if (mode !== 'ensure' || !isMissingBucket(err)) throw err;
      await client.send(new CreateBucketCommand({ Bucket: s3.bucket }));
      await client.send(new HeadBucketCommand({ Bucket: s3.bucket }));
      created = true;
    }
    console.log(
      `bucket ${s3.bucket} ${created ? 'created' : 'present'} at ${s3.endpoint} (signed as ${s3.accessKeyId})`,
    );
  } finally {
    client.destroy();
  }
}

const mode = process.argv[2] ?? 'check';
if (mode !== 'ping' && mode !== 'check' && mode !== 'ensure') {
  console.error('usage: s3-bucket.ts ping|check|ensure');
  process.exit(2);
}
main(mode).catch((err: unknown) => {
  console.error(`S3 ${mode} failed: ${describe(err)}`);
  process.exit(1);
});
