/**
 * The replica agent: beside each replica on a spot instance, it polls the metadata service (every 5 s by
 * default, as AWS advises) for the interruption notice and the rebalance recommendation. On one it drains
 * its replica without losing a request:
 *   1. it asks Ferry (the gateway's control API) to drain the replica — out of routing at once, a
 *      replacement started, the zone it was in named so the replacement goes elsewhere — and retries until
 *      Ferry answers or little time is left;
 *   2. then it sends the replica SIGTERM: the inference server stops accepting, finishes what is in flight
 *      (no new requests come, Ferry routes elsewhere), and exits;
 *   3. it stays idle until the instance goes.
 */
import { MetadataClient } from './imds';
import { type AgentPhase, type Decision, decide, type Notice, parseInstanceAction, parseRebalance } from './notices';
import { askToDrain, findReplicaPid, isAlive } from './replicaProcess';

export interface AgentSettings {
  /** Default http://169.254.169.254. */
  metadataUrl: string;
  pollMs: number;
  onRebalance: 'drain' | 'ignore';
  /** Ferry's control API (e.g. the gateway's URL) and the deployment the replica belongs to. */
  ferryUrl?: string;
  ferryKey?: string;
  deployment?: string;
  /** The replica's id at Ferry (the pid the gateway lists); default the replica's pid. */
  replica?: string;
  replicaPid?: number;
  /** Found in /proc when no pid is given, e.g. "/usr/bin/node /app/server.js". */
  replicaCmdline?: string;
  log?: (event: Record<string, unknown>) => void;
}

export interface DrainReport {
  reason: string;
  notice: Notice;
  /** Ferry's answer to the drain request (HTTP status), or why there was none. */
  ferry: { status: number } | { error: string } | 'not configured';
  signalled: boolean;
  startedAt: string;
  finishedAt: string;
}

/** What is left for asking Ferry once a notice says when the instance goes: the replica still needs time to finish. */
const KEEP_FOR_THE_REPLICA_MS = 30_000;

export class ReplicaAgent {
  phase: AgentPhase = 'serving';
  drained: Promise<DrainReport> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly metadata: MetadataClient;

  constructor(private readonly s: AgentSettings) {
    this.metadata = new MetadataClient(s.metadataUrl);
  }

  start(): void {
    const tick = async () => {
      if (this.stopped) return;
      try {
        await this.pollOnce();
      } catch (err) {
        this.log({ event: 'poll-failed', error: (err as Error).message });
      }
      if (!this.stopped) this.timer = setTimeout(tick, this.s.pollMs);
    };
    void tick();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** One poll of both paths; starts the drain when the decision says so. */
  async pollOnce(): Promise<Decision> {
    const [action, rebalance] = await Promise.all([
      this.metadata.get('spot/instance-action').then(parseInstanceAction),
      this.metadata.get('events/recommendations/rebalance').then(parseRebalance),
    ]);
    const decision = decide(this.phase, [action, rebalance], { onRebalance: this.s.onRebalance });
    if (decision.drain) {
      this.phase = 'draining';
      this.log({ event: 'notice', reason: decision.reason, notice: decision.notice });
      this.drained = this.drain(decision.reason, decision.notice);
    }
    return decision;
  }

  private async drain(reason: string, notice: Notice): Promise<DrainReport> {
    const startedAt = new Date().toISOString();
    const [instanceId, zone] = await Promise.all([
      this.metadata.required('instance-id').catch(() => undefined),
      this.metadata.required('placement/availability-zone').catch(() => undefined),
    ]);
    const pid = this.s.replicaPid ?? (this.s.replicaCmdline ? await findReplicaPid(this.s.replicaCmdline) : undefined);
    const ferry = await this.askFerry(reason, notice, pid, instanceId, zone);
    this.log({ event: 'ferry-asked', ferry });
    // Ferry routes elsewhere once it has answered; without it, the replica drains now all the same.
    const signalled = pid !== undefined && isAlive(pid) && askToDrain(pid);
    this.log({ event: 'replica-signalled', pid, signalled });
    if (pid !== undefined) while (isAlive(pid)) await new Promise((r) => setTimeout(r, 200));
    this.phase = 'drained';
    const report: DrainReport = { reason, notice, ferry, signalled, startedAt, finishedAt: new Date().toISOString() };
    this.log({ event: 'drained', ...report });
    return report;
  }

  private async askFerry(
    reason: string,
    notice: Notice,
    pid: number | undefined,
    instanceId: string | undefined,
    zone: string | undefined,
  ): Promise<DrainReport['ferry']> {
    const replica = this.s.replica ?? (pid !== undefined ? String(pid) : undefined);
    if (!this.s.ferryUrl || !this.s.deployment || replica === undefined) return 'not configured';
    const url = `${this.s.ferryUrl.replace(/\/+$/, '')}/_ferry/deployments/${encodeURIComponent(this.s.deployment)}/replicas/${encodeURIComponent(replica)}/drain`;
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.s.ferryKey) headers.authorization = `Bearer ${this.s.ferryKey}`;
    const body = JSON.stringify({ reason, ...(zone ? { zone } : {}), ...(instanceId ? { instanceId } : {}) });
    const goesAt = notice.kind === 'interruption' ? Date.parse(notice.at) : Number.NaN;
    const giveUpAt = Number.isFinite(goesAt) ? goesAt - KEEP_FOR_THE_REPLICA_MS : Date.now() + 60_000;
    let last = '';
    for (let delay = 250; ; delay = Math.min(delay * 2, 4000)) {
      try {
        const res = await fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(5000) });
        const text = await res.text();
        // A 4xx will not get better by asking again (unknown replica, no key): drain locally.
        if (res.ok || (res.status >= 400 && res.status < 500)) {
          if (!res.ok) this.log({ event: 'ferry-refused', status: res.status, answer: text.slice(0, 300) });
          return { status: res.status };
        }
        last = `HTTP ${res.status}: ${text.slice(0, 200)}`;
      } catch (err) {
        last = (err as Error).message;
      }
      if (Date.now() + delay > giveUpAt) return { error: last };
      await new Promise((r) => setTimeout(r, delay));
    }
  }

  private log(event: Record<string, unknown>): void {
    (this.s.log ?? ((e) => process.stdout.write(`${JSON.stringify({ at: new Date().toISOString(), ...e })}\n`)))(event);
  }
}

/** The agent's settings from its environment (FERRY_AGENT_*), as the user data sets them. */
export function agentSettingsFromEnv(env: NodeJS.ProcessEnv): AgentSettings {
  const pollMs = Number(env.FERRY_AGENT_POLL_MS ?? 5000);
  if (!Number.isFinite(pollMs) || pollMs < 50)
    throw new Error(`FERRY_AGENT_POLL_MS must be ≥ 50, got "${env.FERRY_AGENT_POLL_MS}"`);
  const onRebalance = env.FERRY_AGENT_ON_REBALANCE ?? 'drain';
  if (onRebalance !== 'drain' && onRebalance !== 'ignore')
    throw new Error(`FERRY_AGENT_ON_REBALANCE must be drain or ignore, got "${onRebalance}"`);
  const pid = env.FERRY_AGENT_REPLICA_PID ? Number(env.FERRY_AGENT_REPLICA_PID) : undefined;
  if (pid !== undefined && !(Number.isInteger(pid) && pid > 0))
    throw new Error(`FERRY_AGENT_REPLICA_PID must be a pid, got "${env.FERRY_AGENT_REPLICA_PID}"`);
  return {
    metadataUrl: env.FERRY_AGENT_METADATA_URL || 'http://169.254.169.254',
    pollMs,
    onRebalance,
    ...(env.FERRY_AGENT_FERRY_URL ? { ferryUrl: env.FERRY_AGENT_FERRY_URL } : {}),
    ...(env.FERRY_AGENT_KEY ? { ferryKey: env.FERRY_AGENT_KEY } : {}),
    ...(env.FERRY_AGENT_DEPLOYMENT ? { deployment: env.FERRY_AGENT_DEPLOYMENT } : {}),
    ...(env.FERRY_AGENT_REPLICA ? { replica: env.FERRY_AGENT_REPLICA } : {}),
    ...(pid !== undefined ? { replicaPid: pid } : {}),
    ...(env.FERRY_AGENT_REPLICA_CMDLINE ? { replicaCmdline: env.FERRY_AGENT_REPLICA_CMDLINE } : {}),
  };
}
