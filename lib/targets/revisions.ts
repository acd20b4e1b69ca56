/**
 * Canary releases as changes of a deployment's spec: add a revision with a share of the traffic, or
 * keep one revision and remove the others (promote, roll back). Pure functions over what a target
 * reports (`DeploymentStatus`), shared by the pipeline's deploy stage and the SDK. Revisions that stay
 * keep their name and artifact, so applying the result restarts none of their replicas.
 */
import { DEFAULT_REVISION, MAX_REVISIONS } from '../gateway/deploymentSpec';
import type { DeploymentSpec, DeploymentStatus, ImageRef, RevisionSpec, TrafficRule } from './deploymentTarget';

/** The spec's revisions in the explicit form (the single `image`/`modelDir` form is one revision, "default"). */
export function revisionsOf(spec: DeploymentStatus['spec']): RevisionSpec[] {
  if (spec.revisions) return spec.revisions.map((r) => ({ ...r }));
  return [{ name: DEFAULT_REVISION, ...(spec.image ? { image: spec.image } : { modelDir: spec.modelDir }) }];
}

/**
 * The split after adding `name` with `percent`: every other revision's share is scaled by
 * (100 − percent) / 100 (rounded to 0.01, the remainder on the largest), so the ratio between them
 * stays and the sum is 100. Revisions without a share keep none.
 */
export function splitWithCanary(
  current: Record<string, number>,
  name: string,
  percent: number,
): Record<string, number> {
  const rest = 100 - percent;
  const scaled: Record<string, number> = {};
  for (const [revision, share] of Object.entries(current)) {
    if (revision === name) continue;
    const v = Math.round(share * rest) / 100;
    if (v > 0) scaled[revision] = v;
  }
  const names = Object.keys(scaled);
  if (rest > 0 && names.length) {
    const largest = names.reduce((a, b) => (scaled[b] > scaled[a] ? b : a));
    const sum = names.reduce((n, r) => n + scaled[r], 0);
    scaled[largest] = Math.round((scaled[largest] + rest - sum) * 100) / 100;
  }
  return percent > 0 ? { ...scaled, [name]: percent } : names.length ? scaled : { [name]: 100 };
}

/** Why a canary cannot be added (a conflict that retrying does not fix). */
export class RevisionConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RevisionConflictError';
  }
}

export function sameImageRef(a: ImageRef | undefined, b: ImageRef | undefined): boolean {
  return !!a && !!b && a.registry === b.registry && a.repository === b.repository && a.reference === b.reference;
}

/** What a canary revision serves: an image, or (local target) a model directory. */
export type CanaryArtifact = { image: ImageRef; modelDir?: undefined } | { modelDir: string; image?: undefined };

/**
 * The spec that adds revision `name` (serving the artifact) to the deployment with `percent` of the
 * split; header rules, scaling and the other revisions stay. Undefined when the deployment already has
 * that revision serving that artifact (applied before: nothing to do). Throws RevisionConflictError
 * when the name is taken by another artifact or the deployment has no room for another revision.
 */
export function specWithCanary(
  current: DeploymentStatus,
  canary: { name: string; percent: number } & CanaryArtifact,
): DeploymentSpec | undefined {
  const revisions = revisionsOf(current.spec);
  const taken = revisions.find((r) => r.name === canary.name);
  if (taken) {
    if (
      canary.image
        ? sameImageRef(taken.image, canary.image)
        : taken.modelDir !== undefined && taken.modelDir === canary.modelDir
    )
      return undefined;
    throw new RevisionConflictError(
      `deployment ${current.id} already has a revision "${canary.name}" serving something else; remove it first (ferry promote/rollback)`,
    );
  }
  if (revisions.length >= MAX_REVISIONS) {
    throw new RevisionConflictError(
      `deployment ${current.id} already has ${revisions.length} revisions (at most ${MAX_REVISIONS}): promote one or roll back first (${revisions.map((r) => r.name).join(', ')})`,
    );
  }
  return {
    id: current.id,
    ...scalingOf(current),
    revisions: [
      ...revisions,
      { name: canary.name, ...(canary.image ? { image: canary.image } : { modelDir: canary.modelDir }) },
    ],
    traffic: {
      split: splitWithCanary(current.traffic.split, canary.name, canary.percent),
      rules: current.traffic.rules,
    },
  };
}

/**
 * The spec that keeps revision `keep` alone, with all of the traffic: the others are removed (their
 * replicas drained), header rules naming them dropped. Undefined when `keep` is already alone.
 */
export function specKeepingOnly(current: DeploymentStatus, keep: string): DeploymentSpec | undefined {
  const revisions = revisionsOf(current.spec);
  const kept = revisions.find((r) => r.name === keep);
  if (!kept)
    throw new RevisionConflictError(
      `deployment ${current.id} has no revision "${keep}" (it has: ${revisions.map((r) => r.name).join(', ')})`,
    );
  if (revisions.length === 1) return undefined;
  return {
    id: current.id,
    ...scalingOf(current),
    revisions: [kept],
    traffic: { split: { [keep]: 100 }, rules: rulesTo(current.traffic.rules, keep) },
  };
}

/** The header rules that still route to `revision`. */
export function rulesTo(rules: TrafficRule[], revision: string): TrafficRule[] {
  return rules.filter((r) => r.revision === revision);
}

/** What a revision change keeps of the spec: scaling, and the replicas' limits (new ones would restart them). */
function scalingOf(
  current: DeploymentStatus,
): Pick<DeploymentSpec, 'model' | 'replicas' | 'autoscaling' | 'scaleToZeroAfterMs' | 'resources'> {
  const s = current.spec;
  return {
    model: s.model,
    ...(s.replicas !== undefined ? { replicas: s.replicas } : {}),
    ...(s.autoscaling ? { autoscaling: s.autoscaling } : {}),
    scaleToZeroAfterMs: s.scaleToZeroAfterMs ?? null,
    ...(s.resources ? { resources: s.resources } : {}),
  };
}
