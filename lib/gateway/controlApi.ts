/**
 * The gateway's control API under /_ferry (JSON), on fastify: every route declares the scope it needs
 * (gatewayAccess.ts) and JSON schemas for its params, query, body and answers (controlSchemas.ts), which
 * fastify validates against and publishes at /_ferry/openapi.json. Errors map to statuses and codes in
 * controlErrors.ts only. Inference (`/d/{id}/…`) does not come through here: gateway.ts serves it on its
 * hand-tuned path and hands everything else to this app.
 *
 *   GET    /_ferry/health                        → {"ok": true}                                   (public)
 *   GET    /_ferry/openapi.json                  → this API's OpenAPI 3 document                  (public)
 *   GET    /_ferry/metrics  (also GET /metrics)  → the gateway's own Prometheus metrics           (admin)
 *   GET    /_ferry/deployments                   → {"deployments": [status...]} of the caller's project (read)
 *   PUT    /_ferry/deployments/{id}              body: a DeploymentSpec without id (lib/targets/deploymentTarget.ts):
 *            {model, replicas, image | modelDir}  or  {model, replicas?, revisions: [{name, image | modelDir, replicas?}],
 *            traffic?: {split?: {rev: percent}, rules?: [{header, value, revision}]}, autoscaling?: {...},
 *            scaleToZeroAfterMs?, access?: {project, public?}} → status (200)   (deploy; operate to change one)
 *   PUT    /_ferry/deployments/{id}/traffic      body {split?, rules?} → status; no replica restarts      (operate)
 *          (both PUTs above: with `If-Match: "<specVersion>"` from a status, 409 if the spec changed since)
 *   PUT    /_ferry/deployments/{id}/scaling      body {replicas?, autoscaling?: {...} | null, scaleToZeroAfterMs?: ms | null}
 *            → status; fields left out keep their values, autoscaling is merged over the current settings;
 *            no replica restarts, a hibernated deployment stays hibernated                          (operate)
 *   GET    /_ferry/deployments/{id}              → status, or 404                                 (read)
 *   DELETE /_ferry/deployments/{id}              → 204, whether or not it existed (idempotent)    (operate)
 *   PUT    /_ferry/deployments/{id}/floor        body {replicas, ttlMs} → status: at least that many replicas of the
 *            revision with the most traffic until the lease ends (0 clears it); above 0 it wakes a hibernated
 *            deployment and holds off scale to zero (the monitor's predictive floor)               (operate)
 *   POST   /_ferry/deployments/{id}/hibernate    → status                                         (operate)
 *   POST   /_ferry/deployments/{id}/wake         → status once a replica is ready                 (operate)
 *   POST   /_ferry/deployments/{id}/replicas/{pid}/drain  body {reason?, zone?, instanceId?} → status: that replica
 *            is out of routing at once, a replacement starts, it stops when its in-flight requests are done
 *            (the replica agent asks on a spot interruption notice; asking again is no error)      (operate)
 *   GET    /_ferry/deployments/{id}/metrics      → Prometheus text of all live replicas (labels replica="<pid>", revision)
 *          ...?format=json                       → {"id", "replicas": [{pid, port, revision, metricsText}]}  (read)
 * Errors are {"error": "...", "code": "..."} (controlErrors.ts): 400 bad_request or registry_not_allowed,
 * 401 unauthorized, 403 forbidden, 404 deployment_not_found (also another project's) or no_route,
 * 405 method_not_allowed, 409 spec_changed, 413 payload_too_large, 415 unsupported_media_type,
 * 429 rate_limited, 500 internal (could not run it, with the log tail).
 */
import swagger from '@fastify/swagger';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { decideAccess, type Principal, visibleProjects } from '../auth/principal';
import { jsonDepth, MAX_JSON_DEPTH } from '../jsonDepth';
import type { DeploymentAccess } from '../targets/deploymentTarget';
import { ControlRequestError, errorAnswer, MethodNotAllowed, schemaError } from './controlErrors';
import {
  deploymentList,
  deploymentParams,
  deploymentSpec,
  deploymentStatus,
  errorResponses,
  prometheusText,
  replicaDrainRequest,
  replicaFloor,
  replicaMetricsJson,
  replicaParams,
  scalingChange,
  trafficPolicy,
} from './controlSchemas';
import type { AuthorizeApply, DeploymentManager } from './deploymentManager';
import { type GatewayAccess, type RouteAccess, refuseUnless } from './gatewayAccess';
import type { LocalDeployment } from './localDeployment';
import { fetchReplicaMetrics, mergeReplicaMetrics } from './replicaMetrics';

/** One route as registered: the access test walks this list, so a new route cannot miss its check. */
export interface ControlRoute {
  method: string;
  url: string;
  access: RouteAccess;
}

declare module 'fastify' {
  interface FastifyInstance {
    controlRoutes: ControlRoute[];
  }
}

export const CONTROL_LIMITS = {
  /** A spec is a few KB; nothing the control API takes comes near this. */
  bodyBytes: 1024 * 1024,
  maxParamLength: 256,
};

type IdRequest = FastifyRequest<{ Params: { id: string } }>;

export async function buildControlApp(manager: DeploymentManager, access: GatewayAccess): Promise<FastifyInstance> {
  const app = Fastify({
    bodyLimit: CONTROL_LIMITS.bodyBytes,
    routerOptions: { maxParamLength: CONTROL_LIMITS.maxParamLength, ignoreTrailingSlash: true },
    logger: false,
    schemaErrorFormatter: schemaError,
    // Errors the router raises before any route (bad % escapes, over-long params) answer in the same shape.
    frameworkErrors: (err, _req, reply) => send(reply as FastifyReply, err),
    // Types as given: a spec's "2" is not 2. Defaults are filled in (access.public).
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: true, allErrors: false } },
  });

  const controlRoutes: ControlRoute[] = [];
  app.addHook('onRoute', (r) => {
    for (const method of ([] as string[]).concat(r.method)) {
      if (method !== 'HEAD') controlRoutes.push({ method, url: r.url, access: (r.config ?? {}) as RouteAccess });
    }
  });
  app.decorate('controlRoutes', controlRoutes);

  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body: string, done) => {
    if (body.trim() === '') return done(null, undefined);
    if (jsonDepth(body) > MAX_JSON_DEPTH)
      return done(new ControlRequestError('bad_request', `JSON body nests deeper than ${MAX_JSON_DEPTH} levels`));
    try {
      done(null, JSON.parse(body));
    } catch (err) {
      done(new ControlRequestError('bad_request', `malformed JSON body: ${(err as Error).message}`));
    }
  });
  // Answers are the handlers' objects as they are: the response schemas document them (and the tests
  // check answers against them) without a serializer that would drop a field the schema does not name.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  app.setErrorHandler((err, _req, reply) => send(reply, err));
  app.setNotFoundHandler((req, reply) => send(reply, notFound(req.method, req.url.split('?')[0], controlRoutes)));

  await app.register(swagger, {
    openapi: {
      info: {
        title: 'Ferry gateway control API',
        version: '1',
        description: 'Deployments on the local target: specs, traffic, scaling, hibernation, metrics.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'a Ferry API key' } } },
      security: [{ bearer: [] }],
    },
  });
  access.install(app);

  /** The deployment a request names, if the caller may `scope` it; another project's is "no deployment". */
  const requireDeployment = (req: IdRequest, scope: 'read' | 'operate'): LocalDeployment => {
    const id = req.params.id;
    const d = manager.get(id);
    const none = () => new ControlRequestError('deployment_not_found', `no deployment "${id}"`);
    if (!d) throw none();
    refuseUnless(decideAccess(req.principal, scope, d.record.access.project), none);
    return d;
  };

  app.get(
    '/_ferry/health',
    {
      config: { public: true },
      schema: {
        summary: 'Liveness',
        security: [],
        response: { 200: { type: 'object', properties: { ok: { type: 'boolean' } } } },
      },
    },
    async () => ({ ok: true }),
  );
  app.get('/_ferry/openapi.json', { config: { public: true }, schema: { hide: true } }, async () => app.swagger());

  for (const url of ['/metrics', '/_ferry/metrics']) {
    app.get(
      url,
      {
        config: { scope: 'admin' },
        schema: {
          summary: "The gateway's own Prometheus metrics (every project's deployments)",
          response: { 200: prometheusText, ...errorResponses },
        },
      },
      async (_req, reply) => prometheus(reply, manager.metrics.render()),
    );
  }

  app.get(
    '/_ferry/deployments',
    {
      config: { scope: 'read' },
      schema: {
        summary: "Deployments of the caller's project (every project's for an admin key)",
        response: { 200: deploymentList, ...errorResponses },
      },
    },
    async (req) => {
      const visible = visibleProjects(req.principal!);
      const mine = (d: LocalDeployment) => visible === 'all' || visible.includes(d.record.access.project);
      return {
        deployments: manager
          .all()
          .filter(mine)
          .map((d) => d.status()),
      };
    },
  );

  app.get(
    '/_ferry/deployments/:id',
    {
      config: { scope: 'read' },
      schema: {
        summary: "A deployment's status: revisions, replicas, traffic, autoscaling, and the spec that re-creates it",
        params: deploymentParams,
        response: { 200: deploymentStatus, ...errorResponses },
      },
    },
    async (req: IdRequest) => requireDeployment(req, 'read').status(),
  );

  app.put(
    '/_ferry/deployments/:id',
    {
      config: { scope: 'deploy' },
      schema: {
        summary: 'Create or update a deployment from its spec; the same spec twice changes nothing',
        description:
          'A new deployment needs the deploy scope, a change of an existing one operate. With If-Match: "<specVersion>", ' +
          'refused with 409 when the spec changed since it was read.',
        params: deploymentParams,
        body: deploymentSpec,
        response: { 200: deploymentStatus, 409: errorResponses[400], ...errorResponses },
      },
    },
    async (req: IdRequest) =>
      manager.apply(req.params.id, req.body, ifMatchOf(req), authorizeApply(req.principal!, req.params.id)),
  );

  app.delete(
    '/_ferry/deployments/:id',
    {
      config: { scope: 'operate' },
      schema: {
        summary: "Stop the deployment's replicas and remove it; 204 also when there was none",
        params: deploymentParams,
        response: { 204: { type: 'null' }, ...errorResponses },
      },
    },
    async (req: IdRequest, reply) => {
      if (manager.get(req.params.id)) requireDeployment(req, 'operate');
      await manager.destroy(req.params.id);
      reply.code(204).send();
    },
  );

  const operation = (
    method: 'PUT' | 'POST',
    suffix: string,
    summary: string,
    body: object | undefined,
    run: (id: string, req: IdRequest) => Promise<unknown>,
  ) =>
    app.route({
      method,
      url: `/_ferry/deployments/:id/${suffix}`,
      config: { scope: 'operate' },
      schema: {
        summary,
        params: deploymentParams,
        ...(body ? { body } : {}),
        response: { 200: deploymentStatus, ...errorResponses },
      },
      handler: async (req) => run(requireDeployment(req as IdRequest, 'operate').id, req as IdRequest),
    });
  operation(
    'PUT',
    'traffic',
    'Change how requests are split between revisions (the body replaces the policy); no replica restarts',
    trafficPolicy,
    (id, req) => manager.setTraffic(id, req.body, ifMatchOf(req)),
  );
  operation(
    'PUT',
    'scaling',
    'Change replica counts, autoscaling or scale to zero; fields left out keep their values',
    scalingChange,
    (id, req) => manager.setScaling(id, req.body),
  );
  operation(
    'PUT',
    'floor',
    'At least N replicas until the lease ends (0 clears it); wakes a hibernated deployment',
    replicaFloor,
    (id, req) => manager.setFloor(id, req.body as { replicas: number; ttlMs: number }),
  );
  operation('POST', 'hibernate', 'Stop every replica; the next request wakes it', undefined, (id) =>
    manager.hibernate(id),
  );
  operation('POST', 'wake', 'Start the replicas; answers once one is ready', undefined, (id) => manager.wake(id));

  app.post(
    '/_ferry/deployments/:id/replicas/:pid/drain',
    {
      config: { scope: 'operate' },
      schema: {
        summary: 'Drain one replica (its machine is going away): out of routing now, replaced, stopped when idle',
        params: replicaParams,
        body: replicaDrainRequest,
        response: { 200: deploymentStatus, ...errorResponses },
      },
    },
    async (req: FastifyRequest<{ Params: { id: string; pid: string }; Body: { reason?: string } }>) =>
      manager.drainReplica(
        requireDeployment(req, 'operate').id,
        Number(req.params.pid),
        req.body.reason ?? 'asked to drain',
      ),
  );

  app.get(
    '/_ferry/deployments/:id/metrics',
    {
      config: { scope: 'read' },
      schema: {
        summary: "The live replicas' own metrics, merged (labels replica and revision)",
        params: deploymentParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { format: { type: 'string', enum: ['text', 'json'], default: 'text' } },
        },
        response: { 200: { anyOf: [prometheusText, replicaMetricsJson] }, ...errorResponses },
      },
    },
    async (req: FastifyRequest<{ Params: { id: string }; Querystring: { format: 'text' | 'json' } }>, reply) => {
      const d = requireDeployment(req, 'read');
      const replicas = await replicaMetrics(d);
      if (req.query.format === 'json') return { id: d.id, replicas };
      return prometheus(reply, mergeReplicaMetrics(replicas));
    },
  );

  await app.ready();
  return app;
}

/**
 * Who may PUT a spec: changing an existing deployment needs `operate` on its project (another project's
 * is "no deployment"); a new one `deploy`. A key puts deployments in its own project only; an admin key
 * (the pipeline's) names any in the spec's `access`.
 */
function authorizeApply(p: Principal, id: string): AuthorizeApply {
  return (current, asked) => {
    const none = () => new ControlRequestError('deployment_not_found', `no deployment "${id}"`);
    if (current) refuseUnless(decideAccess(p, 'operate', current.project), none);
    const access: DeploymentAccess = asked ?? current ?? { project: p.project, public: false };
    if (access.project !== current?.project && !decideAccess(p, 'deploy', access.project).ok) {
      refuseUnless(decideAccess(p, 'deploy')); // the scope first: 403 without it
      throw new ControlRequestError(
        'forbidden',
        `this key (${p.keyName}) belongs to project "${p.project}" and can only deploy into it`,
      );
    }
    return access;
  };
}

async function replicaMetrics(d: LocalDeployment) {
  return Promise.all(
    d.replicas
      .filter((r) => r.routable)
      .map(async (r) => {
        try {
          // On the replica's socket (or port): replicas the gateway starts listen on a Unix domain socket.
          return { pid: r.pid, port: r.port, revision: r.revision, metricsText: await fetchReplicaMetrics(r.address) };
        } catch (err) {
          return { pid: r.pid, port: r.port, revision: r.revision, metricsText: '', error: (err as Error).message };
        }
      }),
  );
}

function prometheus(reply: FastifyReply, text: string): FastifyReply {
  return reply.type('text/plain; version=0.0.4; charset=utf-8').send(text);
}

function send(reply: FastifyReply, err: unknown): void {
  const answer = errorAnswer(err);
  if (answer.headers) reply.headers(answer.headers);
  reply.code(answer.status).type('application/json').send(JSON.stringify(answer.body));
}

/** The If-Match header's version (quotes and a weak prefix dropped); undefined when absent or `*`. */
function ifMatchOf(req: FastifyRequest): string | undefined {
  const raw = req.headers['if-match'];
  if (typeof raw !== 'string' || raw.trim() === '*') return undefined;
  return raw
    .trim()
    .replace(/^W\//, '')
    .replace(/^"(.*)"$/, '$1');
}

/** No route for this method and path: 405 with Allow when the path has routes for other methods. */
function notFound(method: string, path: string, routes: readonly ControlRoute[]): ControlRequestError {
  const allowed = [...new Set(routes.filter((r) => routePattern(r.url).test(path)).map((r) => r.method))];
  if (allowed.length) {
    return new MethodNotAllowed(allowed, `${method} is not allowed on ${path} (use ${allowed.join(' or ')})`);
  }
  if (path === '/_ferry' || path.startsWith('/_ferry/'))
    return new ControlRequestError('no_route', `no control route ${method} ${path}`);
  return new ControlRequestError(
    'no_route',
    `no route for ${path}: deployments are served under /d/{id}/, the control API under /_ferry/`,
  );
}

const patterns = new Map<string, RegExp>();
function routePattern(url: string): RegExp {
  let p = patterns.get(url);
  if (!p) {
    const escaped = url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:\w+/g, '[^/]+');
    p = new RegExp(`^${escaped}/?$`);
    patterns.set(url, p);
  }
  return p;
}
