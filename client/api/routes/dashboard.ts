/**
 * The dashboard: the static page for each dashboard path, its bundled script and stylesheet (built once
 * at start, served from memory), and GET /api/session, which tells the page who its key is.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type DashboardAsset, dashboardBundle } from '../../dashboard/bundle';
import type { ApiDeps } from '../app';
import { DASHBOARD_HTML, DASHBOARD_SCRIPT, DASHBOARD_SECURITY_HEADERS, DASHBOARD_STYLE } from '../pages';
import { errorResponses } from '../schemas';

const sessionAnswer = {
  type: 'object',
  required: ['auth', 'keyName', 'project', 'scopes', 'temporalUiUrl'],
  properties: {
    auth: { type: 'boolean', description: 'false: the API asks for no key (loopback only)' },
    keyName: { type: 'string' },
    project: { type: 'string' },
    scopes: { type: 'array', items: { type: 'string' } },
    temporalUiUrl: { type: 'string' },
  },
} as const;

export async function dashboardRoutes(app: FastifyInstance, { config, auth }: ApiDeps): Promise<void> {
  const bundle = await dashboardBundle();
  const page = Buffer.from(DASHBOARD_HTML);

  const sendPage = async (_req: FastifyRequest, reply: FastifyReply) =>
    reply
      .headers(DASHBOARD_SECURITY_HEADERS)
      .header('content-type', 'text/html; charset=utf-8')
      .header('cache-control', 'no-cache')
      .send(page);
  const pageRoute = { config: { public: true }, schema: { hide: true } };
  app.get('/', pageRoute, sendPage);
  app.get('/audit', pageRoute, sendPage);
  // Any id: the page shows it as text and the API decides whether it names a deployment.
  app.get('/deployments/:deployment', pageRoute, sendPage);

  const sendAsset = (a: DashboardAsset) => async (req: FastifyRequest, reply: FastifyReply) => {
    reply.headers(DASHBOARD_SECURITY_HEADERS).header('etag', a.etag).header('cache-control', 'no-cache');
    if (req.headers['if-none-match'] === a.etag) return reply.code(304).send();
    return reply.header('content-type', a.contentType).send(a.body);
  };
  app.get(DASHBOARD_SCRIPT, pageRoute, sendAsset(bundle.js));
  app.get(DASHBOARD_STYLE, pageRoute, sendAsset(bundle.css));

  app.get(
    '/api/session',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'Who the caller’s key is (the dashboard’s sign-in checks a key with it)',
        response: { 200: sessionAnswer, ...errorResponses },
      },
    },
    async (req) => {
      const p = req.principal!;
      return { auth, keyName: p.keyName, project: p.project, scopes: p.scopes, temporalUiUrl: config.temporal.uiUrl };
    },
  );
}
