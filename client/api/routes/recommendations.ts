/**
 * Recommendations (lib/analytics/recommendations.ts) for a deployment, and applying one: it is worked out
 * again from the evidence at that moment and applied only if it still holds, through the same scaling
 * change as `ferry scale`, audited like it. One applied before, or whose advice no longer holds, is
 * refused with the reason; nothing is ever applied without this request.
 */
import type { FastifyInstance } from 'fastify';
import { deploymentOfRecommendation, type Recommendation, recommend } from '../../../lib/analytics/recommendations';
import { classifyUsage } from '../../../lib/analytics/usagePattern';
import { actorOf } from '../../../lib/auth/audit';
import { AnalyticsRepository } from '../../../lib/db/analyticsRepository';
import { getPool } from '../../../lib/db/pool';
import { FerryRepository } from '../../../lib/db/repository';
import { DeploymentNotFoundError } from '../../../lib/targets/deploymentTarget';
import type { ApiDeps } from '../app';
import { HttpError } from '../httpErrors';
import { deploymentParams, errorResponses, passThrough } from '../schemas';
import { type DeploymentReq, deploymentAuthorizer } from './deployments';

/** The evidence window: the last week the monitor recorded. */
const WINDOW_MINUTES = 7 * 1440;

export function recommendationRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const authorized = deploymentAuthorizer(deps);
  const pool = () => getPool(deps.config.postgres.url);

  async function recommendationsFor(deploymentId: string): Promise<Recommendation[]> {
    const now = Date.now();
    const [intervals, counts, serving] = await Promise.all([
      new AnalyticsRepository(pool()).costs(deploymentId, now - WINDOW_MINUTES * 60_000),
      new FerryRepository(pool()).requestsPerMinute(deploymentId, WINDOW_MINUTES, new Date(now)),
      // Not served any more (undeployed, or gone from its target): nothing to change, nothing to advise.
      deps.ferry.gatewayStatus(deploymentId).catch((err: unknown) => {
        if (err instanceof DeploymentNotFoundError) return undefined;
        throw err;
      }),
    ]);
    if (!serving) return [];
    // Minutes before the first priced interval are before the deployment: not idle time.
    const firstMinute = Math.floor(now / 60_000) * 60_000 - (WINDOW_MINUTES - 1) * 60_000;
    const skip = intervals.length ? Math.max(0, Math.ceil((intervals[0]!.from - firstMinute) / 60_000)) : counts.length;
    const usage = classifyUsage({ start: firstMinute + skip * 60_000, stepMs: 60_000, counts: counts.slice(skip) });
    return recommend({
      deploymentId,
      intervals,
      usage,
      scaling: {
        replicas: serving.desiredReplicas,
        autoscaling: serving.autoscaling,
        scaleToZeroAfterMs: serving.scaleToZeroAfterMs,
      },
    });
  }

  app.get<{ Params: { deployment: string } }>(
    '/api/deployments/:deployment/recommendations',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'Recommendations with their expected monthly saving and evidence, from the monitor’s record',
        params: deploymentParams,
        response: { 200: passThrough, ...errorResponses },
      },
    },
    async (req) => {
      const d = await authorized(req as DeploymentReq, 'read');
      return { deploymentId: d.deploymentId, recommendations: await recommendationsFor(d.deploymentId) };
    },
  );

  app.post<{ Params: { id: string } }>(
    '/api/recommendations/:id/apply',
    {
      config: { scope: 'operate' },
      schema: {
        summary:
          'Apply a recommendation, if it still holds (409 with the reason when applied before or no longer valid)',
        params: {
          type: 'object',
          required: ['id'],
          properties: { id: { type: 'string', minLength: 1, maxLength: 300 } },
        },
        response: { 200: passThrough, ...errorResponses },
      },
    },
    async (req) => {
      const id = req.params.id;
      const ref = deploymentOfRecommendation(id);
      if (!ref) throw new HttpError(404, `no recommendation "${id}" (ids look like <deployment>.<kind>.<hash>)`);
      // The deployment the id names decides access, as on the deployment's own routes.
      Object.assign(req.params, { deployment: ref });
      const d = await authorized(req as unknown as DeploymentReq, 'operate');
      const applied = (await deps.audit.list({ projects: 'all', deploymentId: d.deploymentId, limit: 500 })).find(
        (e) => e.action === 'recommendation-applied' && e.detail.id === id,
      );
      if (applied) {
        throw new HttpError(
          409,
          `recommendation "${id}" was applied already, at ${applied.at} by ${applied.keyName ?? applied.project}`,
        );
      }
      const current = await recommendationsFor(d.deploymentId);
      const rec = current.find((r) => r.id === id);
      if (!rec) {
        throw new HttpError(
          409,
          `recommendation "${id}" no longer holds: the deployment's scaling or its record changed (current: ${current.map((r) => r.id).join(', ') || 'none'})`,
        );
      }
      const status = await deps.ferry.setScaling(d.deploymentId, rec.change);
      await deps.audit.record({
        actor: actorOf(d.principal),
        action: 'recommendation-applied',
        deploymentId: d.deploymentId,
        detail: { id, kind: rec.kind, change: rec.change, monthlySavingUsd: rec.monthlySavingUsd },
        source: req.ip,
      });
      return { applied: rec, status };
    },
  );
}
