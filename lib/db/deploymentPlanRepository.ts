/**
 * The deploy stage's plans and decision in PostgreSQL (infra/migrations/008_deployment_plans.sql). Writes
 * are idempotent: planning again overwrites a run's plans, deciding again the same decision.
 */
import type { Pool } from 'pg';
import type { DeploymentPlan, PlanOption } from '../cost/engine/types';

export interface DeploymentDecisionRow {
  deploymentId: string;
  optimizationPlan: string;
  option: string;
  target: string | null;
  source: string;
  approvedBy: string | null;
  decidedAt: string;
  /** The whole plan the option was chosen from. */
  plan: DeploymentPlan;
}

export class DeploymentPlanRepository {
  constructor(private readonly pool: Pool) {}

  async recordPlans(
    deploymentId: string,
    modelVersionId: number,
    plans: Array<{ optimizationPlan: string; plan: DeploymentPlan }>,
  ): Promise<void> {
    for (const p of plans) {
      await this.pool.query(
        `INSERT INTO deployment_plans(deployment_id, optimization_plan, model_version_id, plan, engine_choice, catalog_hash)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (deployment_id, optimization_plan) DO UPDATE SET plan = EXCLUDED.plan,
           engine_choice = EXCLUDED.engine_choice, catalog_hash = EXCLUDED.catalog_hash, planned_at = now()`,
        [
          deploymentId,
          p.optimizationPlan,
          modelVersionId,
          JSON.stringify(p.plan),
          p.plan.chosen ?? null,
          p.plan.catalog.contentHash,
        ],
      );
    }
  }

  /** Marks the option the run deploys on its plan's row; false when that plan was never recorded. */
  async recordDecision(d: Omit<DeploymentDecisionRow, 'decidedAt' | 'plan'>): Promise<boolean> {
    const res = await this.pool.query(
      `UPDATE deployment_plans SET chosen_option = $3, target = $4, source = $5, approved_by = $6,
         decided_at = COALESCE(decided_at, now())
       WHERE deployment_id = $1 AND optimization_plan = $2`,
      [d.deploymentId, d.optimizationPlan, d.option, d.target, d.source, d.approvedBy],
    );
    return (res.rowCount ?? 0) > 0;
  }

  async decision(deploymentId: string): Promise<DeploymentDecisionRow | undefined> {
    const res = await this.pool.query(
      `SELECT deployment_id, optimization_plan, chosen_option, target, source, approved_by, decided_at, plan
       FROM deployment_plans WHERE deployment_id = $1 AND chosen_option IS NOT NULL`,
      [deploymentId],
    );
    const r = res.rows[0];
    if (!r) return undefined;
    return {
      deploymentId: r.deployment_id,
      optimizationPlan: r.optimization_plan,
      option: r.chosen_option,
      target: r.target,
      source: r.source,
      approvedBy: r.approved_by,
      decidedAt: new Date(r.decided_at).toISOString(),
      plan: r.plan,
    };
  }

  /** The chosen option with every field the engine gave it (schedule, zones), for a target that needs them. */
  async chosenOption(deploymentId: string): Promise<PlanOption | undefined> {
    const d = await this.decision(deploymentId);
    return d?.plan.options.find((o) => o.id === d.option);
  }
}
