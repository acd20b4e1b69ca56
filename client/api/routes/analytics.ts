/**
 * Live cost and anomalies: a deployment's cost report and anomalies (the dashboard's cost card and
 * `ferry cost` read the same report), and /metrics, the cost figures as Prometheus gauges.
 */
import type { FastifyInstance } from 'fastify';
import { HOURS_PER_MONTH } from '../../../lib/analytics/costAccounting';
import { costReport } from '../../../lib/analytics/costReport';
import { visibleProjects } from '../../../lib/auth/principal';
import { AnalyticsRepository } from '../../../lib/db/analyticsRepository';
import { getPool } from '../../../lib/db/pool';
import { FerryRepository } from '../../../lib/db/repository';
import type { ApiDeps } from '../app';
import { deploymentParams, errorResponses, passThrough } from '../schemas';
import { type DeploymentReq, deploymentAuthorizer } from './deployments';

const DAY_MS = 86_400_000;

export function analyticsRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const authorized = deploymentAuthorizer(deps);
  const pool = () => getPool(deps.config.postgres.url);

  app.get<{ Params: { deployment: string }; Querystring: { hours?: number } }>(
    '/api/deployments/:deployment/cost',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'Live cost (per 1k inferences, per day, projected per month, idle) with its intervals, and anomalies',
        params: deploymentParams,
        querystring: { type: 'object', properties: { hours: { type: 'number', minimum: 0.01, maximum: 720 } } },
        response: { 200: passThrough, ...errorResponses },
      },
    },
    async (req) => {
      const d = await authorized(req as DeploymentReq, 'read');
      const store = new AnalyticsRepository(pool());
      const windowMs = (req.query.hours ?? 24) * 3_600_000;
      const [report, anomalies] = await Promise.all([
        costReport(store, d.deploymentId, Date.now(), windowMs),
        store.anomalies(d.deploymentId, { limit: 50 }),
      ]);
      return { ...report, anomalies };
    },
  );

  app.get<{ Params: { deployment: string }; Querystring: { hours?: number } }>(
    '/api/deployments/:deployment/forecast',
    {
      config: { scope: 'read' },
      schema: {
        summary:
          'Predictive scaling: the forecast peak per minute and the floor at each collection, next to the actual requests per minute',
        params: deploymentParams,
        querystring: { type: 'object', properties: { hours: { type: 'number', minimum: 0.01, maximum: 72 } } },
        response: { 200: passThrough, ...errorResponses },
      },
    },
    async (req) => {
      const d = await authorized(req as DeploymentReq, 'read');
      const hours = req.query.hours ?? 6;
      const now = Date.now();
      const minutes = Math.max(1, Math.ceil(hours * 60));
      const [decisions, actual] = await Promise.all([
        new AnalyticsRepository(pool()).forecasts(d.deploymentId, now - minutes * 60_000),
        new FerryRepository(pool()).requestsPerMinute(d.deploymentId, minutes, new Date(now)),
      ]);
      const firstMinute = Math.floor(now / 60_000) * 60_000 - (minutes - 1) * 60_000;
      return {
        decisions,
        actual: actual.map((requests, i) => ({ t: firstMinute + i * 60_000, requestsPerMinute: requests })),
      };
    },
  );

  app.get(
    '/metrics',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'Prometheus metrics: each visible deployment’s live cost over the last 24 hours',
        response: { 200: { type: 'string' }, ...errorResponses },
      },
    },
    async (req, reply) => {
      const totals = await new AnalyticsRepository(pool()).windowTotals(Date.now() - DAY_MS);
      const visible = visibleProjects(req.principal!);
      let shown = totals;
      if (visible !== 'all') {
        const rows = await new FerryRepository(pool()).listDeployments();
        const modelOf = new Map(rows.map((r) => [r.id, r.model]));
        const owners = await deps.ownership.projectsOf(rows.map((r) => r.model));
        shown = totals.filter((t) => visible.includes(owners.get(modelOf.get(t.deploymentId) ?? '') ?? ''));
      }
      reply.type('text/plain; version=0.0.4');
      return costMetricsText(shown);
    },
  );
}

const escapeLabel = (v: string) => v.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));

/** The gauges, in the text exposition format. */
export function costMetricsText(
  totals: Array<{
    deploymentId: string;
    allocatedUsd: number;
    idleUsd: number;
    requests: number;
    spanSeconds: number;
    replicaSeconds: number;
  }>,
): string {
  const families: Array<[string, string, (t: (typeof totals)[number]) => number | null]> = [
    [
      'ferry_cost_per_1k_usd',
      'Cost per 1,000 inferences over the last 24 hours (USD)',
      (t) => (t.requests > 0 ? (t.allocatedUsd / t.requests) * 1000 : null),
    ],
    [
      'ferry_cost_per_day_usd',
      'Cost rate over the last 24 hours, per day (USD)',
      (t) => (t.spanSeconds > 0 ? (t.allocatedUsd / t.spanSeconds) * 86_400 : 0),
    ],
    [
      'ferry_cost_projected_month_usd',
      'The 24-hour cost rate projected over a month (USD)',
      (t) => (t.spanSeconds > 0 ? (t.allocatedUsd / t.spanSeconds) * 3600 * HOURS_PER_MONTH : 0),
    ],
    ['ferry_cost_idle_usd', 'Allocated cost that did no work over the last 24 hours (USD)', (t) => t.idleUsd],
    ['ferry_replica_seconds', 'Replica-seconds held over the last 24 hours', (t) => t.replicaSeconds],
  ];
  let out = '';
  for (const [name, help, value] of families) {
    out += `# HELP ${name} ${help}\n# TYPE ${name} gauge\n`;
    for (const t of totals) {
      const v = value(t);
      if (v !== null) out += `${name}{deployment="${escapeLabel(t.deploymentId)}"} ${v}\n`;
    }
  }
  return out;
}
