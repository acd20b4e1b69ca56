/**
 * The chat-ops approval webhook, signed the way Slack signs requests (lib/auth/chatopsSignature.ts). It
 * needs no API key: the signature is the credential, and the approver is the chat user in the signed body.
 * The approval is the same validated Update the CLI sends, so an approval that is refused says so.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { checkChatopsSignature, SIGNATURE_HEADER, TIMESTAMP_HEADER } from '../../../lib/auth/chatopsSignature';
import type { ApiDeps } from '../app';
import { HttpError } from '../httpErrors';
import { parseJsonBody } from '../jsonBody';
import { chatopsBody, errorResponses, passThrough } from '../schemas';

export function chatopsRoutes(app: FastifyInstance, { ferry, ownership, audit, chatopsSecret }: ApiDeps): void {
  app.register(async (scope) => {
    // The signature covers the exact bytes sent: keep them, then parse.
    scope.removeContentTypeParser('application/json');
    scope.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body: Buffer, done) => {
      (req as FastifyRequest & { rawBody?: Buffer }).rawBody = body;
      try {
        done(null, parseJsonBody(body.toString('utf8')));
      } catch (err) {
        done(err as Error, undefined);
      }
    });
    scope.post(
      '/api/chatops/approve',
      {
        config: { public: true },
        bodyLimit: 16 * 1024,
        schema: {
          summary: 'Approve a plan from a chat tool (Slack-style signed request)',
          headers: {
            type: 'object',
            properties: { [SIGNATURE_HEADER]: { type: 'string' }, [TIMESTAMP_HEADER]: { type: 'string' } },
          },
          body: chatopsBody,
          response: { 200: passThrough, ...errorResponses, 503: errorResponses[400] },
        },
        // Verified before the body is validated against its schema, so an unsigned request learns nothing.
        preValidation: async (req) => {
          if (!chatopsSecret) throw new HttpError(503, 'chat-ops approval is not configured (FERRY_CHATOPS_SECRET)');
          const check = checkChatopsSignature({
            secret: chatopsSecret,
            signature: req.headers[SIGNATURE_HEADER] as string | undefined,
            timestamp: req.headers[TIMESTAMP_HEADER] as string | undefined,
            rawBody: (req as FastifyRequest & { rawBody?: Buffer }).rawBody ?? Buffer.alloc(0),
            nowSeconds: Math.floor(Date.now() / 1000),
          });
          if (!check.ok) throw new HttpError(401, `chat-ops request refused: ${check.reason}`);
        },
      },
      async (req: FastifyRequest<{ Body: { deployment: string; plan: string; user: string } }>) => {
        const { deployment, plan, user } = req.body;
        const resolved = await ferry.resolve(deployment);
        const project = (await ownership.projectOf(resolved.model)) ?? 'default';
        const chosen = await ferry.approve(resolved.workflowId, plan, user);
        await audit.record({
          actor: { project, keyName: `chatops:${user}` },
          action: 'approve',
          deploymentId: resolved.deploymentId,
          detail: { plan, approvedBy: user, via: 'chatops' },
          source: req.ip,
        });
        return { accepted: true, deployment: resolved.deploymentId, ...chosen };
      },
    );
  });
}
