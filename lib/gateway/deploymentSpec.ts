/**
 * The body of PUT /_ferry/deployments/{id}, checked and normalized. The single-revision form
 * `{model, replicas, image | modelDir}` (the original spec) is one revision named "default".
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { assertValidName, InvalidNameError } from '../names';
import type { DeploymentAccess, ImageRef, ReplicaResources } from '../targets/deploymentTarget';
import { type AutoscalingSettings, MAX_REPLICAS, normalizeAutoscaling } from './autoscaler';
import { ControlRequestError, SpecError } from './controlErrors';
import { type NormalizedTrafficPolicy, normalizeTrafficPolicy } from './trafficPolicy';

export const DEFAULT_REVISION = 'default';
const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const REVISION_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
export const MAX_REVISIONS = 8;
const MIN_IDLE_MS = 100;

export interface ParsedRevision {
  name: string;
  image?: ImageRef;
  modelDir?: string;
  replicas?: number;
}

export interface ParsedSpec {
  model: string;
  replicas: number;
  revisions: ParsedRevision[];
  traffic: NormalizedTrafficPolicy;
  autoscaling: AutoscalingSettings | null;
  scaleToZeroAfterMs: number | null;
  resources: ReplicaResources | null;
  /** Absent: the deployment keeps its own (a new one gets the caller's project, keyed). */
  access?: DeploymentAccess;
}

export interface SpecRules {
  /**
   * Registries images may come from (base URLs, compared by origin): the gateway pulls from nothing else,
   * so a spec cannot make it fetch an arbitrary URL. Undefined: any (callers that check elsewhere).
   */
  registries?: readonly string[];
}

export function checkDeploymentId(id: string): void {
  if (!ID_PATTERN.test(id)) {
    throw new SpecError(
      `deployment id "${id}" must be 1-128 letters, digits, ".", "_" or "-" (not starting with "." "_" or "-")`,
    );
  }
}

const KNOWN_FIELDS = [
  'model',
  'replicas',
  'image',
  'modelDir',
  'revisions',
  'traffic',
  'autoscaling',
  'scaleToZeroAfterMs',
  'access',
  'resources',
];

/** Below this a replica's container cannot even start its init (lib/container/bundleSpec.ts MIN_MEMORY_BYTES). */
const MIN_MEMORY_MB = 8;
const MIN_CPUS = 0.01;

export function parseDeploymentSpec(id: string, body: unknown, rules: SpecRules = {}): ParsedSpec {
  checkDeploymentId(id);
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new SpecError('body must be a JSON object');
  const b = body as Record<string, unknown>;
  for (const key of Object.keys(b)) {
    if (!KNOWN_FIELDS.includes(key) && key !== 'id')
      throw new SpecError(`unknown field "${key}" (known: ${KNOWN_FIELDS.join(', ')})`);
  }
  if (typeof b.model !== 'string' || b.model === '') throw new SpecError('"model" must be a non-empty string');

  let autoscaling: AutoscalingSettings | null = null;
  if (b.autoscaling !== undefined && b.autoscaling !== null) {
    const replicasHint = Number.isInteger(b.replicas) ? (b.replicas as number) : undefined;
    autoscaling = normalizeAutoscaling(b.autoscaling, replicasHint);
  }
  const replicas =
    b.replicas === undefined && autoscaling ? autoscaling.minReplicas : checkReplicas(b.replicas, '"replicas"');

  let revisions: ParsedRevision[];
  if (b.revisions !== undefined) {
    if (b.image !== undefined || b.modelDir !== undefined) {
      throw new SpecError('give either "revisions" or one "image"/"modelDir", not both');
    }
    if (!Array.isArray(b.revisions) || b.revisions.length === 0 || b.revisions.length > MAX_REVISIONS) {
      throw new SpecError(
        `"revisions" must be an array of 1 to ${MAX_REVISIONS} revisions {name, image | modelDir, replicas?}`,
      );
    }
    const seen = new Set<string>();
    revisions = b.revisions.map((raw, i) => {
      const where = `"revisions[${i}]"`;
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
        throw new SpecError(`${where} must be an object`);
      const r = raw as Record<string, unknown>;
      if (typeof r.name !== 'string' || !REVISION_PATTERN.test(r.name)) {
        throw new SpecError(
          `${where}.name must be 1-63 letters, digits, ".", "_" or "-" (not starting with "." "_" or "-")`,
        );
      }
      if (seen.has(r.name)) throw new SpecError(`revision "${r.name}" is listed twice`);
      seen.add(r.name);
      for (const key of Object.keys(r)) {
        if (!['name', 'image', 'modelDir', 'replicas'].includes(key))
          throw new SpecError(`${where} has an unknown field "${key}"`);
      }
      const revision: ParsedRevision = { name: r.name, ...parseArtifact(r, `${where}.`, rules) };
      if (r.replicas !== undefined) revision.replicas = checkReplicas(r.replicas, `${where}.replicas`);
      return revision;
    });
  } else {
    revisions = [{ name: DEFAULT_REVISION, ...parseArtifact(b, '', rules) }];
  }

  const traffic = normalizeTrafficPolicy(
    b.traffic,
    revisions.map((r) => r.name),
  );

  const scaleToZeroAfterMs = parseIdleMs(b.scaleToZeroAfterMs);
  const resources = parseResources(b.resources);
  const spec: ParsedSpec = { model: b.model, replicas, revisions, traffic, autoscaling, scaleToZeroAfterMs, resources };
  if (b.access !== undefined) spec.access = parseAccess(b.access);
  return spec;
}

function parseAccess(v: unknown): DeploymentAccess {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new SpecError('"access" must be an object {project, public?}');
  const a = v as Record<string, unknown>;
  for (const key of Object.keys(a)) {
    if (key !== 'project' && key !== 'public') throw new SpecError(`"access" has an unknown field "${key}"`);
  }
  try {
    assertValidName('project', a.project);
  } catch (err) {
    if (err instanceof InvalidNameError) throw new SpecError(`"access.project": ${err.message}`);
    throw err;
  }
  if (a.public !== undefined && typeof a.public !== 'boolean') throw new SpecError('"access.public" must be a boolean');
  return { project: a.project as string, public: a.public === true };
}

/** Refuses an image from a registry the gateway does not pull from, naming it (SSRF: no arbitrary URLs). */
export function checkRegistry(registry: string, allowed: readonly string[]): void {
  const origin = originOf(registry);
  if (origin !== undefined && allowed.some((a) => originOf(a) === origin)) return;
  throw new ControlRequestError(
    'registry_not_allowed',
    `registry "${registry}" is not one this gateway pulls from (allowed: ${allowed.join(', ') || 'none'}; set FERRY_ALLOWED_REGISTRIES)`,
  );
}

function originOf(url: string): string | undefined {
  try {
    const u = new URL(url);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.origin : undefined;
  } catch {
    return undefined;
  }
}

function parseResources(v: unknown): ReplicaResources | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'object' || Array.isArray(v)) throw new SpecError('"resources" must be an object {cpus, memoryMb}');
  const r = v as Record<string, unknown>;
  for (const key of Object.keys(r)) {
    if (key !== 'cpus' && key !== 'memoryMb') throw new SpecError(`"resources" has an unknown field "${key}"`);
  }
  if (typeof r.cpus !== 'number' || !Number.isFinite(r.cpus) || r.cpus < MIN_CPUS) {
    throw new SpecError(`"resources.cpus" must be a number of CPUs ≥ ${MIN_CPUS}, e.g. 0.5`);
  }
  if (!Number.isInteger(r.memoryMb) || (r.memoryMb as number) < MIN_MEMORY_MB) {
    throw new SpecError(`"resources.memoryMb" must be a whole number of MiB ≥ ${MIN_MEMORY_MB}`);
  }
  return { cpus: r.cpus, memoryMb: r.memoryMb as number };
}

export type ScalingFields = Pick<ParsedSpec, 'replicas' | 'autoscaling' | 'scaleToZeroAfterMs'>;
const SCALING_FIELDS = ['replicas', 'autoscaling', 'scaleToZeroAfterMs'];

/**
 * The scaling fields after a ScalingChange (the body of PUT …/{id}/scaling, lib/targets/deploymentTarget.ts):
 * fields left out keep their values, and `autoscaling` is merged over the current settings, so a
 * client can change one knob without restating (or knowing) the others.
 */
export function applyScalingChange(current: ScalingFields, body: unknown): ScalingFields {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new SpecError('body must be a JSON object');
  const b = body as Record<string, unknown>;
  for (const key of Object.keys(b)) {
    if (!SCALING_FIELDS.includes(key))
      throw new SpecError(`unknown field "${key}" (a scaling change has: ${SCALING_FIELDS.join(', ')})`);
  }
  if (Object.keys(b).length === 0)
    throw new SpecError(`nothing to change: give ${SCALING_FIELDS.join(', ')} or several`);
  const replicas = b.replicas === undefined ? current.replicas : checkReplicas(b.replicas, '"replicas"');
  let autoscaling = current.autoscaling;
  if (b.autoscaling === null) autoscaling = null;
  else if (b.autoscaling !== undefined) {
    if (typeof b.autoscaling !== 'object' || Array.isArray(b.autoscaling)) {
      throw new SpecError('"autoscaling" must be an object, or null for fixed replica counts');
    }
    // Undefined fields (possible from JavaScript callers; JSON has none) keep the current value too.
    const given = Object.entries(b.autoscaling as object).filter(([, v]) => v !== undefined);
    const merged = { ...current.autoscaling, ...Object.fromEntries(given) };
    autoscaling = normalizeAutoscaling(merged, replicas);
  }
  const scaleToZeroAfterMs =
    b.scaleToZeroAfterMs === undefined ? current.scaleToZeroAfterMs : parseIdleMs(b.scaleToZeroAfterMs);
  return { replicas, autoscaling, scaleToZeroAfterMs };
}

function parseIdleMs(v: unknown): number | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < MIN_IDLE_MS) {
    throw new SpecError(
      `"scaleToZeroAfterMs" must be a number of milliseconds ≥ ${MIN_IDLE_MS}, or null to never scale to zero on idle`,
    );
  }
  return v;
}

function checkReplicas(v: unknown, what: string): number {
  if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > MAX_REPLICAS) {
    throw new SpecError(`${what} must be an integer from 1 to ${MAX_REPLICAS} (hibernate to scale to zero)`);
  }
  return v as number;
}

function parseArtifact(
  b: Record<string, unknown>,
  prefix: string,
  rules: SpecRules,
): { image?: ImageRef; modelDir?: string } {
  if ((b.image === undefined) === (b.modelDir === undefined)) {
    throw new SpecError(
      `give exactly one of "${prefix}image" ({registry, repository, reference}) or "${prefix}modelDir"`,
    );
  }
  if (b.image !== undefined) {
    const img = b.image as Record<string, unknown>;
    for (const key of ['registry', 'repository', 'reference']) {
      if (typeof img?.[key] !== 'string' || img[key] === '')
        throw new SpecError(`"${prefix}image.${key}" must be a non-empty string`);
    }
    if (rules.registries) checkRegistry(img.registry as string, rules.registries);
    return {
      image: {
        registry: img.registry as string,
        repository: img.repository as string,
        reference: img.reference as string,
      },
    };
  }
  if (typeof b.modelDir !== 'string' || !path.isAbsolute(b.modelDir))
    throw new SpecError(`"${prefix}modelDir" must be an absolute path`);
  if (!existsSync(path.join(b.modelDir, 'ferry-models.json'))) {
    throw new SpecError(`"${prefix}modelDir" ${b.modelDir} has no ferry-models.json`);
  }
  return { modelDir: path.resolve(b.modelDir) };
}

export function sameImage(a: ImageRef | undefined, b: ImageRef | undefined): boolean {
  return !!a && !!b && a.registry === b.registry && a.repository === b.repository && a.reference === b.reference;
}
