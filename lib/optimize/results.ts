/**
 * The optimize stage's results in Postgres (migration 002): one optimization_results row per candidate,
 * one optimization_runs row per model version with the whole table and, later, the choice made from it.
 */
import type { Pool } from 'pg';
import type { OptimizationTable } from './types';

export async function recordOptimizationTable(
  pool: Pool,
  modelVersionId: number,
  table: OptimizationTable,
): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    // A re-run (activity retry) replaces the previous measurement of this version.
    await client.query('DELETE FROM optimization_results WHERE model_version_id = $1', [modelVersionId]);
    for (const c of table.candidates) {
      await client.query(
        `INSERT INTO optimization_results
           (model_version_id, plan, object_key, sha256, benchmark, state, techniques, within_budget, reason, session_options)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
        [
          modelVersionId,
          c.id,
          c.artifact?.objectKey ?? null,
          c.artifact?.sha256 ?? null,
          JSON.stringify(c.row ?? {}),
          c.state,
          c.techniques,
          c.withinBudget,
          c.rejection ?? c.reason ?? null,
          c.sessionOptions ? JSON.stringify(c.sessionOptions) : null,
        ],
      );
    }
    await client.query(
      `INSERT INTO optimization_runs (model_version_id, best, result_table)
       VALUES ($1, $2, $3)
       ON CONFLICT (model_version_id) DO UPDATE
         SET best = EXCLUDED.best, result_table = EXCLUDED.result_table, created_at = now(),
             chosen = NULL, chosen_source = NULL, chosen_by = NULL, chosen_at = NULL`,
      [modelVersionId, table.best, JSON.stringify(table)],
    );
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

export async function recordOptimizationChoice(
  pool: Pool,
  r: { modelVersionId: number; candidate: string; source: string; approvedBy?: string },
): Promise<void> {
  await pool.query('UPDATE optimization_results SET chosen = (plan = $2) WHERE model_version_id = $1', [
    r.modelVersionId,
    r.candidate,
  ]);
  await pool.query(
    'UPDATE optimization_runs SET chosen = $2, chosen_source = $3, chosen_by = $4, chosen_at = now() WHERE model_version_id = $1',
    [r.modelVersionId, r.candidate, r.source, r.approvedBy ?? null],
  );
}

export interface StoredCandidateRow {
  plan: string;
  state: string;
  techniques: string[];
  withinBudget: boolean;
  reason: string | null;
  chosen: boolean;
  objectKey: string | null;
  benchmark: Record<string, unknown>;
}

export async function loadOptimizationResults(pool: Pool, modelVersionId: number): Promise<StoredCandidateRow[]> {
  const { rows } = await pool.query(
    `SELECT plan, state, techniques, within_budget, reason, chosen, object_key, benchmark
       FROM optimization_results WHERE model_version_id = $1 ORDER BY id`,
    [modelVersionId],
  );
  return rows.map((r) => ({
    plan: r.plan,
    state: r.state,
    techniques: r.techniques,
    withinBudget: r.within_budget,
    reason: r.reason,
    chosen: r.chosen,
    objectKey: r.object_key,
    benchmark: r.benchmark,
  }));
}
