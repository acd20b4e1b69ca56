/** The `ferry` commands that talk to a running Ferry (Temporal, the gateway) through the SDK. */
import { readFile } from 'node:fs/promises';
import { formatTradeoffTable, tableFootnotes } from '../../lib/optimize/table';
import type { DeploymentStatus, OptimizeSettings, PredictiveMode } from '../../workflows/types';
import { type DeployOptions, type FerryClient, FerryError, type InferRequest } from '../sdk';
import { decisionLine, printDeploymentOptions } from './deploymentOptions';
import { bar, describeHeartbeat, formatBytes, StageProgressPrinter } from './progress';

export interface DeployCommandOptions {
  review: boolean;
  model?: string;
  version?: string;
  replicas?: number;
  approvalTimeoutMs?: number;
  idleHibernateMs?: number;
  /** The monitor's predictive scaling (default off). */
  predictive?: PredictiveMode;
  wait: boolean;
  optimize?: OptimizeSettings;
  /** Deploy as a canary revision of a live deployment (see DeployOptions.canary). */
  canary?: { percent: number; of?: string };
  /** Inference without a key (`--public`). */
  public?: boolean;
  /** The project it belongs to (`--project`); default `default`. */
  project?: string;
  /** `--target local|kubernetes [--namespace N]`; absent: where the cost engine's choice deploys. */
  target?: DeployOptions['target'];
  /** `--traffic` and the constraints the deploy stage plans with. */
  cost?: DeployOptions['cost'];
}

export async function deployCommand(
  ferry: FerryClient,
  file: string,
  opts: DeployCommandOptions,
): Promise<DeploymentStatus | undefined> {
  let lastShown = -1;
  const started = await ferry.deploy(file, {
    model: opts.model,
    version: opts.version,
    mode: opts.review ? 'review' : 'one-click',
    replicas: opts.replicas,
    approvalTimeoutMs: opts.approvalTimeoutMs,
    monitor: {
      ...(opts.idleHibernateMs ? { idleHibernateMs: opts.idleHibernateMs } : {}),
      ...(opts.predictive && opts.predictive !== 'off' ? { predictive: opts.predictive } : {}),
    },
    optimize: opts.optimize,
    canary: opts.canary,
    // The CLI acts for this machine's operator, so it may deploy into any project (`default` unless named);
    // the model name is claimed for that project before the upload.
    access: { project: opts.project ?? 'default', public: opts.public === true },
    ...(opts.target ? { target: opts.target } : {}),
    ...(opts.cost ? { cost: opts.cost } : {}),
    onUploadProgress: (sent, total) => {
      const pct = total ? (100 * sent) / total : 100;
      if (process.stdout.isTTY) process.stdout.write(`\r  upload ${bar(pct)} ${formatBytes(sent)}`);
      else if (Math.floor(pct / 25) > lastShown) {
        lastShown = Math.floor(pct / 25);
        console.log(`  upload ${Math.round(pct)}% (${formatBytes(sent)})`);
      }
    },
  });
  if (process.stdout.isTTY) process.stdout.write('\r\x1b[2K');
  if (started.alreadyExisted) {
    console.log(`Deployment ${started.deploymentId} already exists for this model version; not starting it again.`);
  } else {
    console.log(
      `Deploying ${started.deploymentId} (${opts.review ? 'review' : 'one-click'} mode${opts.canary ? `, as a canary with ${opts.canary.percent}% of the traffic` : ''})`,
    );
  }
  console.log(`  Temporal UI: ${ferry.temporalUiUrl(started.workflowId)}`);
  if (!opts.wait) return undefined;
  const status = await watchDeployment(ferry, started.deploymentId);
  printDeploymentSummary(ferry, status);
  return status;
}

/** Polls the status Query until the run is live or failed, printing stages as they advance. */
export async function watchDeployment(ferry: FerryClient, ref: string): Promise<DeploymentStatus> {
  const printer = new StageProgressPrinter();
  let announcedApproval = false;
  for (;;) {
    const status = await ferry.status(ref);
    const progress =
      status.phase === 'live' || status.phase === 'failed' ? [] : await ferry.activityProgress(ref).catch(() => []);
    printer.update(status, describeHeartbeat(progress[0]?.details));
    if (status.phase === 'awaiting-approval' && !announcedApproval) {
      announcedApproval = true;
      printer.clearLive();
      printPlans(status);
      printDeploymentOptions(status);
      console.log(
        `  Waiting for approval until ${status.approvalDeadline} (then the default, ${status.defaultPlan}, is taken):`,
      );
      console.log(
        `    ferry approve ${status.deploymentId} --plan <${(status.plans ?? [])
          .filter((p) => p.withinBudget !== false)
          .map((p) => p.id)
          .join('|')}>${status.deploymentOptions ? ' [--option <id>]' : ''}`,
      );
    }
    if (status.phase === 'live') return status;
    if (status.phase === 'failed') throw new FerryError(status.error ?? 'deployment failed');
    await new Promise((r) => setTimeout(r, 400));
  }
}

function printPlans(status: DeploymentStatus): void {
  if (status.optimization) {
    // The plans are the measured candidates: show the table they were measured in.
    console.log('  Optimization candidates (measured against the original in one run):');
    for (const line of formatTradeoffTable(status.optimization, { indent: '    ', chosen: status.chosenPlan?.plan }))
      console.log(line);
    for (const line of tableFootnotes(status.optimization, '    ').slice(0, 1)) console.log(line);
    return;
  }
  console.log('  Optimization plans:');
  for (const p of status.plans ?? []) {
    console.log(`    ${p.id === status.defaultPlan ? '*' : ' '} ${p.id.padEnd(16)} ${p.title}: ${p.expectedEffect}`);
  }
}

export function printDeploymentSummary(ferry: FerryClient, s: DeploymentStatus): void {
  if (s.benchmark) {
    const b = s.benchmark;
    console.log(
      `  Benchmark (${b.plan} vs original, batch ${b.batchSize}, ${b.iterations} runs): p50 ${b.candidate.latency.p50Ms.toFixed(3)} ms vs ${b.original.latency.p50Ms.toFixed(3)} ms, ` +
        `p95 ${b.candidate.latency.p95Ms.toFixed(3)} ms vs ${b.original.latency.p95Ms.toFixed(3)} ms, size ${formatBytes(b.candidate.sizeBytes)} vs ${formatBytes(b.original.sizeBytes)}, max |diff| ${b.maxAbsDiff.toExponential(2)}`,
    );
  }
  if (s.image)
    console.log(
      `  Image:       ${s.image.registry.replace(/^https?:\/\//, '')}/${s.image.repository}@${s.image.digest}`,
    );
  if (s.canary) {
    const c = s.canary;
    console.log(
      `  Canary:      revision ${c.revision} of ${c.baseDeploymentId}, ${c.percent}% of its traffic (split ${Object.entries(
        c.split,
      )
        .map(([r, p]) => `${r}=${p}%`)
        .join(', ')})`,
    );
    console.log(`               responses carry x-ferry-revision; send x-ferry-variant: ${c.revision} to ask for it`);
    console.log(
      `               ferry promote ${c.baseDeploymentId} --revision ${c.revision}   |   ferry rollback ${c.baseDeploymentId}`,
    );
  }
  const decided = decisionLine(s);
  if (decided) console.log(`  Option:      ${decided}`);
  console.log(`  Endpoint:    ${s.inferUrl ?? '-'}`);
  console.log(`  Dashboard:   ${ferry.dashboardUrl(s.deploymentId)}`);
  console.log(`  Temporal UI: ${ferry.temporalUiUrl(`deploy:${s.model}:${s.version}`)}`);
}

export async function statusCommand(ferry: FerryClient, ref: string, json: boolean): Promise<void> {
  const status = await ferry.status(ref);
  const serving = await ferry.serving(ref);
  if (json) {
    console.log(JSON.stringify({ ...status, serving }, null, 2));
    return;
  }
  console.log(`${status.deploymentId}: ${status.phase} ${bar(status.percent)}`);
  for (const s of status.stages) console.log(`  ${s.state.padEnd(8)} ${s.stage.padEnd(9)} ${s.detail ?? ''}`);
  if (status.phase === 'awaiting-approval' || status.optimization) printPlans(status);
  printDeploymentOptions(status);
  if (status.chosenPlan)
    console.log(
      `  Plan: ${status.chosenPlan.plan} (${status.chosenPlan.source}${status.chosenPlan.approvedBy ? ` by ${status.chosenPlan.approvedBy}` : ''})`,
    );
  if (serving) {
    const l = serving.lastSample;
    console.log(
      `  Serving: ${serving.servingState}, ${serving.hibernations} hibernation(s)` +
        (l
          ? `, ${l.requestCount} requests, p50 ${l.latencyP50Ms?.toFixed(2) ?? '-'} ms, p95 ${l.latencyP95Ms?.toFixed(2) ?? '-'} ms, idle ${Math.round(l.idleMs / 1000)}s`
          : ''),
    );
    const c = serving.cost;
    if (c)
      console.log(
        `  Cost: ${c.per1kUsd === null ? '-' : `$${c.per1kUsd.toPrecision(3)}`} per 1k, $${c.perDayUsd.toPrecision(3)}/day, ` +
          `~$${c.projectedMonthUsd.toPrecision(3)}/month (idle $${c.idleUsd.toPrecision(3)}), ` +
          `${Math.round(c.replicaSeconds)} replica-s, ${c.coldStarts} cold start(s) since ${c.since} (ferry cost ${status.deploymentId})`,
      );
    for (const a of serving.anomalies ?? [])
      console.log(`  Anomaly: ${a.signal} since ${a.since} (score ${a.peakScore.toFixed(1)})`);
    const p = serving.predictive;
    if (p)
      console.log(
        `  Predictive (${p.mode}): floor ${p.floor}${p.applied ? ' (set)' : ''}${p.woke ? ', woke it' : ''}; ` +
          `${p.reason} (${p.expectedRequests.toFixed(0)} requests expected in ${p.leadMinutes} min, at ${p.at})`,
      );
  }
  if (status.canary) {
    // The workflow says what the deploy stage did; the gateway says what is served now (after a promote or a rollback).
    const base = await ferry.gatewayStatus(status.canary.baseDeploymentId).catch(() => undefined);
    const now = base?.revisions.find((r) => r.name === status.canary!.revision);
    console.log(
      `  Serving: ${now ? `revision ${now.name} of ${base!.id}, ${now.percent}% of its traffic now (${now.readyReplicas}/${now.desiredReplicas} replicas ready)` : base ? `no longer: ${base.id} has no revision ${status.canary.revision} now (rolled back or replaced)` : `no longer: ${status.canary.baseDeploymentId} is not served`}`,
    );
  } else if (status.inferUrl) {
    const own = await ferry.gatewayStatus(status.deploymentId).catch(() => undefined);
    if (own && (own.revisions.length > 1 || own.revisions[0]?.name !== 'default')) {
      console.log(
        `  Revisions: ${own.revisions.map((r) => `${r.name} ${r.percent}%`).join(', ')}${own.traffic.rules.length ? ` (+${own.traffic.rules.length} header rule(s))` : ''}`,
      );
    }
  }
  if (status.error) console.log(`  Error: ${status.error}`);
  printDeploymentSummary(ferry, status);
}

export async function listCommand(ferry: FerryClient, json: boolean): Promise<void> {
  const rows = await ferry.list();
  if (json) {
    console.log(JSON.stringify(rows, null, 2));
    return;
  }
  if (!rows.length) {
    console.log('No deployments yet. Deploy one with: ferry deploy ./model.onnx');
    return;
  }
  const w = Math.max(10, ...rows.map((r) => r.deploymentId.length));
  console.log(
    `${'DEPLOYMENT'.padEnd(w)}  ${'STAGE'.padEnd(18)}  ${'RUN'.padEnd(10)}  ${'STARTED'.padEnd(24)}  SERVING`,
  );
  for (const r of rows)
    console.log(
      `${r.deploymentId.padEnd(w)}  ${r.stage.padEnd(18)}  ${r.status.padEnd(10)}  ${r.startTime.padEnd(24)}  ${r.serving ?? '-'}`,
    );
}

export async function inferCommand(ferry: FerryClient, ref: string, inputFile: string): Promise<void> {
  const raw = await readFile(inputFile, 'utf8').catch(() => {
    throw new FerryError(`input file ${inputFile} cannot be read`);
  });
  let request: InferRequest;
  try {
    request = JSON.parse(raw);
  } catch (err) {
    throw new FerryError(`input file ${inputFile} is not JSON: ${(err as Error).message}`);
  }
  if (!Array.isArray(request.inputs))
    throw new FerryError(`input file ${inputFile} needs an "inputs" array (Open Inference Protocol v2)`);
  console.log(JSON.stringify(await ferry.infer(ref, request), null, 2));
}
