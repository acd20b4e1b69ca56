/** The audit log, newest first: a key sees its own project's entries, an admin everyone's. */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { visibleProjects } from '../../../lib/auth/principal';
import type { ApiDeps } from '../app';
import { auditEntry, errorResponses } from '../schemas';

export function auditRoutes(app: FastifyInstance, { audit }: ApiDeps): void {
  app.get(
    '/api/audit',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'Who changed what, when, from where',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            deployment: { type: 'string', maxLength: 200 },
            limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
          },
        },
        response: { 200: { type: 'array', items: auditEntry }, ...errorResponses },
      },
    },
    async (req: FastifyRequest<{ Querystring: { deployment?: string; limit: number } }>) =>
      audit.list({
        projects: visibleProjects(req.principal!),
        deploymentId: req.query.deployment,
        limit: req.query.limit,
      }),
  );
}
