/**
 * Deployments: list, status, upload-and-deploy, approve, and the operator's controls (traffic, scaling,
 * promote, rollback, undeploy). Every handler first resolves the deployment to its project, so a key of
 * another project gets the same 404 as a deployment that does not exist.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { actorOf } from '../../../lib/auth/audit';
import { isAdmin, visibleProjects } from '../../../lib/auth/principal';
import type { Scope } from '../../../lib/auth/scopes';
import { UnknownDeploymentError } from '../../sdk';
import { requireAccessTo } from '../access';
import type { ApiDeps } from '../app';
import { HttpError } from '../httpErrors';
import {
  approveBody,
  deploymentParams,
  deployQuery,
  errorResponses,
  passThrough,
  promoteBody,
  scalingBody,
  trafficBody,
} from '../schemas';

export type DeploymentReq = FastifyRequest<{ Params: { deployment: string } }>;

/** The deployment a request names, once the caller is known to may `scope` it (else 404 or 403). */
export function deploymentAuthorizer({ ferry, ownership }: Pick<ApiDeps, 'ferry' | 'ownership'>) {
  return async (req: DeploymentReq, scope: Scope) => {
    const ref = req.params.deployment;
    const candidates = await ownership.candidatesFor(ref);
    // No model of that name or prefix exists at all: a fast 404, without asking Temporal. Every 404 here
    // says the same, so another project's deployment answers as one that is not there.
    const notFound = () => new HttpError(404, `no deployment "${ref}"`);
    if (!candidates.length) throw notFound();
    const resolved = await ferry.resolve(ref).catch((err) => {
      throw err instanceof UnknownDeploymentError ? notFound() : err;
    });
    const project = await ownership.projectOf(resolved.model);
    const principal = requireAccessTo(req, scope, project, `deployment "${ref}"`);
    return { ...resolved, project: project!, principal };
  };
}

export function deploymentRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const { ferry, ownership, audit } = deps;
  const authorized = deploymentAuthorizer(deps);

  const source = (req: FastifyRequest) => req.ip;

  app.get(
    '/api/deployments',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'List deployments of the caller’s project (all projects for an admin key)',
        response: { 200: { type: 'array', items: passThrough }, ...errorResponses },
      },
    },
    async (req) => {
      const all = await ferry.list();
      const visible = visibleProjects(req.principal!);
      if (visible === 'all') return all;
      const owners = await ownership.projectsOf(all.map((d) => d.model));
      return all.filter((d) => visible.includes(owners.get(d.model) ?? ''));
    },
  );

  app.get(
    '/api/deployments/:deployment',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'A deployment: pipeline status, serving state, gateway view, metrics',
        params: deploymentParams,
        response: { 200: passThrough, ...errorResponses },
      },
    },
    async (req: DeploymentReq) => {
      const d = await authorized(req, 'read');
      return deps.deploymentView(d.deploymentId);
    },
  );

  app.get(
    '/api/deployments/:deployment/progress',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'What the running activity last reported (heartbeat details)',
        params: deploymentParams,
        response: { 200: { type: 'array', items: passThrough }, ...errorResponses },
      },
    },
    async (req: DeploymentReq) => ferry.activityProgress((await authorized(req, 'read')).workflowId),
  );

  app.post(
    '/api/deployments',
    {
      config: { scope: 'deploy' },
      schema: {
        summary: 'Upload an ONNX model (raw bytes, application/octet-stream) and deploy it',
        description:
          'The body streams straight to the object store, bounded by the configured maximum model size; ' +
          'nothing is written to local disk.',
        querystring: deployQuery,
        response: { 200: passThrough, ...errorResponses },
      },
    },
    async (req: FastifyRequest<{ Querystring: Record<string, unknown> }>) => {
      const q = req.query as {
        name: string;
        version?: string;
        mode: 'one-click' | 'review';
        replicas?: number;
        public: boolean;
        project?: string;
        canary?: number;
        canaryOf?: string;
        target: 'local' | 'kubernetes';
        namespace?: string;
      };
      const principal = req.principal!;
      const project = q.project ?? principal.project;
      if (project !== principal.project && !isAdmin(principal)) {
        throw new HttpError(
          403,
          `this key (${principal.keyName}) deploys into its own project only; only an admin key may name another`,
        );
      }
      if (q.canaryOf !== undefined) {
        const base = await ferry.resolve(q.canaryOf).catch(() => undefined);
        const baseProject = base && (await ownership.projectOf(base.model));
        requireAccessTo(req, 'operate', baseProject, `deployment "${q.canaryOf}"`);
      }
      const started = await ferry.deployStream(req.raw, {
        model: q.name,
        version: q.version,
        mode: q.mode,
        replicas: q.replicas,
        canary: q.canary !== undefined ? { percent: q.canary, of: q.canaryOf } : undefined,
        // The SDK claims the model name for the project before it reads a byte (409 if another owns it).
        access: { project, public: q.public },
        ...(q.target === 'kubernetes'
          ? { target: { kind: 'kubernetes' as const, ...(q.namespace ? { namespace: q.namespace } : {}) } }
          : {}),
        maxBytes: deps.maxModelBytes,
        fileName: `${q.name}.onnx`,
      });
      if (!started.alreadyExisted) {
        await audit.record({
          actor: actorOf(principal),
          action: 'deploy',
          deploymentId: started.deploymentId,
          detail: { model: started.model, version: started.version, mode: q.mode, project, public: q.public },
          source: source(req),
        });
      }
      return started;
    },
  );

  app.post(
    '/api/deployments/:deployment/approve',
    {
      config: { scope: 'approve' },
      schema: {
        summary: 'Choose the optimization plan of a deployment waiting for approval (a validated Update)',
        params: deploymentParams,
        body: approveBody,
        response: { 200: passThrough, ...errorResponses },
      },
    },
    async (
      req: FastifyRequest<{
        Params: { deployment: string };
        Body: { plan: string; option?: string; approvedBy?: string };
      }>,
    ) => {
      const d = await authorized(req, 'approve');
      const approvedBy = req.body.approvedBy ?? d.principal.keyName;
      const chosen = await ferry.approve(d.workflowId, req.body.plan, approvedBy, req.body.option);
      await audit.record({
        actor: actorOf(d.principal),
        action: 'approve',
        deploymentId: d.deploymentId,
        detail: { plan: req.body.plan, ...(chosen.option ? { option: chosen.option } : {}), approvedBy },
        source: source(req),
      });
      return chosen;
    },
  );

  app.get(
    '/api/deployments/:deployment/serving',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'The gateway’s view: revisions, traffic split, replicas, autoscaler',
        params: deploymentParams,
        response: { 200: passThrough, ...errorResponses },
      },
    },
    async (req: DeploymentReq) => ferry.gatewayStatus((await authorized(req, 'read')).deploymentId),
  );

  // Operator controls: one shape each, audited with what they asked for.
  const control = <B>(
    method: 'PUT' | 'POST',
    suffix: string,
    action: 'traffic' | 'scale' | 'promote' | 'rollback' | 'undeploy',
    summary: string,
    body: object | undefined,
    run: (deploymentId: string, body: B) => Promise<unknown>,
  ) =>
    app.route({
      method,
      url: `/api/deployments/:deployment/${suffix}`,
      config: { scope: 'operate' },
      schema: {
        summary,
        params: deploymentParams,
        ...(body ? { body } : {}),
        response: { 200: passThrough, ...errorResponses },
      },
      handler: async (req) => {
        const d = await authorized(req as DeploymentReq, 'operate');
        const result = await run(d.deploymentId, (req.body ?? {}) as B);
        await audit.record({
          actor: actorOf(d.principal),
          action,
          deploymentId: d.deploymentId,
          detail: (req.body ?? {}) as Record<string, unknown>,
          source: source(req),
        });
        return result;
      },
    });

  control('PUT', 'traffic', 'traffic', 'Change the traffic split and header rules', trafficBody, (id, b) =>
    ferry.setTraffic(id, b as never),
  );
  control('PUT', 'scaling', 'scale', 'Change replicas, autoscaling or scale to zero', scalingBody, (id, b) =>
    ferry.setScaling(id, b as never),
  );
  control<{ revision: string }>(
    'POST',
    'promote',
    'promote',
    'Send all traffic to one revision',
    promoteBody,
    (id, b) => ferry.promote(id, b.revision),
  );
  control('POST', 'rollback', 'rollback', 'Back to the first revision; canaries removed', undefined, (id) =>
    ferry.rollback(id),
  );
  control('POST', 'undeploy', 'undeploy', 'Stop serving and remove the deployment’s replicas', undefined, (id) =>
    ferry.undeploy(id),
  );
}
