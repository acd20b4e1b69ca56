/**
 * JSON schemas of the API's requests and answers, shared by the routes (fastify validates against them and
 * publishes them in /openapi.json) and by the typed HTTP client. Name patterns come from lib/names, so the
 * schema and the validator in code cannot drift apart.
 */

import { SCOPES } from '../../lib/auth/scopes';
import { namePattern } from '../../lib/names';

/** A deployment as the API names it: `model-version`, `model:version`, or a model name. */
export const deploymentRef = {
  type: 'string',
  minLength: 1,
  maxLength: 200,
  pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]*$',
  description: 'deployment id (`model-version`), `model:version`, or a model name (its latest deployment)',
} as const;

export const deploymentParams = {
  type: 'object',
  required: ['deployment'],
  properties: { deployment: deploymentRef },
} as const;

export const errorBody = {
  type: 'object',
  required: ['error'],
  properties: { error: { type: 'string' } },
} as const;

/** Answers too rich to restate here (the workflow's status, the gateway's view) are passed through whole. */
export const passThrough = { type: 'object', additionalProperties: true } as const;

export const errorResponses = {
  400: errorBody,
  401: errorBody,
  403: errorBody,
  404: errorBody,
  409: errorBody,
  413: errorBody,
  429: errorBody,
} as const;

export const deployQuery = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', pattern: namePattern('model'), description: 'model name' },
    version: { type: 'string', pattern: namePattern('version') },
    mode: { type: 'string', enum: ['one-click', 'review'], default: 'one-click' },
    replicas: { type: 'integer', minimum: 1, maximum: 64 },
    public: { type: 'boolean', default: false, description: 'serve inference without a key' },
    project: {
      type: 'string',
      pattern: namePattern('project'),
      description: "the project it belongs to; default the key's own (an admin key may name any)",
    },
    canary: { type: 'number', minimum: 0, maximum: 100 },
    canaryOf: deploymentRef,
    target: { type: 'string', enum: ['local', 'kubernetes'], default: 'local', description: 'where it runs' },
    namespace: {
      type: 'string',
      pattern: '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$',
      description: 'with target=kubernetes: the namespace',
    },
  },
} as const;

export const approveBody = {
  type: 'object',
  required: ['plan'],
  additionalProperties: false,
  properties: {
    plan: { type: 'string', minLength: 1, maxLength: 200 },
    option: { type: 'string', minLength: 1, maxLength: 200, description: "a deployment option of the plan's table" },
    approvedBy: { type: 'string', minLength: 1, maxLength: 100 },
  },
} as const;

export const promoteBody = {
  type: 'object',
  required: ['revision'],
  additionalProperties: false,
  properties: { revision: { type: 'string', pattern: namePattern('revision') } },
} as const;

export const trafficBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    split: { type: 'object', additionalProperties: { type: 'number', minimum: 0, maximum: 100 }, maxProperties: 8 },
    rules: {
      type: 'array',
      maxItems: 32,
      items: {
        type: 'object',
        required: ['header', 'value', 'revision'],
        additionalProperties: false,
        properties: {
          header: { type: 'string', minLength: 1, maxLength: 100 },
          value: { type: 'string', maxLength: 200 },
          revision: { type: 'string', pattern: namePattern('revision') },
        },
      },
    },
  },
} as const;

export const scalingBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    replicas: { type: 'integer', minimum: 0, maximum: 64 },
    autoscaling: { anyOf: [{ type: 'null' }, passThrough] },
    scaleToZeroAfterMs: { anyOf: [{ type: 'null' }, { type: 'integer', minimum: 0 }] },
  },
} as const;

export const keyRow = {
  type: 'object',
  required: ['id', 'project', 'name', 'prefix', 'scopes', 'createdAt'],
  properties: {
    id: { type: 'integer' },
    project: { type: 'string' },
    name: { type: 'string' },
    prefix: { type: 'string' },
    scopes: { type: 'array', items: { type: 'string', enum: [...SCOPES] } },
    createdAt: { type: 'string' },
    createdBy: { type: ['string', 'null'] },
    revokedAt: { type: ['string', 'null'] },
    lastUsedAt: { type: ['string', 'null'] },
  },
} as const;

export const createKeyBody = {
  type: 'object',
  required: ['project', 'scopes'],
  additionalProperties: false,
  properties: {
    project: { type: 'string', pattern: namePattern('project') },
    name: { type: 'string', pattern: namePattern('key name') },
    scopes: { type: 'array', minItems: 1, maxItems: SCOPES.length, items: { type: 'string', enum: [...SCOPES] } },
  },
} as const;

export const auditEntry = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    at: { type: 'string' },
    project: { type: 'string' },
    keyId: { type: ['integer', 'null'] },
    keyName: { type: 'string' },
    action: { type: 'string' },
    deploymentId: { type: ['string', 'null'] },
    detail: passThrough,
    source: { type: ['string', 'null'] },
  },
} as const;

export const chatopsBody = {
  type: 'object',
  required: ['deployment', 'plan', 'user'],
  additionalProperties: false,
  properties: {
    deployment: deploymentRef,
    plan: { type: 'string', minLength: 1, maxLength: 200 },
    user: { type: 'string', minLength: 1, maxLength: 100, description: 'the chat user who approves' },
  },
} as const;
