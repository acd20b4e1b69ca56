/** API keys (admin): made and shown once, listed without their secret, revoked. Each change is audited. */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { actorOf } from '../../../lib/auth/audit';
import type { ApiDeps } from '../app';
import { createKeyBody, errorResponses, keyRow } from '../schemas';

export function keyRoutes(app: FastifyInstance, { keys, audit }: ApiDeps): void {
  app.get(
    '/api/keys',
    {
      config: { scope: 'admin' },
      schema: {
        summary: 'List API keys (never their secret)',
        querystring: { type: 'object', properties: { project: { type: 'string', maxLength: 40 } } },
        response: { 200: { type: 'array', items: keyRow }, ...errorResponses },
      },
    },
    async (req: FastifyRequest<{ Querystring: { project?: string } }>) => keys.listKeys(req.query.project),
  );

  app.post(
    '/api/keys',
    {
      config: { scope: 'admin' },
      schema: {
        summary: 'Make a key for a project; the answer is the only time the key is shown',
        body: createKeyBody,
        response: {
          200: { type: 'object', required: ['key', 'row'], properties: { key: { type: 'string' }, row: keyRow } },
          ...errorResponses,
        },
      },
    },
    async (req: FastifyRequest<{ Body: { project: string; name?: string; scopes: string[] } }>) => {
      const principal = req.principal!;
      const made = await keys.createKey({
        project: req.body.project,
        name: req.body.name ?? `key-${Date.now().toString(36)}`,
        scopes: req.body.scopes,
        createdBy: `${principal.project}/${principal.keyName}`,
      });
      await audit.record({
        actor: actorOf(principal),
        action: 'key-created',
        detail: { project: made.row.project, name: made.row.name, prefix: made.row.prefix, scopes: made.row.scopes },
        source: req.ip,
      });
      return made;
    },
  );

  app.delete(
    '/api/keys/:ref',
    {
      config: { scope: 'admin' },
      schema: {
        summary: 'Revoke a key by id, project/name, or prefix',
        params: {
          type: 'object',
          required: ['ref'],
          properties: { ref: { type: 'string', minLength: 1, maxLength: 120 } },
        },
        response: { 200: keyRow, ...errorResponses },
      },
    },
    async (req: FastifyRequest<{ Params: { ref: string } }>) => {
      const row = await keys.revokeKey(req.params.ref);
      await audit.record({
        actor: actorOf(req.principal!),
        action: 'key-revoked',
        detail: { project: row.project, name: row.name, prefix: row.prefix },
        source: req.ip,
      });
      return row;
    },
  );
}
