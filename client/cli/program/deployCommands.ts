/** `ferry deploy` and the commands that operate a deployment: status, cost, approve, traffic, scale, promote. */
import type { Command } from 'commander';
import { PREDICTIVE_MODES, type PredictiveMode } from '../../../lib/analytics/predictiveFloor';
import { assertValidName } from '../../../lib/names';
import { FerryError } from '../../sdk/errors';
import type { ConstraintFlags } from '../costFlags';
import { parseDuration } from '../duration';
import { budgetOption, positiveInt, splitList } from '../flags';
import { withConstraintOptions } from './constraintOptions';
import { type CliContext, DEPLOYMENT, JSON_FLAG } from './context';

interface DeployFlags extends Omit<ConstraintFlags, 'target'> {
  traffic?: string;
  seed?: string;
  review?: boolean;
  name?: string;
  version?: string;
  replicas?: string;
  approvalTimeout?: string;
  idleHibernate?: string;
  predictive?: string;
  wait: boolean;
  techniques?: string;
  accuracyBudget?: string;
  canary?: string;
  canaryOf?: string;
  public?: boolean;
  project?: string;
  target?: string;
  namespace?: string;
}

export function addDeployCommands(program: Command, { config, withClient }: CliContext): void {
  // ---- deploy and operate ----
  program.commandsGroup('Deploy and operate:');

  withConstraintOptions(
    program
      .command('deploy')
      .description('upload a model and run it through the pipeline: upload, optimize, container, deploy, monitor')
      .argument('<model.onnx>', 'the ONNX model file')
      .option('--review', 'wait for an approval of the optimization plan (`ferry approve`) instead of one-click')
      .option('--name <name>', 'model name (default: the file name without .onnx)')
      .option(
        '--version <version>',
        "version (default: sha- and the file's sha256, so the same file is the same version)",
      )
      .option('--replicas <n>', 'replicas to serve it with (default 1)')
      .option(
        '--approval-timeout <duration>',
        'with --review: when the default plan is taken, e.g. 10m (default 1h, or FERRY_APPROVAL_TIMEOUT_MS)',
      )
      .option(
        '--idle-hibernate <duration>',
        'hibernate after this long without a request, e.g. 15m (default 15m, or FERRY_IDLE_HIBERNATE_MS)',
      )
      .option(
        '--predictive <mode>',
        'predictive scaling: on (replicas ready ahead of a forecast rise, waking from zero), forecast-only, or off',
        'off',
      )
      .option('--no-wait', 'return once the pipeline has started instead of following it')
      .option('--techniques <a,b>', 'optimization techniques to try')
      .option('--accuracy-budget <budget>', 'how far a candidate may drift, e.g. cosine=0.99,top1=0.99')
      .option(
        '--canary <percent>',
        "the new version becomes a revision (named after the version) of the model's live deployment with PERCENT of its traffic; the others keep the rest",
      )
      .option('--canary-of <deployment>', "the deployment the canary joins (default: the model's newest)")
      .option('--public', 'serve inference without a key (the gateway asks for one otherwise)')
      .option('--project <project>', 'the project (tenant) it belongs to, default "default"')
      .option(
        '--target <target>',
        'where it runs: local (the gateway on this machine) or kubernetes (default: where the cost engine chooses)',
      )
      .option(
        '--namespace <namespace>',
        'with --target kubernetes: the namespace (default FERRY_KUBERNETES_NAMESPACE, else default)',
      )
      .option(
        '--traffic <profile>',
        'the workload the deploy stage plans for (as `ferry plan`; default 1rps): e.g. 50rps, peak=80rps,trough=2rps,peak-hours=9-18',
      )
      .option('--seed <n>', "seed for a bursty profile's burst placement"),
  ).action(async (file: string, o: DeployFlags) => {
    if (o.target !== undefined && o.target !== 'local' && o.target !== 'kubernetes')
      throw new FerryError(`--target must be local or kubernetes, not "${o.target}"`);
    if (!PREDICTIVE_MODES.includes(o.predictive as PredictiveMode))
      throw new FerryError(`--predictive must be one of ${PREDICTIVE_MODES.join(', ')}, not "${o.predictive}"`);
    if (o.namespace !== undefined && o.target !== 'kubernetes')
      throw new FerryError('--namespace needs --target kubernetes');
    if (o.public && o.canary !== undefined)
      throw new FerryError("--public cannot be given with --canary: a canary is served with its deployment's access");
    if (o.canaryOf !== undefined && o.canary === undefined) throw new FerryError('--canary-of needs --canary PERCENT');
    if (o.canary !== undefined && o.replicas !== undefined) {
      throw new FerryError(
        "--replicas cannot be given with --canary: the revision follows its deployment's scaling (change it with `ferry scale`)",
      );
    }
    const { parseCanaryPercent } = await import('../canary');
    const { constraintsFromFlags, profileFromFlag } = await import('../costFlags');
    const { target: _target, ...constraintFlags } = o;
    const cost = {
      ...(o.traffic !== undefined ? { profile: profileFromFlag(o.traffic, o.seed) } : {}),
      constraints: constraintsFromFlags(constraintFlags),
    };
    const canary = o.canary === undefined ? undefined : { percent: parseCanaryPercent(o.canary), of: o.canaryOf };
    const optimize =
      o.techniques || o.accuracyBudget
        ? {
            techniques: o.techniques ? splitList(o.techniques) : undefined,
            budget: o.accuracyBudget ? budgetOption(o.accuracyBudget) : undefined,
          }
        : undefined;
    const options = {
      review: o.review === true,
      model: o.name,
      version: o.version,
      replicas: o.replicas ? positiveInt('--replicas', o.replicas) : undefined,
      approvalTimeoutMs: o.approvalTimeout ? parseDuration(o.approvalTimeout) : undefined,
      idleHibernateMs: o.idleHibernate ? parseDuration(o.idleHibernate) : undefined,
      predictive: o.predictive as PredictiveMode,
      wait: o.wait,
      optimize,
      canary,
      public: o.public === true,
      project: o.project === undefined ? undefined : assertValidName('project', o.project),
      ...(o.target === 'kubernetes'
        ? { target: { kind: 'kubernetes' as const, ...(o.namespace ? { namespace: o.namespace } : {}) } }
        : o.target === 'local'
          ? { target: { kind: 'local' as const } }
          : {}),
      cost,
    };
    const { deployCommand } = await import('../commands');
    await withClient((ferry) => deployCommand(ferry, file, options));
  });

  program
    .command('promote')
    .description('all traffic to that revision, then the other revisions are removed (replicas drained)')
    .argument('<deployment>', DEPLOYMENT)
    .requiredOption('--revision <name>', 'the revision that keeps the traffic')
    .option('--json', JSON_FLAG)
    .action(async (ref: string, o: { revision: string; json?: boolean }) => {
      const { promoteCommand } = await import('../canary');
      await withClient((ferry) => promoteCommand(ferry, ref, o.revision, o.json === true));
    });

  program
    .command('rollback')
    .description("back to the deployment's first revision (the one before its canaries); the others are removed")
    .argument('<deployment>', DEPLOYMENT)
    .option('--json', JSON_FLAG)
    .action(async (ref: string, o: { json?: boolean }) => {
      const { rollbackCommand } = await import('../canary');
      await withClient((ferry) => rollbackCommand(ferry, ref, o.json === true));
    });

  program
    .command('status')
    .description("a deployment's stages, plans, benchmark and serving state")
    .argument('<deployment>', DEPLOYMENT)
    .option('--json', JSON_FLAG)
    .action(async (ref: string, o: { json?: boolean }) => {
      const { statusCommand } = await import('../commands');
      await withClient((ferry) => statusCommand(ferry, ref, o.json === true));
    });

  program
    .command('cost')
    .description('live cost: per 1,000 inferences, per day, projected per month, idle, replica-seconds, cold starts')
    .argument('<deployment>', DEPLOYMENT)
    .option('--hours <n>', 'the window, in hours', '24')
    .option('--json', JSON_FLAG)
    .action(async (ref: string, o: { json?: boolean; hours: string }) => {
      const hours = Number(o.hours);
      if (!(hours > 0)) throw new FerryError(`--hours must be a number above 0, got "${o.hours}"`);
      const { costCommand } = await import('../cost');
      await withClient((ferry) => costCommand(ferry, ref, { json: o.json === true, hours }));
    });

  program
    .command('approve')
    .description('approve the optimization plan and deployment option of a deployment that waits for one (--review)')
    .argument('<deployment>', DEPLOYMENT)
    .requiredOption('--plan <plan>', 'the plan to apply (`ferry status` lists them)')
    .option(
      '--option <option>',
      "the deployment option of that plan's considered-options table (`ferry status` lists them; default: its choice)",
    )
    .option('--by <name>', `who approves (default: ${config.userName})`)
    .option('--signal', 'send it as a Signal (fire and forget, as chat tools do) instead of a validated Update')
    .action(async (ref: string, o: { plan: string; option?: string; by?: string; signal?: boolean }) => {
      await withClient(async (ferry) => {
        if (o.signal && o.option !== undefined)
          throw new FerryError('--option is approved by Update only: drop --signal');
        if (o.signal) {
          const sent = await ferry.approveBySignal(ref, o.plan, o.by ?? 'cli');
          if (sent.taken) console.log(`Approved plan ${o.plan} for ${ref} (by Signal).`);
          else if (sent.chosen) throw new FerryError(`the run took plan ${sent.chosen.plan}, not ${o.plan}`);
          else
            throw new FerryError(
              `the approval Signal was sent, but ${ref} has not taken plan ${o.plan}: a plan it cannot apply is ignored (see \`ferry status ${ref}\`)`,
            );
        } else {
          const chosen = await ferry.approve(ref, o.plan, o.by ?? config.userName, o.option);
          console.log(
            `Approved plan ${chosen.plan}${chosen.option ? ` with deployment option ${chosen.option}` : " with its plan's cheapest deployable option"} for ${ref}.`,
          );
        }
      });
    });

  program
    .command('list')
    .description('every deployment run, its stage and where it serves')
    .option('--json', JSON_FLAG)
    .action(async (o: { json?: boolean }) => {
      const { listCommand } = await import('../commands');
      await withClient((ferry) => listCommand(ferry, o.json === true));
    });

  program
    .command('infer')
    .description("one inference through the deployment's endpoint")
    .argument('<deployment>', DEPLOYMENT)
    .requiredOption('--input <request.json>', 'an Open Inference Protocol v2 request body')
    .action(async (ref: string, o: { input: string }) => {
      const { inferCommand } = await import('../commands');
      await withClient((ferry) => inferCommand(ferry, ref, o.input));
    });

  program
    .command('undeploy')
    .description('stop serving: replicas stopped, route removed')
    .argument('<deployment>', DEPLOYMENT)
    .action(async (ref: string) => {
      await withClient(async (ferry) => {
        console.log(`Undeploying ${ref}...`);
        await ferry.undeploy(ref);
        console.log(`Undeployed ${ref}: its replicas are stopped and its route removed.`);
      });
    });

  // ---- traffic and scaling ----
  program.commandsGroup('Traffic and scaling of a served deployment (changed at run time, no replica restarted):');

  program
    .command('traffic')
    .description("show or change the revisions' traffic split and header rules; what is not given stays")
    .argument('<deployment>', DEPLOYMENT)
    .option('--split <a=90,b=10>', 'replace the split (the percentages add up to 100)')
    .option(
      '--rule <header:value=revision>',
      'add a header rule (same header and value: replaced); may be given more than once',
      (raw: string, rules: string[]) => [...rules, raw],
      [] as string[],
    )
    .option('--clear-rules', 'drop the current rules first')
    .option('--json', JSON_FLAG)
    .action(async (ref: string, o: { split?: string; rule: string[]; clearRules?: boolean; json?: boolean }) => {
      const { parseTrafficFlags, trafficCommand } = await import('../traffic');
      const request = parseTrafficFlags(o);
      await withClient((ferry) => trafficCommand(ferry, ref, request, o.json === true));
    });

  program
    .command('scale')
    .description('show or change replicas per revision, autoscaling and scale to zero; what is not given stays')
    .argument('<deployment>', DEPLOYMENT)
    .option('--replicas <n>', 'a fixed count per revision (autoscaling off)')
    .option('--min <n>', 'autoscaling on requests in flight: fewest replicas per revision')
    .option('--max <n>', 'autoscaling: most replicas per revision')
    .option('--target-concurrency <x>', 'autoscaling: requests in flight per replica to aim for')
    .option('--scale-down-delay <duration>', 'autoscaling: how long the load stays lower before replicas go, e.g. 30s')
    .option('--scale-to-zero-after <duration>', 'hibernate after this long without a request, e.g. 10m')
    .option('--no-scale-to-zero', 'never hibernate on idle')
    .option('--json', JSON_FLAG)
    .action(async (ref: string, o: import('../traffic').ScaleFlags & { json?: boolean }) => {
      const { parseScaleFlags, scaleCommand } = await import('../traffic');
      const change = parseScaleFlags(o);
      await withClient((ferry) => scaleCommand(ferry, ref, change, o.json === true));
    });
}
