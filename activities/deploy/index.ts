/**
 * Stage 4, deploy: hand the image to the target (the `local` gateway by default) and wait until its
 * replicas answer. Applying the same spec twice is a no-op, so a retry never doubles the replicas.
 */
import type { ImageRecord, MonitorSettings } from '../../workflows/types';
import { activityDeps } from '../deps';
import { whileHeartbeating } from '../heartbeat';

export async function deployToLocalTarget(input: {
  deploymentId: string;
  modelVersionId: number;
  imageId: number;
  image: ImageRecord;
  model: string;
  replicas: number;
  monitor: MonitorSettings;
}): Promise<{ endpoint: string; inferUrl: string; replicas: number }> {
  const { target, repo } = activityDeps();
  const status = await whileHeartbeating({ step: 'starting replicas' }, () =>
    target.apply({
      id: input.deploymentId,
      model: input.model,
      replicas: input.replicas,
      image: { registry: input.image.registry, repository: input.image.repository, reference: input.image.digest },
    }),
  );
  const inferUrl = `${status.endpoint}/v2/models/${input.model}/infer`;
  await repo.upsertDeployment({
    id: input.deploymentId,
    modelVersionId: input.modelVersionId,
    imageId: input.imageId,
    target: 'local',
    endpoint: status.endpoint,
    state: status.state,
    replicas: status.replicas.length,
    config: { replicas: input.replicas, monitor: input.monitor, inferUrl },
  });
  await repo.recordEvent(input.deploymentId, 'deployed', { image: input.image.digest, replicas: status.replicas.length });
  return { endpoint: status.endpoint, inferUrl, replicas: status.replicas.length };
}
