/**
 * Stage 3, container: a multi-platform OCI image (an index over linux/amd64 and linux/arm64 images:
 * runtime, server, model and configuration layers) built without a daemon, pushed to the registry by
 * digest, smoke-tested — this machine's platform run under the configured container runtime and asked
 * for one real inference, compared with onnxruntime's own output — and only then tagged and recorded
 * as good (lib/image/testedPush.ts). Builds are reproducible, so a retried or re-run build yields the
 * same digest.
 *
 * Failures retrying cannot fix are typed non-retryable: SmokeTestFailed (the image does not start,
 * answer, or answer right; the message carries its server's log tail) and ContainerRuntimeUnavailable
 * (the configured runtime is not installed, naming the install script). A registry that refuses or
 * disappears stays retryable.
 */
import * as path from 'node:path';
import { ApplicationFailure, heartbeat } from '@temporalio/activity';
import { ImageRunnerUnavailableError, imageRunnerFor } from '../../lib/image/imageServer';
import { buildModelImageIndex } from '../../lib/image/modelImage';
import { SmokeTestError, type SmokeTestRecord } from '../../lib/image/smokeTest';
import { pushSmokeTestedImage } from '../../lib/image/testedPush';
import type { ImageRecord } from '../../workflows/types';
import { activityDeps } from '../deps';
import { whileHeartbeating } from '../heartbeat';
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
}): Promise<{ imageId: number; image: ImageRecord; pushedBytes: number; smokeTest: SmokeTestRecord }> {
  const { store, repo, config } = activityDeps();
  return withScratchDir('image', async (dir) => {
    // First, so a runtime that is not there fails the stage before anything is built or pushed.
    const runner = await imageRunnerFor(config.replicas.runtime).catch((err: unknown) => {
      if (err instanceof ImageRunnerUnavailableError) {
        throw ApplicationFailure.nonRetryable(
          `the image cannot be smoke-tested: ${err.message}`,
          'ContainerRuntimeUnavailable',
        );
      }
      throw err;
    });
    const onnxPath = path.join(dir, 'model.onnx');
    heartbeat({ step: 'downloading model' });
    await store.getFile(input.modelObject.objectKey, onnxPath);
    heartbeat({ step: 'building layers' });
    const sessionOptions = input.modelObject.sessionOptions as Record<string, unknown> | undefined;
    const image = await buildModelImageIndex({
      models: [
        { name: input.model, version: input.version, onnxPath, sessionOptions, batching: input.modelObject.batching },
      ],
      labels: { 'ai.ferry.plan': input.plan, 'ai.ferry.model.sha256': input.modelObject.sha256 },
      blobDir: path.join(dir, 'blobs'), // model layers are pushed, then dropped with the scratch dir
    });
    const repository = imageRepositoryFor(input.model);
    const tag = `${input.version}-${input.plan}`;
    // The timer's heartbeats send this object as it is at the time: the step, and the smoke test's own step.
    const progress: { step: string; detail?: string } = { step: 'pushing' };
    const beat = (next: Partial<typeof progress>) => heartbeat(Object.assign(progress, next));
    const { pushed, smokeTest } = await whileHeartbeating(progress, () =>
      pushSmokeTestedImage(image, {
        registryUrl: config.registry.url,
        repository,
        tag,
        smokeTest: {
          model: { name: input.model, onnxPath, sessionOptions },
          runner,
          workDir: path.join(dir, 'smoke-test'),
          cacheDir: config.cacheDir,
          onStep: (detail) => beat({ detail }),
        },
        onStep: (step) => beat({ step, detail: undefined }),
      }),
    ).catch((err: unknown) => {
      if (err instanceof SmokeTestError) {
        throw ApplicationFailure.create({
          type: 'SmokeTestFailed',
          message: err.message,
          nonRetryable: true,
          details: [{ runtime: err.runtime, logTail: err.logTail }],
        });
      }
      throw err;
    });
    const imageId = await repo.recordImage({
      modelVersionId: input.modelVersionId,
      plan: input.plan,
      repository,
      tag,
      digest: pushed.digest,
      sizeBytes: pushed.sizeBytes,
      smokeTest,
    });
    return {
      imageId,
      image: { registry: config.registry.url, repository, tag, digest: pushed.digest, sizeBytes: pushed.sizeBytes },
      pushedBytes: pushed.pushedBytes,
      smokeTest,
    };
  });
}
