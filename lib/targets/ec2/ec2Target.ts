/**
 * The `ec2` deployment target: each revision of a deployment is a set of EC2 instances, one replica
 * each, launched through CreateFleet (spot with an on-demand base and an on-demand fallback) from a
 * launch template whose user data runs the revision's image under podman with the replica agent beside
 * it. EC2 itself is the state: everything is tagged with the deployment, model and revision, and found
 * again by those tags, so a retried apply launches nothing twice and destroy leaves nothing behind.
 *
 * What EC2 cannot do here, and so this target does not pretend to: there is no single endpoint in front
 * of the instances (the local gateway does not route to remote replicas yet), hence no traffic split,
 * no concurrency autoscaling, no waking on a request; status has no request counts. `setTraffic` and
 * autoscaling refuse, naming that. Hibernate terminates the instances and keeps the templates; wake
 * launches them again.
 */
import type { EC2Client, LaunchTemplate } from '@aws-sdk/client-ec2';
import { CreateFleetCommand, DescribeInstancesCommand } from '@aws-sdk/client-ec2';
import { loadConfig } from '../../config';
import { mergeReplicaMetrics } from '../../gateway/replicaMetrics';
import {
  type ChangeOptions,
  DeploymentNotFoundError,
  type DeploymentSpec,
  type DeploymentStatus,
  type DeploymentTarget,
  type ImageRef,
  type ReplicaResources,
  type ReplicaStatus,
  type RevisionStatus,
  type ScalingChange,
} from '../deploymentTarget';
import { bundleReplicaAgent } from './agentBundle';
import { type AwsVariables, awsEnvironment, ec2Client } from './awsEnvironment';
import { buildFleetRequest, type FleetRequest, launchedCounts, onDemandFallback, token } from './fleetRequest';
import { deleteFleets, type FerryInstance, liveInstances, markInterrupted, terminate } from './instances';
import {
  deleteLaunchTemplate,
  ensureLaunchTemplate,
  findLaunchTemplates,
  launchTemplateData,
  launchTemplateName,
  setTemplateTags,
} from './launchTemplate';
import { defaultSubnets, machineImage, securityGroupIds } from './network';
import { assertPlacement, type Ec2Placement, withoutZones } from './placement';
import { revisionTags, TAG, tagValue } from './tags';
import { IMAGE_SERVER_PORT, renderUserData } from './userData';

export interface Ec2TargetOptions {
  /** The AWS settings (default config.aws.variables): credentials, AWS_REGION, AWS_ENDPOINT_URL_EC2, FERRY_EC2_*. */
  env?: AwsVariables;
  /** Default: one built from `env`. */
  client?: EC2Client;
  /** The pools and on-demand base the cost engine chose, for a deployment. */
  placement: Ec2Placement | ((spec: DeploymentSpec) => Ec2Placement | Promise<Ec2Placement>);
  /** Host port of each replica (default 8000). */
  port?: number;
  /** Limits of a replica when the spec gives none. */
  defaultResources?: ReplicaResources;
  /** How long a replica may take to finish in-flight requests once told to drain (default 100 s, inside the 2-minute notice). */
  drainTimeoutMs?: number;
  /** Where the agents reach Ferry's control API (drain and replacement); none: they drain locally only. */
  controlUrl?: string;
  /**
   * When a new instance counts as ready: `http`, its replica answers GET /v2/health/ready on its address
   * (default); `instance-state`, EC2 reports it running (an emulator's instances run no software).
   */
  readiness?: 'http' | 'instance-state';
  /** How long apply waits for new instances to be ready (default 15 min). */
  readyTimeoutMs?: number;
  /** Interval of the readiness polls (default 5 s). */
  pollMs?: number;
  /** The agent's one-file bundle (default: runtime/agent bundled with esbuild). */
  agentScript?: () => Promise<string>;
  log?: (message: string) => void;
}

/** A revision as the target launches it. */
interface RevisionPlan {
  name: string;
  image: ImageRef;
  replicas: number;
}

export interface Ec2DeploymentStatus extends DeploymentStatus {
  region: string;
  /** Every live instance of the deployment, the interrupted ones included. */
  instances: FerryInstance[];
}

/** What a revision's current launch template says (its tags are the target's record of the spec). */
interface RevisionRecord {
  name: string;
  order: number;
  image: ImageRef;
  replicas: number;
  resources: ReplicaResources;
  state: 'running' | 'hibernated';
  spec: string;
  model: string;
  template: LaunchTemplate;
  others: LaunchTemplate[];
}

const DEFAULT_RESOURCES: ReplicaResources = { cpus: 1, memoryMb: 1024 };

export class Ec2Target implements DeploymentTarget {
  readonly name = 'ec2';
  private readonly env: AwsVariables;
  private readonly ec2: EC2Client;
  private readonly port: number;
  private readonly region: string;
  private agentScript: Promise<string> | undefined;

  constructor(private readonly opts: Ec2TargetOptions) {
    this.env = opts.env ?? loadConfig().aws.variables;
    this.ec2 = opts.client ?? ec2Client(this.env);
    this.region = awsEnvironment(this.env)?.region ?? '';
    this.port = opts.port ?? IMAGE_SERVER_PORT;
  }

  async apply(spec: DeploymentSpec, opts: ChangeOptions = {}): Promise<Ec2DeploymentStatus> {
    if (opts.ifMatch !== undefined) {
      const current = await this.status(spec.id).catch(() => undefined);
      if (current && current.specVersion !== opts.ifMatch)
        throw new Error(`deployment "${spec.id}" changed since version ${opts.ifMatch} (now ${current.specVersion})`);
    }
    if (spec.autoscaling) throw unsupported('autoscaling (no gateway in front of EC2 instances yet)');
    if (spec.traffic && Object.keys(spec.traffic.split ?? {}).length > 1)
      throw unsupported('a traffic split (no gateway in front of EC2 instances yet)');
    await this.converge(spec, 'running');
    return this.status(spec.id);
  }

  async status(id: string): Promise<Ec2DeploymentStatus> {
    const [templates, instances] = await Promise.all([findLaunchTemplates(this.ec2, id), liveInstances(this.ec2, id)]);
    const records = revisionRecords(templates);
    if (records.length === 0 && instances.length === 0) throw new DeploymentNotFoundError(id);
    return this.statusOf(id, records, instances);
  }

  async list(): Promise<Ec2DeploymentStatus[]> {
    const [templates, instances] = await Promise.all([findLaunchTemplates(this.ec2), liveInstances(this.ec2)]);
    const ids = new Set(
      [...templates.map((t) => tagValue(t.Tags, TAG.deployment)), ...instances.map((i) => i.deployment)].filter(
        (x): x is string => Boolean(x),
      ),
    );
    return [...ids].sort().map((id) =>
      this.statusOf(
        id,
        revisionRecords(templates.filter((t) => tagValue(t.Tags, TAG.deployment) === id)),
        instances.filter((i) => i.deployment === id),
      ),
    );
  }

  async scale(id: string, replicas: number): Promise<Ec2DeploymentStatus> {
    const current = await this.status(id);
    const revisions = current.spec.revisions?.map((r) => ({ ...r, replicas }));
    await this.converge(
      { ...current.spec, id, replicas, revisions },
      current.state === 'hibernated' ? 'hibernated' : 'running',
    );
    return this.status(id);
  }

  async setScaling(id: string, change: ScalingChange): Promise<Ec2DeploymentStatus> {
    if (change.autoscaling) throw unsupported('autoscaling (no gateway in front of EC2 instances yet)');
    if (change.scaleToZeroAfterMs)
      throw unsupported('scale to zero on idle (nothing sees requests to EC2 instances yet)');
    if (change.replicas === undefined) return this.status(id);
    return this.scale(id, change.replicas);
  }

  setTraffic(): Promise<DeploymentStatus> {
    return Promise.reject(unsupported('traffic policies (no gateway in front of EC2 instances yet)'));
  }

  /** Terminates every instance; the launch templates stay (tagged hibernated) for `wake`. */
  async hibernate(id: string): Promise<Ec2DeploymentStatus> {
    const current = await this.status(id);
    await this.converge({ ...current.spec, id }, 'hibernated');
    return this.status(id);
  }

  async wake(id: string): Promise<Ec2DeploymentStatus> {
    const current = await this.status(id);
    await this.converge({ ...current.spec, id }, 'running');
    return this.status(id);
  }

  /** Terminates every instance of the deployment and deletes its launch templates and fleets. */
  async destroy(id: string): Promise<void> {
    const [templates, instances] = await Promise.all([findLaunchTemplates(this.ec2, id), liveInstances(this.ec2, id)]);
    await terminate(
      this.ec2,
      instances.map((i) => i.id),
    );
    await deleteFleets(this.ec2, id);
    for (const t of templates) if (t.LaunchTemplateId) await deleteLaunchTemplate(this.ec2, t.LaunchTemplateId);
  }

  /** Every running instance's replica metrics, labelled replica="<instance id>"; unreachable ones are left out. */
  async metrics(id: string): Promise<string> {
    const status = await this.status(id);
    const answers = await Promise.all(
      status.instances
        .filter((i) => i.state === 'running' && i.address)
        .map(async (i) => {
          try {
            const res = await fetch(`http://${i.address}:${this.port}/metrics`, { signal: AbortSignal.timeout(2000) });
            return res.ok ? { pid: i.id, revision: i.revision, metricsText: await res.text() } : undefined;
          } catch {
            return undefined;
          }
        }),
    );
    return mergeReplicaMetrics(answers.filter((a) => a !== undefined));
  }

  /**
   * Capacity for an instance whose spot capacity is being reclaimed (its agent asks, on the 2-minute
   * notice or a rebalance recommendation): the instance stops counting toward its revision, and one
   * instance like it is launched in the cheapest pool outside its zone. Asking twice launches once.
   */
  async replaceInterrupted(id: string, instanceId: string): Promise<{ launched: string[] }> {
    const [templates, instances] = await Promise.all([findLaunchTemplates(this.ec2, id), liveInstances(this.ec2, id)]);
    const lost = instances.find((i) => i.id === instanceId);
    if (!lost) throw new Error(`instance ${instanceId} is no live instance of deployment "${id}"`);
    const record = revisionRecords(templates).find((r) => r.name === lost.revision);
    if (!record) throw new Error(`deployment "${id}" has no launch template for revision "${lost.revision}"`);
    if (!lost.interrupted) await markInterrupted(this.ec2, lost.id, new Date().toISOString());
    const spec = this.specOf(id, [record]);
    const placement = withoutZones(await this.placementFor(spec), [lost.zone]);
    const subnets = await defaultSubnets(this.ec2);
    const request: FleetRequest = {
      launchTemplateId: record.template.LaunchTemplateId as string,
      launchTemplateVersion: String(record.template.LatestVersionNumber ?? 1),
      pools: placement.pools,
      subnets,
      spot: lost.lifecycle === 'spot' ? 1 : 0,
      onDemand: lost.lifecycle === 'spot' ? 0 : 1,
      tags: revisionTags({ deployment: id, model: record.model, revision: record.name, spec: record.spec }),
      clientToken: token(id, record.name, record.spec, 'replace', instanceId),
    };
    // A second ask finds the replacement by tag: an instance of the revision launched for this one.
    const already = instances.filter((i) => i.replacementFor === instanceId);
    if (already.length > 0) return { launched: already.map((i) => i.id) };
    const launched = await this.launch({
      ...request,
      tags: [...request.tags, { Key: TAG.replaces, Value: instanceId }],
    });
    this.log(
      `deployment "${id}": instance ${instanceId} (${lost.zone}) is being reclaimed; launched ${launched.join(', ')}`,
    );
    return { launched };
  }

  // --- internals -------------------------------------------------------------------------------------

  private log(message: string): void {
    this.opts.log?.(message);
  }

  private async placementFor(spec: DeploymentSpec): Promise<Ec2Placement> {
    const p = typeof this.opts.placement === 'function' ? await this.opts.placement(spec) : this.opts.placement;
    assertPlacement(p);
    if (this.region && p.region !== this.region)
      throw new Error(`the placement is in ${p.region} but the AWS environment's region is ${this.region}`);
    return p;
  }

  private agent(): Promise<string> {
    this.agentScript ??= (this.opts.agentScript ?? bundleReplicaAgent)();
    return this.agentScript;
  }

  /**
   * Makes EC2 match `spec`: per revision a launch template for what it runs, and that many live instances
   * of it (none while hibernated); then the instances and templates of older specs and removed revisions
   * go — only after the new instances are ready, so a changed image never leaves a revision without
   * replicas. Every step looks at what EC2 has first, so running it again does nothing more.
   */
  private async converge(spec: DeploymentSpec, state: 'running' | 'hibernated'): Promise<void> {
    const revisions = revisionsOf(spec);
    const placement = await this.placementFor(spec);
    const resources = spec.resources ?? this.opts.defaultResources ?? DEFAULT_RESOURCES;
    const [imageId, subnets, templates, live, agentScript] = await Promise.all([
      machineImage(this.ec2, placement.pools[0].arch, this.env),
      defaultSubnets(this.ec2),
      findLaunchTemplates(this.ec2, spec.id),
      liveInstances(this.ec2, spec.id),
      this.agent(),
    ]);
    const keep = new Set<string>();
    const keptTemplates = new Set<string>();
    const waitFor: string[] = [];
    for (const [order, rev] of revisions.entries()) {
      const userData = renderUserData({
        deployment: spec.id,
        model: spec.model,
        revision: rev.name,
        image: rev.image,
        resources,
        port: this.port,
        drainTimeoutMs: this.opts.drainTimeoutMs ?? 100_000,
        agentScript,
        ...(this.opts.controlUrl ? { controlUrl: this.opts.controlUrl } : {}),
      });
      const groups = securityGroupIds(this.env);
      const base = {
        name: '',
        imageId,
        userData,
        securityGroupIds: groups,
        templateTags: [],
        instanceTags: [],
        clientToken: '',
      };
      const specHash = token(JSON.stringify(launchTemplateData(base))).slice(0, 16);
      const tags = revisionTags({ deployment: spec.id, model: spec.model, revision: rev.name, spec: specHash });
      const recordTags = [
        { Key: TAG.replicas, Value: String(rev.replicas) },
        { Key: TAG.order, Value: String(order) },
        { Key: TAG.state, Value: state },
        { Key: TAG.image, Value: JSON.stringify(rev.image) },
        { Key: TAG.resources, Value: `${resources.cpus}/${resources.memoryMb}` },
      ];
      const name = launchTemplateName(spec.id, rev.name, specHash);
      const template = await ensureLaunchTemplate(
        this.ec2,
        {
          ...base,
          name,
          templateTags: [...tags, ...recordTags],
          instanceTags: tags,
          clientToken: token(name),
        },
        templates,
      );
      const templateId = template.LaunchTemplateId as string;
      keptTemplates.add(templateId);
      // The record of the spec lives in the template's tags: the wanted count and state change in place.
      await setTemplateTags(this.ec2, templateId, recordTags);

      const current = live.filter((i) => i.revision === rev.name && i.spec === specHash && !i.interrupted);
      const desired = state === 'hibernated' ? 0 : rev.replicas;
      const { kept, excess } = keepForBase(current, desired, placement.onDemandBase);
      for (const i of kept) keep.add(i.id);
      if (excess.length > 0) {
        await terminate(
          this.ec2,
          excess.map((i) => i.id),
        );
        this.log(`deployment "${spec.id}" revision "${rev.name}": terminated ${excess.map((i) => i.id).join(', ')}`);
      }
      const missing = desired - kept.length;
      if (missing > 0) {
        const onDemandHave = kept.filter((i) => i.lifecycle === 'on-demand').length;
        const onDemand = Math.min(missing, Math.max(0, Math.min(placement.onDemandBase, desired) - onDemandHave));
        const ids = await this.launch({
          launchTemplateId: templateId,
          launchTemplateVersion: String(template.LatestVersionNumber ?? 1),
          pools: placement.pools,
          subnets,
          spot: missing - onDemand,
          onDemand,
          tags,
          // The same state of EC2 gives the same token: a retry returns the fleet it already made.
          clientToken: token(spec.id, rev.name, specHash, String(desired), ...kept.map((i) => i.id).sort()),
        });
        for (const id of ids) keep.add(id);
        waitFor.push(...ids);
        this.log(`deployment "${spec.id}" revision "${rev.name}": launched ${ids.join(', ')}`);
      }
      // Not ready yet from an earlier, interrupted apply: wait for those too.
      waitFor.push(...kept.filter((i) => i.state !== 'running').map((i) => i.id));
    }
    if (waitFor.length > 0) await this.waitReady(waitFor);
    // Old specs, removed revisions, and interrupted instances that are still there (EC2 reclaims them).
    const leaving = live.filter((i) => !keep.has(i.id) && !i.interrupted).map((i) => i.id);
    if (leaving.length > 0) {
      await terminate(this.ec2, leaving);
      this.log(`deployment "${spec.id}": terminated instances of older specs ${leaving.join(', ')}`);
    }
    for (const t of templates)
      if (t.LaunchTemplateId && !keptTemplates.has(t.LaunchTemplateId))
        await deleteLaunchTemplate(this.ec2, t.LaunchTemplateId);
  }

  /** One instant fleet, and the on-demand fallback for spot it could not launch. Resolves to the instance ids. */
  private async launch(request: FleetRequest): Promise<string[]> {
    const answer = await this.ec2.send(new CreateFleetCommand(buildFleetRequest(request)));
    const launched = launchedCounts(answer.Instances);
    const fallback = onDemandFallback(request, launched);
    if (fallback) {
      const why = (answer.Errors ?? []).map((e) => `${e.ErrorCode}: ${e.ErrorMessage}`).join('; ');
      this.log(`spot capacity short by ${fallback.onDemand} (${why || 'no reason given'}); launching on demand`);
      const second = await this.ec2.send(new CreateFleetCommand(buildFleetRequest(fallback)));
      const more = launchedCounts(second.Instances);
      launched.ids.push(...more.ids);
      if (more.onDemand < fallback.onDemand) {
        const errors = (second.Errors ?? []).map((e) => `${e.ErrorCode}: ${e.ErrorMessage}`).join('; ');
        throw new Error(
          `EC2 launched ${launched.ids.length} of ${request.spot + request.onDemand} instances (${errors || 'no reason given'})`,
        );
      }
    }
    return launched.ids;
  }

  /** Until every instance runs (and, with `http` readiness, its replica answers). */
  private async waitReady(ids: string[]): Promise<void> {
    const deadline = Date.now() + (this.opts.readyTimeoutMs ?? 15 * 60_000);
    const pending = new Set(ids);
    for (;;) {
      const page = await this.ec2.send(new DescribeInstancesCommand({ InstanceIds: [...pending] }));
      for (const r of page.Reservations ?? [])
        for (const i of r.Instances ?? []) {
          const state = i.State?.Name;
          if (state === 'terminated' || state === 'shutting-down')
            throw new Error(`instance ${i.InstanceId} ${state} while starting (see its console output)`);
          if (state !== 'running') continue;
          if (
            this.opts.readiness === 'instance-state' ||
            (await replicaReady(i.PublicIpAddress ?? i.PrivateIpAddress, this.port))
          )
            pending.delete(i.InstanceId as string);
        }
      if (pending.size === 0) return;
      if (Date.now() > deadline)
        throw new Error(
          `instances ${[...pending].join(', ')} were not ready within ${this.opts.readyTimeoutMs ?? 900_000} ms`,
        );
      await new Promise((r) => setTimeout(r, this.opts.pollMs ?? 5000));
    }
  }

  private specOf(id: string, records: RevisionRecord[]): DeploymentSpec {
    const first = records[0];
    return {
      id,
      model: first?.model ?? '',
      ...(records.length === 1 && first.name === 'default'
        ? { image: first.image, replicas: first.replicas }
        : {
            replicas: first?.replicas ?? 0,
            revisions: records.map((r) => ({ name: r.name, image: r.image, replicas: r.replicas })),
          }),
      ...(first ? { resources: first.resources } : {}),
    };
  }

  private statusOf(id: string, records: RevisionRecord[], instances: FerryInstance[]): Ec2DeploymentStatus {
    const spec = this.specOf(id, records);
    const hibernated = records.length > 0 && records.every((r) => r.state === 'hibernated');
    const serving = instances.filter((i) => !i.interrupted);
    const replicas: ReplicaStatus[] = serving.map((i) => ({
      // No local process: the instance is the replica (its id is in `instances`).
      pid: 0,
      port: this.port,
      startedAt: i.launchedAt,
      ready: i.state === 'running',
      revision: i.revision,
      inFlight: 0,
      runtime: 'runc',
    }));
    const revisions: RevisionStatus[] = records.map((r, index) => ({
      name: r.name,
      image: r.image,
      percent: index === 0 ? 100 : 0,
      desiredReplicas: hibernated ? 0 : r.replicas,
      readyReplicas: serving.filter((i) => i.revision === r.name && i.spec === r.spec && i.state === 'running').length,
      inFlight: 0,
      heldRequests: 0,
    }));
    const firstReady = serving.find((i) => i.state === 'running' && i.address);
    const launched = serving.map((i) => i.launchedAt).sort();
    const created = records
      .flatMap((r) => [r.template, ...r.others])
      .map((t) => (t.CreateTime ?? new Date(0)).toISOString())
      .sort();
    const { id: _id, ...specWithoutId } = spec;
    return {
      id,
      model: spec.model,
      state: hibernated ? 'hibernated' : 'running',
      // Each instance answers on its own address; there is no shared endpoint yet (see the module comment).
      endpoint: firstReady ? `http://${firstReady.address}:${this.port}` : '',
      desiredReplicas: revisions.reduce((n, r) => n + r.desiredReplicas, 0),
      replicas,
      ...(records[0] ? { image: records[0].image } : {}),
      createdAt: created[0] ?? new Date().toISOString(),
      runningSince: hibernated ? null : (launched[0] ?? null),
      lastRequestAt: null,
      requestsServed: 0,
      coldStarts: 0,
      lastWakeMs: null,
      restarts: 0,
      revisions,
      traffic: { split: records[0] ? { [records[0].name]: 100 } : {}, rules: [] },
      autoscaling: null,
      scaleToZeroAfterMs: null,
      inFlight: 0,
      heldRequests: 0,
      scaleEvents: [],
      events: [],
      resources: records[0]?.resources ?? this.opts.defaultResources ?? DEFAULT_RESOURCES,
      spec: specWithoutId,
      specVersion: token(...records.map((r) => `${r.name}:${r.spec}:${r.replicas}:${r.state}`)).slice(0, 16),
      region: this.region,
      instances,
    };
  }
}

function unsupported(what: string): Error {
  return new Error(`the ec2 target does not support ${what}`);
}

/** The spec's revisions: its `revisions`, or its one image as revision "default". Images only (no model dirs). */
export function revisionsOf(spec: DeploymentSpec): RevisionPlan[] {
  const list = spec.revisions ?? [{ name: 'default', image: spec.image, modelDir: spec.modelDir }];
  if (list.length === 0) throw new Error(`deployment "${spec.id}" has no revision`);
  return list.map((r) => {
    if (!r.image)
      throw new Error(
        `revision "${r.name}" of "${spec.id}": the ec2 target runs images (a model directory is local only)`,
      );
    const replicas = r.replicas ?? spec.replicas ?? 1;
    if (!Number.isInteger(replicas) || replicas < 0)
      throw new Error(`revision "${r.name}": replicas must be a whole number ≥ 0`);
    return { name: r.name, image: r.image, replicas };
  });
}

/**
 * Which of a revision's current instances stay when it should run `desired`: on-demand ones up to the
 * base first (the base is what survives a spot shortage), then spot, then any other on-demand; oldest
 * first within each. The rest are excess.
 */
export function keepForBase(
  current: FerryInstance[],
  desired: number,
  onDemandBase: number,
): { kept: FerryInstance[]; excess: FerryInstance[] } {
  const byAge = [...current].sort((a, b) => a.launchedAt.localeCompare(b.launchedAt) || a.id.localeCompare(b.id));
  const onDemand = byAge.filter((i) => i.lifecycle === 'on-demand');
  const spot = byAge.filter((i) => i.lifecycle === 'spot');
  const base = Math.min(onDemandBase, desired);
  const order = [...onDemand.slice(0, base), ...spot, ...onDemand.slice(base)];
  return { kept: order.slice(0, desired), excess: order.slice(desired) };
}

/** The revisions recorded in a deployment's launch templates: per revision its newest template. */
function revisionRecords(templates: LaunchTemplate[]): RevisionRecord[] {
  const byRevision = new Map<string, LaunchTemplate[]>();
  for (const t of templates) {
    const rev = tagValue(t.Tags, TAG.revision);
    if (rev === undefined) continue;
    byRevision.set(rev, [...(byRevision.get(rev) ?? []), t]);
  }
  const records: RevisionRecord[] = [];
  for (const [name, list] of byRevision) {
    list.sort((a, b) => (b.CreateTime?.getTime() ?? 0) - (a.CreateTime?.getTime() ?? 0));
    const [template, ...others] = list;
    const tags = template.Tags;
    const [cpus, memoryMb] = (tagValue(tags, TAG.resources) ?? '1/1024').split('/').map(Number);
    records.push({
      name,
      order: Number(tagValue(tags, TAG.order) ?? 0),
      image: JSON.parse(tagValue(tags, TAG.image) ?? '{}') as ImageRef,
      replicas: Number(tagValue(tags, TAG.replicas) ?? 0),
      resources: { cpus, memoryMb },
      state: tagValue(tags, TAG.state) === 'hibernated' ? 'hibernated' : 'running',
      spec: tagValue(tags, TAG.spec) ?? '',
      model: tagValue(tags, TAG.model) ?? '',
      template,
      others,
    });
  }
  return records.sort((a, b) => a.order - b.order || a.name.localeCompare(b.name));
}

async function replicaReady(address: string | undefined, port: number): Promise<boolean> {
  if (!address) return false;
  try {
    const res = await fetch(`http://${address}:${port}/v2/health/ready`, { signal: AbortSignal.timeout(2000) });
    return res.ok;
  } catch {
    return false;
  }
}
