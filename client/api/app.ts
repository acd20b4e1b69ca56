/**
 * Ferry's HTTP API and dashboard on fastify: every route declares its scope and JSON schemas; fastify
 * validates requests against them and publishes them at /openapi.json (docs at /docs). Errors map to
 * statuses in httpErrors.ts only; access control is in access.ts only.
 */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import type { AuditLog } from '../../lib/auth/audit';
import type { KeyStore } from '../../lib/auth/keyStore';
import type { ModelOwnership } from '../../lib/auth/modelOwnership';
import type { Principal } from '../../lib/auth/principal';
import { KeyRateLimiter, type RateLimitSettings } from '../../lib/auth/rateLimit';
import type { FerryConfig } from '../../lib/config';
import type { FerryClient } from '../sdk';
import { installAccessControl, type RouteAccess } from './access';
import { HttpError, publicMessage, statusOf } from './httpErrors';
import { parseJsonBody } from './jsonBody';
import { API_CSP } from './pages';
import { analyticsRoutes } from './routes/analytics';
import { auditRoutes } from './routes/audit';
import { chatopsRoutes } from './routes/chatops';
import { dashboardRoutes } from './routes/dashboard';
import { deploymentRoutes } from './routes/deployments';
import { keyRoutes } from './routes/keys';
import { recommendationRoutes } from './routes/recommendations';

export interface RouteEntry {
  method: string;
  url: string;
  access: RouteAccess;
  hidden: boolean;
}

declare module 'fastify' {
  interface FastifyInstance {
    routeTable: RouteEntry[];
  }
}

export interface ApiDeps {
  config: FerryConfig;
  ferry: FerryClient;
  keys: KeyStore;
  audit: AuditLog;
  ownership: ModelOwnership;
  /** Auth off is allowed on loopback only (startApiServer refuses otherwise). */
  auth: boolean;
  verifyKey(key: string): Promise<Principal | undefined>;
  rateLimit: RateLimitSettings;
  chatopsSecret?: string;
  maxModelBytes: number;
  /** Origins whose pages may send state-changing requests: the dashboard's own. */
  allowedOrigins: string[];
  /** Everything the dashboard's deployment page shows, in one answer. */
  deploymentView(deploymentId: string): Promise<unknown>;
}

/** Limits that keep one client from exhausting the server (see startApiServer for the socket-level ones). */
export const API_LIMITS = {
  jsonBodyBytes: 1024 * 1024,
  maxParamLength: 256,
};

export async function buildApiApp(deps: ApiDeps, https?: { cert: Buffer; key: Buffer }): Promise<FastifyInstance> {
  const app = Fastify({
    ...(https ? { https } : {}),
    bodyLimit: API_LIMITS.jsonBodyBytes,
    routerOptions: { maxParamLength: API_LIMITS.maxParamLength },
    // The body of an upload is a stream the route reads itself; nothing else may leave it unread.
    return503OnClosing: true,
    logger: false,
    // Errors the router raises before any route (bad % escapes, over-long params) answer in the same shape.
    frameworkErrors: (err, _req, reply) => {
      const status = statusOf(err);
      (reply as FastifyReply).code(status).send({ error: publicMessage(err, status) });
    },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: false } },
  });

  // Every route, as registered: the access test walks this list, so a new route cannot miss its check.
  const routeTable: RouteEntry[] = [];
  app.addHook('onRoute', (r) => {
    // The docs page's own routes (@fastify/swagger-ui) are static assets: public.
    if (r.url.startsWith('/docs')) r.config = { ...(r.config ?? {}), public: true };
    for (const method of ([] as string[]).concat(r.method)) {
      if (method === 'HEAD') continue;
      routeTable.push({ method, url: r.url, access: (r.config ?? {}) as RouteAccess, hidden: Boolean(r.schema?.hide) });
    }
  });
  app.decorate('routeTable', routeTable);

  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body: string, done) => {
    try {
      done(null, parseJsonBody(body));
    } catch (err) {
      done(err as Error, undefined);
    }
  });
  // Model uploads: the route streams req.raw to the object store itself, bounded by maxModelBytes.
  app.addContentTypeParser('application/octet-stream', (_req, _payload, done) => done(null, undefined));

  app.setErrorHandler((err, req, reply) => {
    const status = statusOf(err);
    if (status >= 500) req.log.error(err);
    if (status >= 500) console.error(`ferry api: ${req.method} ${req.url}:`, err);
    if (err instanceof HttpError) reply.headers(err.headers);
    reply.code(status).send({ error: publicMessage(err, status) });
  });
  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send({ error: `no route ${req.method} ${req.url.split('?')[0]}` });
  });

  // Every answer is taken for its declared type only, and is never framed. One a browser opens as a page
  // (a JSON error that echoes a URL, say) may run nothing; routes that set their own policy (the
  // dashboard's, the docs page's) keep it.
  app.addHook('onSend', async (_req, reply, payload) => {
    reply.header('x-content-type-options', 'nosniff');
    if (!reply.hasHeader('content-security-policy')) reply.header('content-security-policy', API_CSP);
    return payload;
  });

  await app.register(swagger, {
    openapi: {
      info: { title: 'Ferry API', version: '1', description: 'Deploy, approve, operate and audit model deployments.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'a Ferry API key' } } },
      security: [{ bearer: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true });

  installAccessControl(app, {
    auth: deps.auth,
    verify: deps.verifyKey,
    limiter: new KeyRateLimiter(deps.rateLimit),
    allowedOrigins: deps.allowedOrigins,
  });

  app.get(
    '/healthz',
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
  app.get('/openapi.json', { config: { public: true }, schema: { hide: true } }, async () => app.swagger());

  deploymentRoutes(app, deps);
  analyticsRoutes(app, deps);
  recommendationRoutes(app, deps);
  keyRoutes(app, deps);
  auditRoutes(app, deps);
  chatopsRoutes(app, deps);
  await dashboardRoutes(app, deps);
  return app;
}
