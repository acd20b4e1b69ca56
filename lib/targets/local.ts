/**
 * The `local` deployment target: a client of the gateway's control API (lib/gateway), which runs
 * the replicas as processes on this machine.
 */
import {
  type ChangeOptions,
  DeploymentNotFoundError,
  type DeploymentSpec,
  type DeploymentStatus,
  type DeploymentTarget,
  type GatewayErrorCode,
  type ReplicaFloor,
  type ScalingChange,
  type TrafficPolicy,
} from './deploymentTarget';

/**
 * The gateway answered with an error: `status` is its HTTP status, `code` what went wrong (e.g.
 * 'spec_changed', a 409: a conditional change found the spec changed; undefined when the answer had
 * none), `gatewayMessage` its reason for people.
 */
export class GatewayRequestError extends Error {
  constructor(
    readonly status: number,
    readonly gatewayMessage: string,
    message: string,
    readonly code?: GatewayErrorCode,
  ) {
    super(message);
    this.name = 'GatewayRequestError';
  }
}

/** The API key a client sends the gateway, read when it calls (lib/auth/clientKey.ts clientApiKey). */
export type GatewayKey = () => Promise<string | undefined>;

export class LocalTarget implements DeploymentTarget {
  readonly name = 'local';
  private readonly baseUrl: string;

  /**
   * `gatewayUrl`: the gateway's base URL, e.g. loadConfig().gateway.url. `key`: the API key to send as
   * `Authorization: Bearer` (needed when the gateway checks keys); none: no header.
   */
  constructor(
    gatewayUrl: string,
    private readonly key?: GatewayKey,
  ) {
    this.baseUrl = gatewayUrl.replace(/\/+$/, '');
  }

  apply(spec: DeploymentSpec, opts: ChangeOptions = {}): Promise<DeploymentStatus> {
    const { id, ...body } = spec;
    return this.call('PUT', `/deployments/${encodeURIComponent(id)}`, body, id, 'json', opts.ifMatch);
  }

  status(id: string): Promise<DeploymentStatus> {
    return this.call('GET', `/deployments/${encodeURIComponent(id)}`, undefined, id);
  }

  async list(): Promise<DeploymentStatus[]> {
    return (await this.call<{ deployments: DeploymentStatus[] }>('GET', '/deployments')).deployments;
  }

  /** Re-applies the deployment's spec as the gateway reports it, with another replica count. */
  async scale(id: string, replicas: number): Promise<DeploymentStatus> {
    const current = await this.status(id);
    return this.apply({ ...current.spec, id, replicas });
  }

  /** PUT /_ferry/deployments/{id}/scaling: e.g. {autoscaling: {minReplicas: 1, maxReplicas: 4}} or {replicas: 2, autoscaling: null}. */
  setScaling(id: string, change: ScalingChange): Promise<DeploymentStatus> {
    return this.call('PUT', `/deployments/${encodeURIComponent(id)}/scaling`, change, id);
  }

  /** PUT /_ferry/deployments/{id}/traffic: e.g. {split: {v1: 90, v2: 10}} or {rules: [{header, value, revision}]}. */
  setTraffic(id: string, traffic: TrafficPolicy, opts: ChangeOptions = {}): Promise<DeploymentStatus> {
    return this.call('PUT', `/deployments/${encodeURIComponent(id)}/traffic`, traffic, id, 'json', opts.ifMatch);
  }

  /** PUT /_ferry/deployments/{id}/floor: at least `replicas` until the lease ends; wakes a hibernated deployment. */
  setReplicaFloor(id: string, floor: ReplicaFloor): Promise<DeploymentStatus> {
    return this.call('PUT', `/deployments/${encodeURIComponent(id)}/floor`, floor, id);
  }

  hibernate(id: string): Promise<DeploymentStatus> {
    return this.call('POST', `/deployments/${encodeURIComponent(id)}/hibernate`, undefined, id);
  }

  wake(id: string): Promise<DeploymentStatus> {
    return this.call('POST', `/deployments/${encodeURIComponent(id)}/wake`, undefined, id);
  }

  async destroy(id: string): Promise<void> {
    await this.call('DELETE', `/deployments/${encodeURIComponent(id)}`, undefined, id);
  }

  metrics(id: string): Promise<string> {
    return this.call('GET', `/deployments/${encodeURIComponent(id)}/metrics`, undefined, id, 'text');
  }

  private async call<T>(
    method: string,
    path: string,
    body?: unknown,
    id?: string,
    as: 'json' | 'text' = 'json',
    ifMatch?: string,
  ): Promise<T> {
    const url = `${this.baseUrl}/_ferry${path}`;
    const key = await this.key?.();
    const headers: Record<string, string> = key ? { authorization: `Bearer ${key}` } : {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (body !== undefined && ifMatch !== undefined) headers['if-match'] = `"${ifMatch}"`;
    let res: Response;
    try {
      res = await fetch(url, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new Error(
        `Ferry gateway at ${this.baseUrl} is not reachable (${cause?.code ?? cause?.message ?? (err as Error).message}): ` +
          'start it with `ferry up` (background) or `ferry gateway` (foreground)',
      );
    }
    const text = await res.text();
    if (!res.ok) {
      let message = text;
      let code: GatewayErrorCode | undefined;
      try {
        const answer = JSON.parse(text) as { error?: string; code?: GatewayErrorCode };
        message = answer.error ?? text;
        code = answer.code;
      } catch {
        /* not JSON: keep the text */
      }
      // Only an unknown deployment is one: a 404 for an unknown route (an older gateway) is not.
      if (code === 'deployment_not_found' && id !== undefined) throw new DeploymentNotFoundError(id);
      throw new GatewayRequestError(
        res.status,
        message,
        `gateway ${method} ${path} failed with ${res.status}: ${message}`,
        code,
      );
    }
    if (res.status === 204) return undefined as T;
    return (as === 'text' ? text : JSON.parse(text)) as T;
  }
}
