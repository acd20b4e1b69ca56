/**
 * Who may use the gateway: the control API's routes each need one scope (lib/auth/scopes.ts), inference
 * on a deployment needs `infer` on its project unless it is public, and another project's deployment is a
 * 404 that looks like no deployment at all (lib/auth/principal.ts decides; this applies it).
 *
 * Keys are checked through a CachedKeyVerifier: a key seen in the last few seconds costs a sha256 and a
 * map lookup, synchronously, so inference does no database round trip and no extra promise per request.
 * A key not in the cache is verified against PostgreSQL once; unknown keys are rate limited by address,
 * so guessing keys costs the guesser, not the database.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { bearerKey } from '../auth/apiKey';
import { CachedKeyVerifier } from '../auth/keyStore';
import { type AccessDecision, decideAccess, LOCAL_OPERATOR, type Principal } from '../auth/principal';
import { KeyRateLimiter, type RateLimitSettings } from '../auth/rateLimit';
import type { RouteAccess } from '../auth/routeAccess';
import type { FerryConfig } from '../config';
import { ControlRequestError } from './controlErrors';

export interface GatewayAccessOptions {
  /** Check keys (FERRY_AUTH). Off: every caller is the local operator; allowed on loopback only. */
  auth: boolean;
  /** The principal of a key, or undefined for an unknown or revoked one (lib/auth/keyStore.ts KeyStore.verify). */
  verifyKey(key: string): Promise<Principal | undefined>;
  /** Per key, on the control API (config access.rateLimit). Default 50/s, bursts of 100. */
  rateLimit?: RateLimitSettings;
  /** How long a verified (or refused) key is trusted before it is checked again. Default 5 s. */
  cacheTtlMs?: number;
}

export type { RouteAccess };

export const AUTH_CHALLENGE = { 'www-authenticate': 'Bearer realm="ferry"' };

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export class GatewayAccess {
  readonly auth: boolean;
  private readonly verifier: CachedKeyVerifier;
  private readonly limiter: KeyRateLimiter;

  constructor(opts: GatewayAccessOptions | undefined) {
    this.auth = opts?.auth ?? false;
    const verifyKey = opts?.verifyKey ?? (async () => undefined);
    this.verifier = new CachedKeyVerifier(verifyKey, opts?.cacheTtlMs ?? 5_000);
    this.limiter = new KeyRateLimiter(opts?.rateLimit ?? { perSecond: 50, burst: 100 });
  }

  /**
   * The caller named by an `Authorization: Bearer` header: synchronous when the key is cached (the
   * inference hot path), else a promise. Undefined without a key or with an unknown one.
   */
  principalOf(
    authorization: string | undefined,
    address: string | undefined,
  ): Principal | undefined | Promise<Principal | undefined> {
    const key = bearerKey(authorization);
    if (key === undefined) return undefined;
    const cached = this.verifier.peek(key, Date.now());
    if (cached !== 'miss') return cached;
    return this.verifyUncached(key, address);
  }

  private async verifyUncached(key: string, address: string | undefined): Promise<Principal | undefined> {
    const guess = this.limiter.take(`ip:${address ?? ''}`, Date.now());
    const principal = await this.verifier.verify(key);
    if (!principal && !guess.allowed) {
      throw new ControlRequestError('rate_limited', 'too many requests with invalid keys; retry later', {
        'retry-after': String(guess.retryAfterSeconds),
      });
    }
    return principal;
  }

  /** May the caller send inference requests to a deployment of `project`? (Public deployments are not asked.) */
  inference(principal: Principal | undefined, project: string): AccessDecision {
    return decideAccess(principal, 'infer', project);
  }

  /**
   * Checks every control route before its handler: the Bearer key, the route's scope and the per-key rate
   * limit; refuses state-changing requests a web page sent (no page of another origin may drive the
   * gateway, not even with auth off). Handlers then check the deployment's project (`requireDeployment`).
   */
  install(app: FastifyInstance): void {
    app.decorateRequest('principal', undefined);
    app.addHook('onRequest', async (req: FastifyRequest) => {
      if (!SAFE_METHODS.has(req.method) && req.headers.origin !== undefined) {
        throw new ControlRequestError('forbidden', `cross-origin request from ${req.headers.origin} refused`);
      }
      const route = req.routeOptions.config as RouteAccess | undefined;
      if (!route || route.public || route.scope === undefined) return; // no such route, or public
      if (!this.auth) {
        req.principal = LOCAL_OPERATOR;
        return;
      }
      const principal = await this.principalOf(req.headers.authorization, req.ip);
      refuseUnless(decideAccess(principal, route.scope));
      const rate = this.limiter.take(`key:${principal!.keyId}`, Date.now());
      if (!rate.allowed) {
        throw new ControlRequestError('rate_limited', 'rate limit exceeded for this key; retry later', {
          'retry-after': String(rate.retryAfterSeconds),
        });
      }
      req.principal = principal;
    });
  }
}

/** Throws the control API's error for a refusal; `notFound` is what a 404 says (the same as for nothing there). */
export function refuseUnless(decision: AccessDecision, notFound?: () => ControlRequestError): void {
  if (decision.ok) return;
  if (decision.status === 401) throw new ControlRequestError('unauthorized', decision.message, AUTH_CHALLENGE);
  if (decision.status === 403) throw new ControlRequestError('forbidden', decision.message);
  throw notFound?.() ?? new ControlRequestError('deployment_not_found', decision.message);
}

/**
 * The gateway's access settings from the config: with FERRY_AUTH on, keys are verified against the
 * keys in PostgreSQL (lib/auth/keyStore.ts) and rate limited per config; off, no key is asked for.
 */
export async function gatewayAccessOptions(config: FerryConfig): Promise<GatewayAccessOptions> {
  if (!config.access.auth) return { auth: false, verifyKey: async () => undefined };
  const [{ getPool }, { KeyStore }] = await Promise.all([import('../db/pool'), import('../auth/keyStore')]);
  const keys = new KeyStore(getPool(config.postgres.url));
  return { auth: true, verifyKey: (key) => keys.verify(key), rateLimit: config.access.rateLimit };
}
