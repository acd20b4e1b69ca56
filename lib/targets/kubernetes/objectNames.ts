/**
 * Kubernetes names and labels for Ferry's objects. Ferry's ids allow upper case, '.' and '_' and up to
 * 128 characters; Kubernetes object names (DNS-1123 labels) and label values do not, so they are
 * derived: a readable prefix and a short hash of the exact id, so two ids never share an object. The
 * exact ids are kept in annotations.
 */
import { createHash } from 'node:crypto';

export const LABELS = {
  managedBy: 'app.kubernetes.io/managed-by',
  name: 'app.kubernetes.io/name',
  deployment: 'ferry.dev/deployment',
  revision: 'ferry.dev/revision',
} as const;

export const ANNOTATIONS = {
  deployment: 'ferry.dev/deployment-id',
  model: 'ferry.dev/model',
  version: 'ferry.dev/model-version',
  revision: 'ferry.dev/revision',
  /** On the Service: the Ferry spec as applied (JSON), from which status and later changes start. */
  spec: 'ferry.dev/spec',
  /** On the Service: when the deployment was first created (the status's createdAt). */
  createdAt: 'ferry.dev/created-at',
  /** On the Service: what the gateway saw of the requests (JSON RemoteActivity), written by the gateway. */
  activity: 'ferry.dev/activity',
} as const;

export const MANAGED_BY = 'ferry';
/** Server-side apply's field manager: the fields Ferry owns in the objects it applies. */
export const FIELD_MANAGER = 'ferry';

function shortHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 8);
}

/** Lower case, [a-z0-9-] only, no leading/trailing '-', at most `max` characters. */
function dnsPart(text: string, max: number): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .slice(0, max)
    .replace(/^-+|-+$/g, '');
}

/** A label value naming exactly one Ferry id (label values allow 63 of [A-Za-z0-9._-], alphanumeric at the ends). */
export function labelValue(id: string): string {
  if (/^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/.test(id)) return id;
  return `${dnsPart(id, 54) || 'x'}-${shortHash(id)}`;
}

/** The Service of a Ferry deployment (also the stem of its Deployments' names). */
export function serviceName(deploymentId: string): string {
  return `ferry-${dnsPart(deploymentId, 30) || 'x'}-${shortHash(deploymentId)}`;
}

/** The Kubernetes Deployment serving one revision of a Ferry deployment (at most 63 characters). */
export function revisionObjectName(deploymentId: string, revision: string): string {
  return `${serviceName(deploymentId)}-${dnsPart(revision, 12) || 'r'}-${shortHash(revision).slice(0, 4)}`;
}

/** Selects every object of one Ferry deployment. */
export function deploymentSelector(deploymentId: string): string {
  return `${LABELS.managedBy}=${MANAGED_BY},${LABELS.deployment}=${labelValue(deploymentId)}`;
}

/** Selects every object Ferry manages. */
export const MANAGED_SELECTOR = `${LABELS.managedBy}=${MANAGED_BY}`;
