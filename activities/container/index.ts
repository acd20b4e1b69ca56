/**
 * Stage 3, container: a multi-platform OCI image (an index over linux/amd64 and linux/arm64 images:
 * runtime, server, model and configuration layers) built without a daemon and pushed to the registry.
 * Builds are reproducible, so a retried or re-run build yields the same digest.
 */
import * as path from 'node:path';
import { heartbeat } from '@temporalio/activity';
import { buildModelImageIndex, pushImage } from '../../lib/image/modelImage';
import type { ImageRecord } from '../../workflows/types';
import { activityDeps } from '../deps';
import type { ModelObject } from '../optimize';
import { withScratchDir } from '../scratch';

export function imageRepositoryFor(model: string): string {
  return `ferry/${model}`;
}

export async function buildAndPushModelImage(input: {
  modelVersionId: number;
  model: string;
  version: string;
  plan: string;
  modelObject: ModelObject;
}): Promise<{ imageId: number; image: ImageRecord; pushedBytes: number }> {
  const { store, repo, config } = activityDeps();
  return withScratchDir('image', async (dir) => {
    const onnxPath = path.join(dir, 'model.onnx');
    heartbeat({ step: 'downloading model' });
    await store.getFile(input.modelObject.objectKey, onnxPath);
    heartbeat({ step: 'building layers' });
    const image = await buildModelImageIndex({
      models: [
        {
          name: input.model,
          version: input.version,
          onnxPath,
          sessionOptions: input.modelObject.sessionOptions as Record<string, unknown> | undefined,
          batching: input.modelObject.batching,
        },
      ],
      labels: { 'ai.ferry.plan': input.plan, 'ai.ferry.model.sha256': input.modelObject.sha256 },
      blobDir: path.join(dir, 'blobs'), // model layers are pushed, then dropped with the scratch dir
    });
    heartbeat({ step: 'pushing' });
    const repository = imageRepositoryFor(input.model);
    const tag = `${input.version}-${input.plan}`;
    const pushed = await pushImage(image, config.registry.url, repository, tag);
    const imageId = await repo.recordImage({
      modelVersionId: input.modelVersionId,
      plan: input.plan,
      repository,
      tag,
      digest: pushed.digest,
      sizeBytes: pushed.sizeBytes,
    });
    return {
      imageId,
      image: { registry: config.registry.url, repository, tag, digest: pushed.digest, sizeBytes: pushed.sizeBytes },
      pushedBytes: pushed.pushedBytes,
    };
  });
}
