/**
 * What an HTTP route needs to be called — one scope, or nothing — declared in its fastify route config.
 * Shared by Ferry's API (client/api/access.ts) and the gateway's control API (lib/gateway/gatewayAccess.ts).
 */
import type { Principal } from './principal';
import type { Scope } from './scopes';

export interface RouteAccess {
  /** The scope the route needs; omitted only on public routes. */
  scope?: Scope;
  /** Needs no key (health, the OpenAPI document, the dashboard's static pages, signed chat-ops). */
  public?: boolean;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
  interface FastifyContextConfig extends RouteAccess {}
}
