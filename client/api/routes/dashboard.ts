/** The dashboard's pages: static HTML that signs in with an API key and renders from the JSON API. */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ApiDeps } from '../app';
import { dashboardPage, deploymentPage } from '../pages';
import { deploymentParams } from '../schemas';

export function dashboardRoutes(app: FastifyInstance, { config }: ApiDeps): void {
  const html = { 'content-type': 'text/html; charset=utf-8' };
  app.get('/', { config: { public: true }, schema: { hide: true } }, async (_req, reply) =>
    reply.headers(html).send(dashboardPage(config)),
  );
  app.get(
    '/deployments/:deployment',
    { config: { public: true }, schema: { hide: true, params: deploymentParams } },
    async (req: FastifyRequest<{ Params: { deployment: string } }>, reply) =>
      reply.headers(html).send(deploymentPage(config, req.params.deployment)),
  );
}
