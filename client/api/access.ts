/**
 * Who may call which route. Each route declares, in its `config`, the one scope it needs (or that it is
 * public); this hook checks the Bearer key, the scope and the per-key rate limit before any handler runs.
 * Handlers that touch one object then call `requireAccessTo` with that object's project, which answers 404
 * for another project's object. State-changing requests from another origin are refused: credentials only
 * ever come from the Authorization header, and this closes the door for anonymous routes too.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { bearerKey } from '../../lib/auth/apiKey';
import { decideAccess, LOCAL_OPERATOR, type Principal } from '../../lib/auth/principal';
import type { KeyRateLimiter } from '../../lib/auth/rateLimit';
import type { RouteAccess } from '../../lib/auth/routeAccess';
import type { Scope } from '../../lib/auth/scopes';
import { HttpError } from './httpErrors';

export type { RouteAccess };

export { LOCAL_OPERATOR };

export interface AccessSettings {
  auth: boolean;
  verify(key: string): Promise<Principal | undefined>;
  limiter: KeyRateLimiter;
  /** Origins allowed to send state-changing requests (the dashboard's own). */
  allowedOrigins: string[];
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function installAccessControl(app: FastifyInstance, settings: AccessSettings): void {
  app.decorateRequest('principal', undefined);
  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    const origin = req.headers.origin;
    if (!SAFE_METHODS.has(req.method) && origin !== undefined && !settings.allowedOrigins.includes(origin)) {
      throw new HttpError(403, `cross-origin request from ${origin} refused`);
    }
    const route = req.routeOptions.config as RouteAccess | undefined;
    if (!route || route.public || route.scope === undefined) return; // 404s and public routes
    const principal = settings.auth ? await principalOf(req, settings) : LOCAL_OPERATOR;
    const decision = decideAccess(principal, route.scope);
    if (!decision.ok) {
      if (decision.status === 401) reply.header('www-authenticate', 'Bearer realm="ferry"');
      throw new HttpError(decision.status, decision.message);
    }
    const rate = settings.limiter.take(`key:${principal!.keyId}`, Date.now());
    if (!rate.allowed) {
      throw new HttpError(429, 'rate limit exceeded for this key; retry later', {
        'retry-after': String(rate.retryAfterSeconds),
      });
    }
    req.principal = principal;
  });
}

async function principalOf(req: FastifyRequest, settings: AccessSettings): Promise<Principal | undefined> {
  const key = bearerKey(req.headers.authorization);
  if (key === undefined) return undefined;
  // Unknown keys are rate limited by address, so guessing keys costs the guesser, not the database.
  const guess = settings.limiter.take(`ip:${req.ip}`, Date.now());
  const principal = await settings.verify(key);
  if (!principal && !guess.allowed) {
    throw new HttpError(429, 'too many requests with invalid keys', { 'retry-after': String(guess.retryAfterSeconds) });
  }
  return principal;
}

/** 404 for another project's object (or an object of no project), 403 without the scope. */
export function requireAccessTo(
  req: FastifyRequest,
  scope: Scope,
  objectProject: string | undefined,
  what: string,
): Principal {
  const principal = req.principal;
  const decision = decideAccess(principal, scope, objectProject ?? '\u0000none');
  if (!decision.ok) throw new HttpError(decision.status, decision.status === 404 ? `no ${what}` : decision.message);
  return principal!;
}
