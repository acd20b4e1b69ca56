/** The audit log, newest first: a key sees its own project's entries, an admin everyone's. */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { visibleProjects } from '../../../lib/auth/principal';
import { modelVersionRef } from '../../sdk';
import type { ApiDeps } from '../app';
import { auditEntry, errorResponses } from '../schemas';

export function auditRoutes(app: FastifyInstance, { audit, ferry, ownership }: ApiDeps): void {
  /**
   * model:version or a model name → its deployment id, as every other command takes them. A reference to no
   * known model (or to a run that is gone) is taken as written. Entries stay filtered by project, so
   * resolving another project's name shows nothing of it.
   */
  async function deploymentIdOf(ref: string): Promise<string> {
    // model:version names its deployment id whether or not its run is still in Temporal.
    const named = modelVersionRef(ref);
    if (named) return named.deploymentId;
    if (!(await ownership.candidatesFor(ref)).length) return ref;
    return ferry.resolve(ref).then(
      (d) => d.deploymentId,
      () => ref,
    );
  }

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
        deploymentId: req.query.deployment ? await deploymentIdOf(req.query.deployment) : undefined,
        limit: req.query.limit,
      }),
  );
}
