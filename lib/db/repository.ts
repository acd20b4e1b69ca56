/**
 * Ferry's metadata in PostgreSQL: models, versions, optimization results, images, deployments and
 * their metrics. Every write is an idempotent upsert, because activities may run more than once.
 */
import type { Pool } from 'pg';

export interface ModelVersionRow {
  id: number;
  model: string;
  version: string;
  sha256: string;
  sizeBytes: number;
  objectKey: string;
  analysis: unknown;
  /** What the version needs from a runtime (lib/onnx/validate/dependencies.ts); null for older uploads. */
  dependencies?: unknown;
}

/** One model with its versions, newest first, for `ferry models`. */
export interface ModelListing {
  name: string;
  versions: Array<{ version: string; sizeBytes: number; sha256: string; createdAt: string }>;
}

export interface DeploymentRow {
  id: string;
  model: string;
  version: string;
  target: string;
  endpoint: string | null;
  state: string;
  replicas: number;
  imageDigest: string | null;
  config: Record<string, unknown>;
  updatedAt: string;
  /** The project (tenant) it belongs to. */
  project: string;
  /** Inference without a key (`ferry deploy --public`). */
  public: boolean;
}

export interface MetricsSample {
  collectedAt: string;
  requestCount: number;
  errorCount: number;
  latencyP50Ms: number | null;
  latencyP95Ms: number | null;
  requestsDelta: number;
  replicas: number;
}

/** A model version is already recorded with other bytes: versions are immutable, so pick a new one. */
export class ModelVersionConflictError extends Error {
  override name = 'ModelVersionConflictError';
  constructor(
    readonly model: string,
    readonly version: string,
    readonly recordedSha256: string,
  ) {
    super(
      `model ${model} version ${version} already exists with different content (sha256 ${recordedSha256}); choose a new version`,
    );
  }
}

export class FerryRepository {
  constructor(private readonly pool: Pool) {}

  async recordModelVersion(v: Omit<ModelVersionRow, 'id'>): Promise<number> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const model = await client.query(
        `INSERT INTO models(name) VALUES ($1) ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id`,
        [v.model],
      );
      const row = await client.query(
        `INSERT INTO model_versions(model_id, version, sha256, size_bytes, object_key, analysis, dependencies)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (model_id, version) DO UPDATE SET analysis = EXCLUDED.analysis, dependencies = EXCLUDED.dependencies
         RETURNING id, sha256`,
        [
          model.rows[0].id,
          v.version,
          v.sha256,
          v.sizeBytes,
          v.objectKey,
          JSON.stringify(v.analysis),
          v.dependencies === undefined ? null : JSON.stringify(v.dependencies),
        ],
      );
      if (row.rows[0].sha256 !== v.sha256) {
        throw new ModelVersionConflictError(v.model, v.version, row.rows[0].sha256);
      }
      await client.query('COMMIT');
      return Number(row.rows[0].id);
    } catch (err) {
      await client.query('ROLLBACK');
      throw err;
    } finally {
      client.release();
    }
  }

  async findModelVersion(model: string, version: string): Promise<ModelVersionRow | undefined> {
    const res = await this.pool.query(
      `SELECT mv.id, m.name AS model, mv.version, mv.sha256, mv.size_bytes, mv.object_key, mv.analysis, mv.dependencies
       FROM model_versions mv JOIN models m ON m.id = mv.model_id WHERE m.name = $1 AND mv.version = $2`,
      [model, version],
    );
    const r = res.rows[0];
    if (!r) return undefined;
    return {
      id: Number(r.id),
      model: r.model,
      version: r.version,
      sha256: r.sha256,
      sizeBytes: Number(r.size_bytes),
      objectKey: r.object_key,
      analysis: r.analysis,
      dependencies: r.dependencies,
    };
  }

  /** Every model with its versions (newest first); models in name order. */
  async listModels(): Promise<ModelListing[]> {
    const res = await this.pool.query(
      `SELECT m.name, mv.version, mv.size_bytes, mv.sha256, mv.created_at
       FROM models m JOIN model_versions mv ON mv.model_id = m.id
       ORDER BY m.name, mv.created_at DESC, mv.id DESC`,
    );
    const models = new Map<string, ModelListing>();
    for (const r of res.rows) {
      let m = models.get(r.name);
      if (!m) {
        m = { name: r.name, versions: [] };
        models.set(r.name, m);
      }
      m.versions.push({
        version: r.version,
        sizeBytes: Number(r.size_bytes),
        sha256: r.sha256,
        createdAt: new Date(r.created_at).toISOString(),
      });
    }
    return [...models.values()];
  }

  async recordOptimizationResult(r: {
    modelVersionId: number;
    plan: string;
    objectKey: string;
    sha256: string;
    benchmark: unknown;
  }): Promise<void> {
    await this.pool.query(
      `INSERT INTO optimization_results(model_version_id, plan, object_key, sha256, benchmark)
       VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (model_version_id, plan) DO UPDATE
         SET object_key = EXCLUDED.object_key, sha256 = EXCLUDED.sha256, benchmark = EXCLUDED.benchmark`,
      [r.modelVersionId, r.plan, r.objectKey, r.sha256, JSON.stringify(r.benchmark)],
    );
  }

  async recordImage(r: {
    modelVersionId: number;
    plan: string;
    repository: string;
    tag: string;
    digest: string;
    sizeBytes: number;
    /** What the image's smoke test found (lib/image/smokeTest.ts): recorded only for an image that passed. */
    smokeTest?: unknown;
  }): Promise<number> {
    const res = await this.pool.query(
      `INSERT INTO images(model_version_id, plan, repository, tag, digest, size_bytes, smoke_test)
       VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (repository, digest) DO UPDATE SET tag = EXCLUDED.tag, smoke_test = EXCLUDED.smoke_test
       RETURNING id`,
      [
        r.modelVersionId,
        r.plan,
        r.repository,
        r.tag,
        r.digest,
        r.sizeBytes,
        r.smokeTest === undefined ? null : JSON.stringify(r.smokeTest),
      ],
    );
    return Number(res.rows[0].id);
  }

  async countImages(modelVersionId: number): Promise<number> {
    const res = await this.pool.query(`SELECT count(*)::int AS n FROM images WHERE model_version_id = $1`, [
      modelVersionId,
    ]);
    return res.rows[0].n;
  }

  async upsertDeployment(d: {
    id: string;
    modelVersionId: number;
    imageId: number | null;
    target: string;
    endpoint: string | null;
    state: string;
    replicas: number;
    config: Record<string, unknown>;
    /** The project (tenant) it belongs to, and whether inference needs no key: `default` and keyed when absent. */
    access?: { project: string; public: boolean };
  }): Promise<void> {
    const project = d.access?.project ?? 'default';
    await this.pool.query('INSERT INTO projects (name) VALUES ($1) ON CONFLICT DO NOTHING', [project]);
    await this.pool.query(
      `INSERT INTO deployments(id, model_version_id, image_id, target, endpoint, state, replicas, config, project, public)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
       ON CONFLICT (id) DO UPDATE SET image_id = EXCLUDED.image_id, target = EXCLUDED.target,
         endpoint = EXCLUDED.endpoint, state = EXCLUDED.state, replicas = EXCLUDED.replicas,
         config = EXCLUDED.config, project = EXCLUDED.project, public = EXCLUDED.public, updated_at = now()`,
      [
        d.id,
        d.modelVersionId,
        d.imageId,
        d.target,
        d.endpoint,
        d.state,
        d.replicas,
        JSON.stringify(d.config),
        project,
        d.access?.public ?? false,
      ],
    );
  }

  async setDeploymentState(id: string, state: string, replicas?: number): Promise<void> {
    await this.pool.query(
      `UPDATE deployments SET state = $2, replicas = COALESCE($3, replicas), updated_at = now() WHERE id = $1`,
      [id, state, replicas ?? null],
    );
  }

  async recordEvent(deploymentId: string, kind: string, detail: Record<string, unknown> = {}): Promise<void> {
    await this.pool.query(`INSERT INTO deployment_events(deployment_id, kind, detail) VALUES ($1, $2, $3)`, [
      deploymentId,
      kind,
      JSON.stringify(detail),
    ]);
  }

  /**
   * Records the event unless one of this kind whose detail contains `identity` is there already, so an
   * activity that runs again records it once. True when it was recorded now.
   */
  async recordEventOnce(
    deploymentId: string,
    kind: string,
    detail: Record<string, unknown>,
    identity: Record<string, unknown>,
  ): Promise<boolean> {
    const res = await this.pool.query(
      `INSERT INTO deployment_events(deployment_id, kind, detail)
       SELECT $1, $2, $3 WHERE NOT EXISTS (
         SELECT 1 FROM deployment_events WHERE deployment_id = $1 AND kind = $2 AND detail @> $4)`,
      [deploymentId, kind, JSON.stringify(detail), JSON.stringify(identity)],
    );
    return (res.rowCount ?? 0) > 0;
  }

  /** The canary versions added to a deployment (rows whose config has `canaryOf` = its id), newest first. */
  async canaryDeployments(baseDeploymentId: string): Promise<DeploymentRow[]> {
    return this.queryDeployments(`WHERE d.config->>'canaryOf' = $1`, [baseDeploymentId]);
  }

  /**
   * After a promote or a rollback of `baseDeploymentId`: the canary row of the revision kept is
   * 'promoted' (and the base deployment's image becomes its image), those of removed revisions 'removed'.
   */
  async settleCanaries(baseDeploymentId: string, kept: string, removed: string[]): Promise<void> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(
        `UPDATE deployments SET state = CASE WHEN config->>'revision' = $2 THEN 'promoted' ELSE 'removed' END, updated_at = now()
         WHERE config->>'canaryOf' = $1 AND (config->>'revision' = $2 OR config->>'revision' = ANY($3::text[]))`,
        [baseDeploymentId, kept, removed],
      );
      await client.query(
        `UPDATE deployments b SET image_id = c.image_id, updated_at = now() FROM deployments c
         WHERE b.id = $1 AND c.config->>'canaryOf' = $1 AND c.config->>'revision' = $2 AND b.image_id IS DISTINCT FROM c.image_id`,
        [baseDeploymentId, kept],
      );
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK');
      throw err;
    } finally {
      client.release();
    }
  }

  async listDeployments(): Promise<DeploymentRow[]> {
    return this.queryDeployments('', []);
  }

  async getDeployment(id: string): Promise<DeploymentRow | undefined> {
    return (await this.queryDeployments('WHERE d.id = $1', [id]))[0];
  }

  private async queryDeployments(where: string, params: unknown[]): Promise<DeploymentRow[]> {
    const res = await this.pool.query(
      `SELECT d.id, m.name AS model, mv.version, d.target, d.endpoint, d.state, d.replicas, d.config,
              d.updated_at, i.digest, d.project, d.public
       FROM deployments d
       JOIN model_versions mv ON mv.id = d.model_version_id
       JOIN models m ON m.id = mv.model_id
       LEFT JOIN images i ON i.id = d.image_id
       ${where} ORDER BY d.created_at DESC`,
      params,
    );
    return res.rows.map((r) => ({
      id: r.id,
      model: r.model,
      version: r.version,
      target: r.target,
      endpoint: r.endpoint,
      state: r.state,
      replicas: r.replicas,
      imageDigest: r.digest,
      config: r.config,
      updatedAt: new Date(r.updated_at).toISOString(),
      project: r.project,
      public: r.public,
    }));
  }

  async lastMetrics(deploymentId: string): Promise<MetricsSample | undefined> {
    return (await this.recentMetrics(deploymentId, 1))[0];
  }

  async recordMetrics(deploymentId: string, s: Omit<MetricsSample, 'collectedAt'>): Promise<void> {
    await this.pool.query(
      `INSERT INTO deployment_metrics(deployment_id, request_count, error_count, latency_p50_ms, latency_p95_ms,
         requests_delta, replicas) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [deploymentId, s.requestCount, s.errorCount, s.latencyP50Ms, s.latencyP95Ms, s.requestsDelta, s.replicas],
    );
  }

  /** Newest first. */
  async recentMetrics(deploymentId: string, limit = 120): Promise<MetricsSample[]> {
    const res = await this.pool.query(
      `SELECT collected_at, request_count, error_count, latency_p50_ms, latency_p95_ms, requests_delta, replicas
       FROM deployment_metrics WHERE deployment_id = $1 ORDER BY collected_at DESC, id DESC LIMIT $2`,
      [deploymentId, limit],
    );
    return res.rows.map((r) => ({
      collectedAt: new Date(r.collected_at).toISOString(),
      requestCount: Number(r.request_count),
      errorCount: Number(r.error_count),
      latencyP50Ms: r.latency_p50_ms,
      latencyP95Ms: r.latency_p95_ms,
      requestsDelta: Number(r.requests_delta),
      replicas: r.replicas,
    }));
  }

  /**
   * Requests per minute over the last `minutes` minutes up to `now` (oldest first, the last entry the
   * current minute, 0 for minutes without a collection): the forecaster's history.
   */
  async requestsPerMinute(deploymentId: string, minutes: number, now: Date = new Date()): Promise<number[]> {
    const res = await this.pool.query(
      `SELECT m.minute, COALESCE(SUM(d.requests_delta), 0) AS requests
       FROM generate_series(date_trunc('minute', $2::timestamptz) - ($3::int - 1) * interval '1 minute',
                            date_trunc('minute', $2::timestamptz), interval '1 minute') AS m(minute)
       LEFT JOIN deployment_metrics d ON d.deployment_id = $1
         AND d.collected_at >= m.minute AND d.collected_at < m.minute + interval '1 minute'
       GROUP BY m.minute ORDER BY m.minute`,
      [deploymentId, now.toISOString(), minutes],
    );
    return res.rows.map((r) => Number(r.requests));
  }
}
