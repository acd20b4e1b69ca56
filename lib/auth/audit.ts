/**
 * The audit log: one row per change (deploy, approve, traffic, scale, promote, rollback, undeploy, a
 * recommendation applied, key created or revoked), saying who (key and project), when, what and from where.
 */
import type { Pool } from 'pg';
import type { Principal } from './principal';

export const AUDIT_ACTIONS = [
  'deploy',
  'approve',
  'traffic',
  'scale',
  'promote',
  'rollback',
  'undeploy',
  'recommendation-applied',
  'key-created',
  'key-revoked',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

export interface AuditEntry {
  id: number;
  at: string;
  project: string;
  keyId: number | null;
  keyName: string;
  action: AuditAction;
  deploymentId: string | null;
  detail: Record<string, unknown>;
  source: string | null;
}

/** Who did it when there is no key: the chat user of a signed chat-ops request, or a local process. */
export interface AuditActor {
  project: string;
  keyId?: number;
  keyName: string;
}

export function actorOf(p: Principal): AuditActor {
  return { project: p.project, keyId: p.keyId, keyName: p.keyName };
}

export class AuditLog {
  constructor(private readonly pool: Pool) {}

  async record(e: {
    actor: AuditActor;
    action: AuditAction;
    deploymentId?: string;
    detail?: Record<string, unknown>;
    source?: string;
  }): Promise<void> {
    await this.pool.query(
      `INSERT INTO audit_log (project, key_id, key_name, action, deployment_id, detail, source)
       VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [
        e.actor.project,
        e.actor.keyId ?? null,
        e.actor.keyName,
        e.action,
        e.deploymentId ?? null,
        JSON.stringify(e.detail ?? {}),
        e.source ?? null,
      ],
    );
  }

  /** Newest first. `projects: 'all'` is for admins; others see their own projects only. */
  async list(opts: { projects: 'all' | string[]; deploymentId?: string; limit?: number }): Promise<AuditEntry[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (opts.projects !== 'all') {
      params.push(opts.projects);
      where.push(`project = ANY($${params.length})`);
    }
    if (opts.deploymentId) {
      params.push(opts.deploymentId);
      where.push(`deployment_id = $${params.length}`);
    }
    params.push(Math.min(Math.max(opts.limit ?? 100, 1), 1000));
    const { rows } = await this.pool.query(
      `SELECT * FROM audit_log ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT $${params.length}`,
      params,
    );
    return rows.map((r) => ({
      id: Number(r.id),
      at: new Date(r.at).toISOString(),
      project: r.project,
      keyId: r.key_id === null ? null : Number(r.key_id),
      keyName: r.key_name,
      action: r.action,
      deploymentId: r.deployment_id,
      detail: r.detail,
      source: r.source,
    }));
  }
}
