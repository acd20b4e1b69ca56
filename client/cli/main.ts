#!/usr/bin/env -S node --import tsx
/**
 * The `ferry` command line. `ferry help` lists the commands.
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '../../lib/config';
import { parseBudget } from '../../lib/optimize/budget';
import type { AccuracyBudget } from '../../workflows/types';
import { FerryClient, FerryError } from '../sdk';
import { describeStart, FERRY_SERVICES, serviceStatus, startService, stopService } from '../services';
import { deployCommand, inferCommand, listCommand, statusCommand } from './commands';
import { parseDuration } from './duration';

const HELP = `ferry — deploy a trained model at the lowest cost that meets its latency goal

Deploy and operate
  ferry deploy <model.onnx> [--review] [--name N] [--version V] [--replicas N]
                            [--approval-timeout 10m] [--idle-hibernate 15m] [--no-wait]
                            [--techniques a,b] [--accuracy-budget cosine=0.99,top1=0.99]
                            [--canary PERCENT [--canary-of <deployment>]]
      --canary: the new version becomes a revision (named after the version) of the model's live
      deployment (or --canary-of's) with PERCENT of its traffic; the others keep the rest
  ferry promote <deployment> --revision <name> [--json]
      all traffic to that revision, then the other revisions are removed (replicas drained)
  ferry rollback <deployment> [--json]
      back to the deployment's first revision (the one before its canaries); the others are removed
  ferry status <deployment> [--json]
  ferry approve <deployment> --plan <plan> [--by NAME] [--signal]
  ferry list [--json]
  ferry infer <deployment> --input request.json
  ferry undeploy <deployment>

Traffic and scaling of a served deployment (changed at run time, no replica restarted)
  ferry traffic <deployment> [--json]   revisions, traffic split and header rules
  ferry traffic <deployment> [--split stable=90,canary=10] [--rule header:value=revision ...] [--clear-rules]
      --split replaces the split (must add up to 100); --rule adds a header rule (same header and
      value: replaced); --clear-rules drops the current rules first; what is not given stays
  ferry scale <deployment> [--json]     desired/ready replicas per revision, autoscaling, scale to zero
  ferry scale <deployment> --replicas N                      a fixed count per revision
  ferry scale <deployment> [--min N] [--max N] [--target-concurrency X] [--scale-down-delay 30s]
      autoscaling on requests in flight; flags not given keep their current values
  ferry scale <deployment> [--scale-to-zero-after 10m | --no-scale-to-zero]   (with either form, or alone)

Optimize without deploying (needs no Ferry services)
  ferry optimize <model.onnx> --out DIR [--techniques a,b] [--calibration data.json]
                 [--accuracy-budget cosine=0.99,top1=0.99,maxabs=X] [--inputs inputs.json]
                 [--threads N] [--same-machine] [--measure-ms N] [--json]
      every candidate measured against the original; models and report.json written to DIR

Run Ferry on this machine
  ferry up | ferry down | ferry ps      start/stop/show the worker, gateway and API (after: bash infra/stack.sh start)
  ferry demo                            one-click deploy of the example model and one inference
  ferry example [--out FILE] [--size-mb N]   write the example ONNX model
  ferry serve <model.onnx> [more.onnx ...] [--port N] [--host H] [--threads N]
              [--batch N [--max-queue-delay MS]]      the inference server alone (or a ferry-models.json)
  ferry worker | ferry gateway | ferry api               run one service in the foreground

<deployment> is a deployment id (model-version), model:version, or a model name (its latest deployment).`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const config = loadConfig();
  const withClient = async <T>(fn: (ferry: FerryClient) => Promise<T>): Promise<T> => {
    const ferry = await FerryClient.connect(config);
    try {
      return await fn(ferry);
    } finally {
      await ferry.close();
    }
  };

  switch (command) {
    case 'deploy': {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: {
          review: { type: 'boolean', default: false },
          name: { type: 'string' },
          version: { type: 'string' },
          replicas: { type: 'string' },
          'approval-timeout': { type: 'string' },
          'idle-hibernate': { type: 'string' },
          'no-wait': { type: 'boolean', default: false },
          techniques: { type: 'string' },
          'accuracy-budget': { type: 'string' },
          canary: { type: 'string' },
          'canary-of': { type: 'string' },
        },
      });
      if (positionals.length !== 1)
        throw new FerryError(
          'usage: ferry deploy <model.onnx> [--review] [--canary PERCENT [--canary-of <deployment>]]',
        );
      if (values['canary-of'] !== undefined && values.canary === undefined)
        throw new FerryError('--canary-of needs --canary PERCENT');
      if (values.canary !== undefined && values.replicas !== undefined) {
        throw new FerryError(
          "--replicas cannot be given with --canary: the revision follows its deployment's scaling (change it with `ferry scale`)",
        );
      }
      const { parseCanaryPercent } = await import('./canary');
      const canary =
        values.canary === undefined
          ? undefined
          : { percent: parseCanaryPercent(values.canary), of: values['canary-of'] };
      const optimize =
        values.techniques || values['accuracy-budget']
          ? {
              techniques: values.techniques ? splitList(values.techniques) : undefined,
              budget: values['accuracy-budget'] ? budgetOption(values['accuracy-budget']) : undefined,
            }
          : undefined;
      await withClient((ferry) =>
        deployCommand(ferry, positionals[0], {
          review: values.review!,
          model: values.name,
          version: values.version,
          replicas: values.replicas ? positiveInt('--replicas', values.replicas) : undefined,
          approvalTimeoutMs: values['approval-timeout'] ? parseDuration(values['approval-timeout']) : undefined,
          idleHibernateMs: values['idle-hibernate'] ? parseDuration(values['idle-hibernate']) : undefined,
          wait: !values['no-wait'],
          optimize,
          canary,
        }),
      );
      return 0;
    }
    case 'optimize': {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: {
          out: { type: 'string' },
          techniques: { type: 'string' },
          calibration: { type: 'string' },
          inputs: { type: 'string' },
          'accuracy-budget': { type: 'string' },
          threads: { type: 'string' },
          'same-machine': { type: 'boolean', default: false },
          'measure-ms': { type: 'string' },
          json: { type: 'boolean', default: false },
        },
      });
      if (positionals.length !== 1 || !values.out)
        throw new FerryError('usage: ferry optimize <model.onnx> --out DIR [--techniques a,b] [--json]');
      const { optimizeCommand } = await import('./optimize');
      await optimizeCommand(positionals[0], {
        out: values.out,
        techniques: values.techniques ? splitList(values.techniques) : undefined,
        calibrationFile: values.calibration,
        inputsFile: values.inputs,
        budget: values['accuracy-budget'] ? budgetOption(values['accuracy-budget']) : undefined,
        target: {
          ...(values.threads ? { threads: positiveInt('--threads', values.threads) } : {}),
          sameMachine: values['same-machine'],
        },
        measureMs: values['measure-ms'] ? positiveInt('--measure-ms', values['measure-ms']) : undefined,
        json: values.json!,
      });
      return 0;
    }
    case 'status': {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: { json: { type: 'boolean', default: false } },
      });
      if (positionals.length !== 1) throw new FerryError('usage: ferry status <deployment> [--json]');
      await withClient((ferry) => statusCommand(ferry, positionals[0], values.json!));
      return 0;
    }
    case 'approve': {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: { plan: { type: 'string' }, by: { type: 'string' }, signal: { type: 'boolean', default: false } },
      });
      if (positionals.length !== 1 || !values.plan)
        throw new FerryError('usage: ferry approve <deployment> --plan <plan>');
      await withClient(async (ferry) => {
        if (values.signal) {
          await ferry.approveBySignal(positionals[0], values.plan!, values.by ?? 'cli');
          console.log(`Approval signal for plan ${values.plan} sent to ${positionals[0]}.`);
        } else {
          const chosen = await ferry.approve(positionals[0], values.plan!, values.by ?? process.env.USER ?? 'cli');
          console.log(`Approved plan ${chosen.plan} for ${positionals[0]}.`);
        }
      });
      return 0;
    }
    case 'list': {
      const { values } = parseArgs({ args: rest, options: { json: { type: 'boolean', default: false } } });
      await withClient((ferry) => listCommand(ferry, values.json!));
      return 0;
    }
    case 'infer': {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: { input: { type: 'string' } },
      });
      if (positionals.length !== 1 || !values.input)
        throw new FerryError('usage: ferry infer <deployment> --input request.json');
      await withClient((ferry) => inferCommand(ferry, positionals[0], values.input!));
      return 0;
    }
    case 'traffic': {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: {
          split: { type: 'string' },
          rule: { type: 'string', multiple: true },
          'clear-rules': { type: 'boolean', default: false },
          json: { type: 'boolean', default: false },
        },
      });
      if (positionals.length !== 1)
        throw new FerryError(
          'usage: ferry traffic <deployment> [--split a=90,b=10] [--rule header:value=revision ...] [--clear-rules] [--json]',
        );
      const { parseTrafficFlags, trafficCommand } = await import('./traffic');
      const request = parseTrafficFlags(values);
      await withClient((ferry) => trafficCommand(ferry, positionals[0], request, values.json!));
      return 0;
    }
    case 'scale': {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: {
          replicas: { type: 'string' },
          min: { type: 'string' },
          max: { type: 'string' },
          'target-concurrency': { type: 'string' },
          'scale-down-delay': { type: 'string' },
          'scale-to-zero-after': { type: 'string' },
          'no-scale-to-zero': { type: 'boolean', default: false },
          json: { type: 'boolean', default: false },
        },
      });
      if (positionals.length !== 1)
        throw new FerryError(
          'usage: ferry scale <deployment> [--replicas N | --min N --max N ...] [--scale-to-zero-after 10m | --no-scale-to-zero] [--json]',
        );
      const { parseScaleFlags, scaleCommand } = await import('./traffic');
      const change = parseScaleFlags(values);
      await withClient((ferry) => scaleCommand(ferry, positionals[0], change, values.json!));
      return 0;
    }
    case 'promote': {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: { revision: { type: 'string' }, json: { type: 'boolean', default: false } },
      });
      if (positionals.length !== 1 || !values.revision)
        throw new FerryError('usage: ferry promote <deployment> --revision <name> [--json]');
      const { promoteCommand } = await import('./canary');
      await withClient((ferry) => promoteCommand(ferry, positionals[0], values.revision!, values.json!));
      return 0;
    }
    case 'rollback': {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: { json: { type: 'boolean', default: false } },
      });
      if (positionals.length !== 1) throw new FerryError('usage: ferry rollback <deployment> [--json]');
      const { rollbackCommand } = await import('./canary');
      await withClient((ferry) => rollbackCommand(ferry, positionals[0], values.json!));
      return 0;
    }
    case 'undeploy': {
      if (rest.length !== 1) throw new FerryError('usage: ferry undeploy <deployment>');
      await withClient(async (ferry) => {
        console.log(`Undeploying ${rest[0]}...`);
        await ferry.undeploy(rest[0]);
        console.log(`Undeployed ${rest[0]}: its replicas are stopped and its route removed.`);
      });
      return 0;
    }
    case 'up': {
      for (const name of FERRY_SERVICES) {
        console.log(describeStart(name, await startService(config, name)));
      }
      return 0;
    }
    case 'down': {
      // Replicas outlive a gateway restart (it adopts them); `down` means down, so hibernate them first.
      const { LocalTarget } = await import('../../lib/targets/local');
      const target = new LocalTarget(config.gateway.url);
      for (const d of await target.list().catch(() => [])) {
        if (d.replicas.length) {
          await target.hibernate(d.id);
          console.log(`deployment ${d.id}: hibernated (the next request after \`ferry up\` wakes it)`);
        }
      }
      for (const name of [...FERRY_SERVICES].reverse()) {
        console.log(`ferry ${name}: ${(await stopService(config, name)) ? 'stopped' : 'not running'}`);
      }
      return 0;
    }
    case 'ps': {
      let ok = true;
      for (const s of await serviceStatus(config)) {
        ok &&= s.healthy;
        console.log(
          `${s.name.padEnd(8)} ${s.healthy ? 'healthy' : s.pid ? 'unhealthy' : 'stopped'}${s.pid ? ` pid ${s.pid}` : ''}  log ${s.log}`,
        );
      }
      return ok ? 0 : 1;
    }
    case 'demo': {
      const { runDemo } = await import('./demo');
      await runDemo(config);
      return 0;
    }
    case 'example': {
      const { values } = parseArgs({ args: rest, options: { out: { type: 'string' }, 'size-mb': { type: 'string' } } });
      const { writeExampleModel } = await import('./demo');
      const file = await writeExampleModel(
        config,
        values.out,
        values['size-mb'] ? Number(values['size-mb']) : undefined,
      );
      console.log(file);
      return 0;
    }
    case 'serve': {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: {
          port: { type: 'string', default: '8000' },
          host: { type: 'string', default: '127.0.0.1' },
          threads: { type: 'string' },
          batch: { type: 'string' },
          'max-queue-delay': { type: 'string' },
        },
      });
      if (!positionals.length)
        throw new FerryError(
          'usage: ferry serve <model.onnx> [more.onnx ...] [--port N] [--host H] [--threads N] [--batch N [--max-queue-delay MS]]',
        );
      if (values['max-queue-delay'] !== undefined && values.batch === undefined)
        throw new FerryError('--max-queue-delay needs --batch N (dynamic batching is off without it)');
      const maxQueueDelayMs = values['max-queue-delay'] === undefined ? undefined : Number(values['max-queue-delay']);
      if (maxQueueDelayMs !== undefined && !(maxQueueDelayMs >= 0 && maxQueueDelayMs <= 60_000)) {
        throw new FerryError(
          `--max-queue-delay must be milliseconds in [0, 60000], got "${values['max-queue-delay']}"`,
        );
      }
      const { serveModelFiles } = await import('./serve');
      await serveModelFiles(positionals, positiveInt('--port', values.port!), {
        host: values.host,
        sessionOptions:
          values.threads === undefined ? undefined : { intraOpNumThreads: positiveInt('--threads', values.threads) },
        batching:
          values.batch === undefined
            ? undefined
            : {
                maxBatchSize: positiveInt('--batch', values.batch),
                ...(maxQueueDelayMs !== undefined ? { maxQueueDelayMs } : {}),
              },
      });
      return await new Promise<number>(() => {}); // until a signal stops it
    }
    case 'worker':
      await import('../../workers/main');
      return await new Promise<number>(() => {});
    case 'gateway': {
      const { startGateway } = await import('../../lib/gateway');
      const gw = await startGateway({
        port: config.gateway.port,
        host: config.gateway.host,
        stateDir: config.stateDir,
      });
      console.log(`ferry gateway: ${gw.url}`);
      const stop = () => gw.close().then(() => process.exit(0));
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
      return await new Promise<number>(() => {});
    }
    case 'api': {
      const { startApiServer } = await import('../api/server');
      const api = await startApiServer(config);
      console.log(`ferry api and dashboard: ${api.url}`);
      const stop = () => api.close().then(() => process.exit(0));
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
      return await new Promise<number>(() => {});
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(HELP);
      return 0;
    default:
      console.error(`unknown command "${command}"\n\n${HELP}`);
      return 2;
  }
}

function splitList(raw: string): string[] {
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

function budgetOption(raw: string): Partial<AccuracyBudget> {
  try {
    return parseBudget(raw);
  } catch (err) {
    throw new FerryError(`--accuracy-budget: ${(err as Error).message}`);
  }
}

function positiveInt(flag: string, raw: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new FerryError(`${flag} must be a positive integer, got "${raw}"`);
  return n;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(`ferry: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
