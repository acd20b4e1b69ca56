/**
 * JSON schemas of the control API's requests and answers (lib/gateway/controlApi.ts): fastify validates
 * requests against them and publishes them at /_ferry/openapi.json. They say the shape — fields, types,
 * which are required, no unknown ones; value rules (ranges, percentages adding up to 100, revisions a rule
 * names) are the spec parser's (deploymentSpec.ts, trafficPolicy.ts, autoscaler.ts), which also checks
 * state files and scaling changes merged over the current settings. Names come from lib/names.
 */
import { namePattern } from '../names';

const idParam = {
  type: 'string',
  pattern: namePattern('deployment'),
  description: 'deployment id; also its route `/d/{id}`',
} as const;

export const deploymentParams = {
  type: 'object',
  required: ['id'],
  properties: { id: idParam },
} as const;

export const replicaParams = {
  type: 'object',
  required: ['id', 'pid'],
  properties: {
    id: idParam,
    pid: { type: 'string', pattern: '^[1-9][0-9]{0,9}$', description: "the replica's pid, as the status lists it" },
  },
} as const;

/** Why a replica drains, and where its machine was (the zone to avoid for its replacement). */
export const replicaDrainRequest = {
  type: 'object',
  additionalProperties: false,
  properties: {
    reason: { type: 'string', maxLength: 200 },
    zone: { type: 'string', maxLength: 64 },
    instanceId: { type: 'string', maxLength: 64 },
  },
} as const;

export const errorBody = {
  type: 'object',
  required: ['error', 'code'],
  properties: { error: { type: 'string' }, code: { type: 'string' } },
} as const;

const imageRef = {
  type: 'object',
  required: ['registry', 'repository', 'reference'],
  additionalProperties: false,
  properties: {
    registry: { type: 'string', description: 'base URL, e.g. http://127.0.0.1:5000; one the gateway allows' },
    repository: { type: 'string' },
    reference: { type: 'string', description: 'a tag or (preferably) a digest' },
  },
} as const;

const modelDir = { type: 'string', description: 'absolute path of a directory with ferry-models.json' } as const;
const replicas = { type: 'integer', description: 'from 1 to 64' } as const;

export const trafficPolicy = {
  type: 'object',
  additionalProperties: false,
  properties: {
    split: {
      type: 'object',
      additionalProperties: { type: 'number' },
      description: 'revision → percent, adding up to 100',
    },
    rules: {
      type: 'array',
      items: {
        type: 'object',
        required: ['header', 'value', 'revision'],
        additionalProperties: false,
        properties: {
          header: { type: 'string' },
          value: { type: 'string' },
          revision: { type: 'string' },
        },
      },
    },
  },
} as const;

const autoscalingFields = {
  targetInFlight: { type: 'number' },
  minReplicas: { type: 'integer' },
  maxReplicas: { type: 'integer' },
  stableWindowMs: { type: 'number' },
  panicWindowMs: { type: 'number' },
  panicThreshold: { type: 'number' },
  scaleDownDelayMs: { type: 'number' },
} as const;

const autoscaling = {
  type: ['object', 'null'],
  additionalProperties: false,
  properties: autoscalingFields,
  description: 'concurrency autoscaling per revision; null: fixed replica counts',
} as const;

const scaleToZeroAfterMs = {
  type: ['number', 'null'],
  description: 'hibernate after this long without a request (≥ 100 ms); null: never on idle',
} as const;

export const deploymentAccess = {
  type: 'object',
  required: ['project'],
  additionalProperties: false,
  properties: {
    project: { type: 'string', pattern: namePattern('project'), description: 'the project it belongs to' },
    public: { type: 'boolean', default: false, description: 'inference without a key' },
  },
  description: 'who may reach it; left out: kept as it is (a new deployment: the caller’s project, not public)',
} as const;

const resources = {
  type: 'object',
  required: ['cpus', 'memoryMb'],
  additionalProperties: false,
  properties: {
    cpus: { type: 'number', description: 'CPUs’ worth of time, e.g. 0.5' },
    memoryMb: { type: 'integer', description: 'memory limit in MiB; over it the replica is OOM-killed and replaced' },
  },
  description: 'limits of each image replica (a container’s cgroup); left out: the gateway’s defaults',
} as const;

export const deploymentSpec = {
  type: 'object',
  required: ['model'],
  additionalProperties: false,
  properties: {
    id: { type: 'string', description: 'ignored: the id is the path’s' },
    model: { type: 'string' },
    replicas,
    image: imageRef,
    modelDir,
    revisions: {
      type: 'array',
      description: 'instead of image/modelDir: 1 to 8 revisions, each with its own replica set',
      items: {
        type: 'object',
        required: ['name'],
        additionalProperties: false,
        properties: { name: { type: 'string' }, image: imageRef, modelDir, replicas },
      },
    },
    traffic: trafficPolicy,
    autoscaling,
    scaleToZeroAfterMs,
    access: deploymentAccess,
    resources,
  },
} as const;

export const scalingChange = {
  type: 'object',
  additionalProperties: false,
  properties: { replicas, autoscaling, scaleToZeroAfterMs },
} as const;

/** PUT /floor: a lower bound on replicas for a while (the monitor's predictive floor, renewed each interval). */
export const replicaFloor = {
  type: 'object',
  additionalProperties: false,
  required: ['replicas', 'ttlMs'],
  properties: {
    replicas: {
      type: 'integer',
      minimum: 0,
      maximum: 64,
      description: 'at least this many replicas; 0 clears the floor',
    },
    ttlMs: {
      type: 'integer',
      minimum: 1000,
      maximum: 86_400_000,
      description: 'how long the floor holds unless renewed: one its setter stops renewing lapses',
    },
  },
} as const;

const open = { type: 'object', additionalProperties: true } as const;
const nullableString = { type: ['string', 'null'] } as const;
const nullableNumber = { type: ['number', 'null'] } as const;

/** A deployment's status (lib/targets/deploymentTarget.ts DeploymentStatus). */
export const deploymentStatus = {
  type: 'object',
  required: ['id', 'model', 'state', 'endpoint', 'replicas', 'revisions', 'traffic', 'spec', 'specVersion'],
  additionalProperties: true,
  properties: {
    id: { type: 'string' },
    model: { type: 'string' },
    state: { type: 'string', enum: ['running', 'hibernated', 'waking'] },
    endpoint: { type: 'string' },
    desiredReplicas: { type: 'integer' },
    replicas: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: true,
        properties: {
          pid: { type: 'integer' },
          port: { type: 'integer' },
          startedAt: { type: 'string' },
          ready: { type: 'boolean' },
          revision: { type: 'string' },
          inFlight: { type: 'integer' },
          runtime: { type: 'string', enum: ['youki', 'runc', 'process'], description: 'what runs it' },
        },
      },
    },
    image: open,
    modelDir: { type: 'string' },
    createdAt: { type: 'string' },
    runningSince: nullableString,
    lastRequestAt: nullableString,
    requestsServed: { type: 'integer' },
    coldStarts: { type: 'integer' },
    lastWakeMs: nullableNumber,
    restarts: { type: 'integer' },
    revisions: { type: 'array', items: open },
    traffic: open,
    autoscaling: { type: ['object', 'null'], additionalProperties: true },
    scaleToZeroAfterMs: nullableNumber,
    inFlight: { type: 'integer' },
    heldRequests: { type: 'integer' },
    scaleEvents: { type: 'array', items: open },
    events: { type: 'array', items: open, description: 'replica exits with their reasons (OOM kills), fallbacks' },
    resources: open,
    spec: open,
    specVersion: { type: 'string' },
  },
} as const;

export const deploymentList = {
  type: 'object',
  required: ['deployments'],
  properties: { deployments: { type: 'array', items: deploymentStatus } },
} as const;

export const replicaMetricsJson = {
  type: 'object',
  required: ['id', 'replicas'],
  properties: {
    id: { type: 'string' },
    replicas: {
      type: 'array',
      items: {
        type: 'object',
        required: ['pid', 'revision', 'metricsText'],
        properties: {
          pid: { type: 'integer' },
          port: { type: 'integer' },
          revision: { type: 'string' },
          metricsText: { type: 'string' },
          error: { type: 'string' },
        },
      },
    },
  },
} as const;

export const prometheusText = { type: 'string', description: 'Prometheus text exposition' } as const;

/** The error answers every guarded route may give. */
export const errorResponses = {
  400: errorBody,
  401: errorBody,
  403: errorBody,
  404: errorBody,
  429: errorBody,
} as const;
