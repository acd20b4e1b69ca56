/**
 * Which project a model (and so each of its versions, deployments, approvals and metrics) belongs to.
 * Model names are unique across the install, like bucket names: the first project to deploy a name owns
 * it. Everything a request names is resolved to a model first, then to its project here.
 */
import type { Pool } from 'pg';
import { assertValidName } from '../names';

export class ModelNameTakenError extends Error {
  override name = 'ModelNameTakenError';
  constructor(readonly model: string) {
    super(`the model name "${model}" is already used by another project; choose another name`);
  }
}

export class ModelOwnership {
  constructor(private readonly pool: Pool) {}

  /** Makes `project` the owner of a new model name; refuses a name another project owns. */
  async claim(model: string, project: string): Promise<void> {
    assertValidName('model', model);
    await this.pool.query('INSERT INTO projects (name) VALUES ($1) ON CONFLICT DO NOTHING', [project]);
    await this.pool.query('INSERT INTO models (name, project) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', [
      model,
      project,
    ]);
    const owner = await this.projectOf(model);
    if (owner !== project) throw new ModelNameTakenError(model);
  }

  async projectOf(model: string): Promise<string | undefined> {
    const { rows } = await this.pool.query('SELECT project FROM models WHERE name = $1', [model]);
    return rows[0]?.project;
  }

  /**
   * Models a deployment reference could be about: the model itself, or `<model>-<version>` and
   * `<model>:<version>` forms. Empty means nothing of that name exists, which lets callers answer 404 at once.
   */
  async candidatesFor(ref: string): Promise<Array<{ model: string; project: string }>> {
    const { rows } = await this.pool.query(
      `SELECT name, project FROM models
       WHERE name = $1 OR starts_with($1, name || '-') OR starts_with($1, name || ':') OR starts_with($1, 'deploy:' || name || ':')`,
      [ref],
    );
    return rows.map((r) => ({ model: r.name as string, project: r.project as string }));
  }

  /** model → project for many models at once (lists). Models never recorded belong to no project. */
  async projectsOf(models: readonly string[]): Promise<Map<string, string>> {
    if (!models.length) return new Map();
    const { rows } = await this.pool.query('SELECT name, project FROM models WHERE name = ANY($1)', [
      [...new Set(models)],
    ]);
    return new Map(rows.map((r) => [r.name as string, r.project as string]));
  }
}
