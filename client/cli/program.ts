/**
 * The `ferry` command tree: every subcommand declares its arguments and flags once, here, and commander
 * generates `ferry --help` and `ferry <command> --help` from that and refuses unknown flags. Flag values
 * are checked by our own parsers (flags.ts, traffic.ts, canary.ts) so their messages stay Ferry's. The
 * commands' implementations are loaded when they run, so `ferry serve` does not load Temporal and
 * `ferry status` does not load onnxruntime.
 */
import { Command, Option } from 'commander';
import { SCOPES } from '../../lib/auth/scopes';
import type { FerryConfig } from '../../lib/config';
import { REFRESH_SOURCES } from '../../lib/cost/catalog/refresh/sources';
import type { FerryClient } from '../sdk';
import { FerryError } from '../sdk/errors';
import { parseDuration } from './duration';
import { budgetOption, positiveInt, splitList } from './flags';

const DEPLOYMENT = 'a deployment id (model-version), model:version, or a model name (its latest deployment)';
const JSON_FLAG = 'print JSON instead of text';

interface DeployFlags {
  review?: boolean;
  name?: string;
  version?: string;
  replicas?: string;
  approvalTimeout?: string;
  idleHibernate?: string;
  wait: boolean;
  techniques?: string;
  accuracyBudget?: string;
  canary?: string;
  canaryOf?: string;
  public?: boolean;
  target: string;
  namespace?: string;
}

interface OptimizeFlags {
  out: string;
  techniques?: string;
  calibration?: string;
  inputs?: string;
  accuracyBudget?: string;
  threads?: string;
  sameMachine?: boolean;
  measureMs?: string;
  json?: boolean;
}

interface ServeFlags {
  port: string;
  host: string;
  threads?: string;
  batch?: string;
  maxQueueDelay?: string;
}

/** Until a signal stops the process (the long-running commands). */
const forever = () => new Promise<never>(() => {});

export function buildProgram(config: FerryConfig): Command {
  const withClient = async <T>(fn: (ferry: FerryClient) => Promise<T>): Promise<T> => {
    const { FerryClient } = await import('../sdk');
    const ferry = await FerryClient.connect(config);
    try {
      return await fn(ferry);
    } finally {
      await ferry.close();
    }
  };

  const program = new Command('ferry')
    .description('deploy a trained model at the lowest cost that meets its latency goal')
    .addHelpText('after', `\n<deployment> is ${DEPLOYMENT}.`);

  // ---- deploy and operate ----
  program.commandsGroup('Deploy and operate:');

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
    .option('--no-wait', 'return once the pipeline has started instead of following it')
    .option('--techniques <a,b>', 'optimization techniques to try')
    .option('--accuracy-budget <budget>', 'how far a candidate may drift, e.g. cosine=0.99,top1=0.99')
    .option(
      '--canary <percent>',
      "the new version becomes a revision (named after the version) of the model's live deployment with PERCENT of its traffic; the others keep the rest",
    )
    .option('--canary-of <deployment>', "the deployment the canary joins (default: the model's newest)")
    .option('--public', 'serve inference without a key (when the gateway checks keys)')
    .option('--target <target>', 'where it runs: local (the gateway on this machine) or kubernetes', 'local')
    .option(
      '--namespace <namespace>',
      'with --target kubernetes: the namespace (default FERRY_KUBERNETES_NAMESPACE, else default)',
    )
    .action(async (file: string, o: DeployFlags) => {
      if (o.target !== 'local' && o.target !== 'kubernetes')
        throw new FerryError(`--target must be local or kubernetes, not "${o.target}"`);
      if (o.namespace !== undefined && o.target !== 'kubernetes')
        throw new FerryError('--namespace needs --target kubernetes');
      if (o.public && o.canary !== undefined)
        throw new FerryError("--public cannot be given with --canary: a canary is served with its deployment's access");
      if (o.canaryOf !== undefined && o.canary === undefined)
        throw new FerryError('--canary-of needs --canary PERCENT');
      if (o.canary !== undefined && o.replicas !== undefined) {
        throw new FerryError(
          "--replicas cannot be given with --canary: the revision follows its deployment's scaling (change it with `ferry scale`)",
        );
      }
      const { parseCanaryPercent } = await import('./canary');
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
        wait: o.wait,
        optimize,
        canary,
        public: o.public === true,
        ...(o.target === 'kubernetes'
          ? { target: { kind: 'kubernetes' as const, ...(o.namespace ? { namespace: o.namespace } : {}) } }
          : {}),
      };
      const { deployCommand } = await import('./commands');
      await withClient((ferry) => deployCommand(ferry, file, options));
    });

  program
    .command('promote')
    .description('all traffic to that revision, then the other revisions are removed (replicas drained)')
    .argument('<deployment>', DEPLOYMENT)
    .requiredOption('--revision <name>', 'the revision that keeps the traffic')
    .option('--json', JSON_FLAG)
    .action(async (ref: string, o: { revision: string; json?: boolean }) => {
      const { promoteCommand } = await import('./canary');
      await withClient((ferry) => promoteCommand(ferry, ref, o.revision, o.json === true));
    });

  program
    .command('rollback')
    .description("back to the deployment's first revision (the one before its canaries); the others are removed")
    .argument('<deployment>', DEPLOYMENT)
    .option('--json', JSON_FLAG)
    .action(async (ref: string, o: { json?: boolean }) => {
      const { rollbackCommand } = await import('./canary');
      await withClient((ferry) => rollbackCommand(ferry, ref, o.json === true));
    });

  program
    .command('status')
    .description("a deployment's stages, plans, benchmark and serving state")
    .argument('<deployment>', DEPLOYMENT)
    .option('--json', JSON_FLAG)
    .action(async (ref: string, o: { json?: boolean }) => {
      const { statusCommand } = await import('./commands');
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
      const { costCommand } = await import('./cost');
      await withClient((ferry) => costCommand(ferry, ref, { json: o.json === true, hours }));
    });

  program
    .command('approve')
    .description('approve an optimization plan of a deployment that waits for one (--review)')
    .argument('<deployment>', DEPLOYMENT)
    .requiredOption('--plan <plan>', 'the plan to apply (`ferry status` lists them)')
    .option('--by <name>', `who approves (default: ${config.userName})`)
    .option('--signal', 'send it as a Signal (fire and forget, as chat tools do) instead of a validated Update')
    .action(async (ref: string, o: { plan: string; by?: string; signal?: boolean }) => {
      await withClient(async (ferry) => {
        if (o.signal) {
          const sent = await ferry.approveBySignal(ref, o.plan, o.by ?? 'cli');
          if (sent.taken) console.log(`Approved plan ${o.plan} for ${ref} (by Signal).`);
          else if (sent.chosen) throw new FerryError(`the run took plan ${sent.chosen.plan}, not ${o.plan}`);
          else
            throw new FerryError(
              `the approval Signal was sent, but ${ref} has not taken plan ${o.plan}: a plan it cannot apply is ignored (see \`ferry status ${ref}\`)`,
            );
        } else {
          const chosen = await ferry.approve(ref, o.plan, o.by ?? config.userName);
          console.log(`Approved plan ${chosen.plan} for ${ref}.`);
        }
      });
    });

  program
    .command('list')
    .description('every deployment run, its stage and where it serves')
    .option('--json', JSON_FLAG)
    .action(async (o: { json?: boolean }) => {
      const { listCommand } = await import('./commands');
      await withClient((ferry) => listCommand(ferry, o.json === true));
    });

  program
    .command('infer')
    .description("one inference through the deployment's endpoint")
    .argument('<deployment>', DEPLOYMENT)
    .requiredOption('--input <request.json>', 'an Open Inference Protocol v2 request body')
    .action(async (ref: string, o: { input: string }) => {
      const { inferCommand } = await import('./commands');
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
      const { parseTrafficFlags, trafficCommand } = await import('./traffic');
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
    .action(async (ref: string, o: import('./traffic').ScaleFlags & { json?: boolean }) => {
      const { parseScaleFlags, scaleCommand } = await import('./traffic');
      const change = parseScaleFlags(o);
      await withClient((ferry) => scaleCommand(ferry, ref, change, o.json === true));
    });

  // ---- keys and audit ----
  program.commandsGroup(
    "Keys and the audit log (through Ferry's HTTP API, with FERRY_API_KEY or <state dir>/admin.key):",
  );

  const withApi = async <T>(fn: (api: import('../http/ferryApiClient').FerryApiClient) => Promise<T>): Promise<T> => {
    const { withApi } = await import('./apiSession');
    return withApi(config, fn);
  };

  const keys = program
    .command('keys')
    .description('API keys: create (shown once), list, revoke; needs an admin key')
    .addHelpText(
      'after',
      `
Scopes: ${SCOPES.join(', ')} (admin implies every other).`,
    );

  keys
    .command('create')
    .description('make a key for a project and print it once (alone on stdout; notes on stderr)')
    .requiredOption('--project <project>', 'the project (tenant) the key belongs to; made if new')
    .requiredOption('--scope <a,b>', `what it may do: ${SCOPES.join(', ')}`)
    .option('--name <name>', 'a name to list and revoke it by (default: key-<time>)')
    .option('--json', 'print the key and its row as JSON')
    .action(async (o: import('./keys').KeysCreateFlags) => {
      const { keysCreateCommand } = await import('./keys');
      await withApi((api) => keysCreateCommand(api, o));
    });

  keys
    .command('list')
    .description('keys with their project, scopes, prefix, creation, last use and revocation (never the secret)')
    .option('--project <project>', 'only the keys of this project')
    .option('--json', JSON_FLAG)
    .action(async (o: { project?: string; json?: boolean }) => {
      const { keysListCommand } = await import('./keys');
      await withApi((api) => keysListCommand(api, o.project, o.json === true));
    });

  keys
    .command('revoke')
    .description('revoke a key: requests with it are refused from then on')
    .argument('<key>', 'its id, project/name, name (when only one project has it), or prefix (fry_...)')
    .option('--json', JSON_FLAG)
    .action(async (ref: string, o: { json?: boolean }) => {
      const { keysRevokeCommand } = await import('./keys');
      await withApi((api) => keysRevokeCommand(api, ref, o.json === true));
    });

  program
    .command('audit')
    .description('who changed what, when and from where (newest first): deploys, approvals, operations, keys')
    .option('--deployment <deployment>', `only the entries of this deployment (${DEPLOYMENT})`)
    .option('--limit <n>', 'at most this many entries (default 100, at most 1000)')
    .option('--json', JSON_FLAG)
    .action(async (o: import('./audit').AuditFlags) => {
      const { auditCommand } = await import('./audit');
      await withApi((api) => auditCommand(api, o));
    });

  // ---- optimize ----
  const models = program
    .command('models')
    .description('uploaded models with their versions and sizes')
    .option('--json', JSON_FLAG)
    .action(async (o: { json?: boolean }) => {
      const { modelsListCommand } = await import('./models');
      await modelsListCommand(config, Boolean(o.json));
    });
  models
    .command('show')
    .description("one version's validation summary and dependency report (the newest without :version)")
    .argument('<model[:version]>', 'the model, optionally with its version')
    .option('--json', JSON_FLAG)
    .action(async (ref: string, o: { json?: boolean }) => {
      const { modelsShowCommand } = await import('./models');
      await modelsShowCommand(config, ref, Boolean(o.json));
    });

  program.commandsGroup('Optimize without deploying (needs no Ferry services):');

  program
    .command('validate')
    .description("the upload stage's checks on a model or a folder of models, uploading nothing (exit 1 when invalid)")
    .argument('<model.onnx|dir>', 'an ONNX file, or a folder whose .onnx files (and their external data) are checked')
    .option('--max-bytes <n>', 'largest model accepted, external data included')
    .option('--json', JSON_FLAG)
    .action(async (target: string, o: { maxBytes?: string; json?: boolean }) => {
      const { validateCommand } = await import('./validate');
      const maxBytes = o.maxBytes ? positiveInt('--max-bytes', o.maxBytes) : undefined;
      process.exitCode = await validateCommand(target, { json: o.json, maxBytes });
    });

  program
    .command('optimize')
    .description('every candidate measured against the original; models, report.json and report.txt written to DIR')
    .argument('<model.onnx>', 'the ONNX model file')
    .requiredOption('--out <dir>', 'where the candidate models and the report go')
    .option('--techniques <a,b>', 'techniques to try (default: every one)')
    .option('--calibration <data.json>', 'calibration samples for static quantization')
    .option('--accuracy-budget <budget>', 'how far a candidate may drift, e.g. cosine=0.99,top1=0.99,maxabs=X')
    .option('--inputs <inputs.json>', 'fixed inputs and dynamic dims to measure with')
    .option('--threads <n>', 'cores one replica may use')
    .option('--same-machine', 'the model will run on this machine (allows hardware-specific passes)')
    .option('--measure-ms <n>', 'milliseconds of timed runs per candidate and batch size')
    .option('--json', JSON_FLAG)
    .action(async (file: string, o: OptimizeFlags) => {
      const { optimizeCommand } = await import('./optimize');
      await optimizeCommand(file, {
        out: o.out,
        techniques: o.techniques ? splitList(o.techniques) : undefined,
        calibrationFile: o.calibration,
        inputsFile: o.inputs,
        budget: o.accuracyBudget ? budgetOption(o.accuracyBudget) : undefined,
        target: {
          ...(o.threads ? { threads: positiveInt('--threads', o.threads) } : {}),
          sameMachine: o.sameMachine === true,
        },
        measureMs: o.measureMs ? positiveInt('--measure-ms', o.measureMs) : undefined,
        json: o.json === true,
      });
    });

  program
    .command('plan')
    .description(
      'the cost engine alone: ranked deployment options with monthly cost and expected p95, the choice marked',
    )
    .argument(
      '<model.onnx|report.json|deployment>',
      'a model (measured first), a `ferry optimize` report, or a deployment',
    )
    .requiredOption(
      '--traffic <profile>',
      'e.g. 50rps, peak=80rps,trough=2rps,peak-hours=9-18, bursty:burst=120rps,bursts=6, trace:FILE',
    )
    .option('--slo-p95 <latency>', 'the p95 latency goal', '100ms')
    .option('--budget <usd>', 'most per month, e.g. 200/month')
    .option('--providers <a,b>', 'clouds to compare (aws, gcp, azure; local, cluster, edge for the others)')
    .option('--regions <globs>', 'regions, globs allowed: us-*,eu-west-1')
    .option('--arch <arch>', 'arm64 or x86_64')
    .option('--gpu', 'GPU instances only')
    .option('--max-cold-start <latency>', 'longest cold start allowed (scale to zero)')
    .option('--no-spot', 'no spot instances')
    .option('--users-in <region>', "the users' region: the round trip (estimated) counts against the SLO")
    .option('--target <target>', 'only options of this target: local, kubernetes, ec2')
    .option(
      '--local-cost <usd/h>',
      'what this machine costs per hour (or FERRY_LOCAL_COST_PER_HOUR); local is an option only then',
    )
    .option('--node-cost <usd/h>', "your cluster's node price per hour (--node-vcpus, --node-memory GiB: 2, 8)")
    .option('--node-vcpus <n>')
    .option('--node-memory <gib>')
    .option('--edge <device>', 'also consider this arm64 device (raspberry-pi-4, raspberry-pi-5, jetson-orin-nano)')
    .option('--speed <calibration>', 'measured speed factors, e.g. m7g=1.2,this=0.9 (see lib/cost/engine/cpuSpeed.ts)')
    .option('--seed <n>', "seed for a bursty profile's burst placement", '1')
    .option('--measure-ms <n>', 'milliseconds of timed runs when measuring a model file')
    .option('--deployable-only', 'choose among targets configured here only (as the deploy stage does)')
    .option('--all', 'every option sized, not only the best of each strategy, provider and region')
    .option('--json', JSON_FLAG)
    .action(async (ref: string, o: import('./plan').PlanFlags) => {
      const { planCommand } = await import('./plan');
      await planCommand(ref, o, config.stateDir, (r) => withClient((ferry) => ferry.status(r)));
    });

  // ---- prices ----
  program.commandsGroup('Prices (need no Ferry services):');

  const prices = program
    .command('prices')
    .description('the dated price catalog the cost engine plans with: instances, serverless, egress (* = estimate)')
    .option('--provider <provider>', 'only aws, gcp or azure')
    .option('--region <region>', 'only this region, or a pattern such as us-* or europe-*')
    .option('--min-vcpus <n>', 'only instance types with at least N vCPUs (serverless: a vCPU limit of at least N)')
    .option('--arch <arch>', 'only x86_64 or arm64')
    .option('--catalog <dir>', 'a catalog directory other than the shipped snapshot (e.g. from `ferry prices refresh`)')
    .option('--json', 'print the matching rows, with their sources, as JSON')
    .action(async (o: import('./prices').PricesFlags) => {
      const { pricesCommand } = await import('./prices');
      pricesCommand(o);
    });

  prices
    .command('refresh')
    .description("a new catalog directory from the providers' public price files (downloaded first: see below)")
    .option('--aws-offer <files...>', 'AWS Price List offer files for EC2 (one per region)')
    .option('--aws-spot <files...>', 'DescribeSpotPriceHistory answers (JSON)')
    .option('--aws-advisor <file>', "the Spot Instance Advisor's data file")
    .option('--gcp-skus <files...>', "Compute Engine's Cloud Billing Catalog SKU pages")
    .option('--azure-retail <files...>', 'Azure Retail Prices API pages for Virtual Machines')
    .option('--regions <a,b>', 'only these regions (names or patterns such as us-*)')
    .option('--types <a,b>', 'only these instance types (names or patterns such as m7g.*)')
    .option('--date <YYYY-MM-DD>', 'the day the files were downloaded (default: today, UTC)')
    .option('--from <dir>', 'the catalog whose other rows are kept (default: the shipped snapshot)')
    .requiredOption('--out <dir>', 'where the new catalog is written')
    .addHelpText('after', REFRESH_SOURCES)
    .action(async (o: import('./prices').PricesRefreshFlags) => {
      const { pricesRefreshCommand } = await import('./prices');
      await pricesRefreshCommand(o);
    });

  // ---- images ----
  program.commandsGroup('Model images (need no Ferry services; a registry only for REFs):');

  const image = program
    .command('image')
    .description('build, inspect and run self-contained multi-architecture model images (OCI)');
  const credentialOptions = (command: Command) =>
    command
      .option('--registry-user <user>', 'for a registry that wants credentials (or FERRY_REGISTRY_USER)')
      .option(
        '--registry-password <password>',
        'with --registry-user (FERRY_REGISTRY_PASSWORD keeps it out of the process list)',
      );

  credentialOptions(
    image
      .command('build')
      .description('one image serving every model given: runtime, server, one layer per model, configuration')
      .argument('<model.onnx...>', 'ONNX model files (each served as /v2/models/<file name>)')
      .option(
        '--platform <platforms>',
        'linux/amd64, linux/arm64 or both, comma-separated (default both; an edge image linux/arm64)',
      )
      .option(
        '--kind <kind>',
        'inference (the server), batch (ferry batch runs it) or edge (no telemetry, arm64)',
        'inference',
      )
      .option(
        '--optimization <report.json>',
        'a `ferry optimize --out DIR` report of the model: serve its best plan (edge: the int8 plan when within budget)',
      )
      .addOption(new Option('--out <dir>', 'write an OCI image layout (oci-layout, index.json, blobs/)'))
      .addOption(new Option('--push <ref>', 'push to [REGISTRY/]REPO:TAG').conflicts('out'))
      .option('--tag <tag>', 'with --out: the tag index.json gives the image', 'latest')
      .option('--chunk-size <bytes>', 'with --push: bytes per upload chunk (default 16 MiB)'),
  ).action(async (files: string[], o: import('./image').ImageBuildFlags & { chunkSize?: string }) => {
    const { imageBuildCommand } = await import('./image');
    await imageBuildCommand(config, files, {
      ...o,
      chunkBytes: o.chunkSize === undefined ? undefined : positiveInt('--chunk-size', o.chunkSize),
    });
  });

  credentialOptions(
    image
      .command('inspect')
      .description('layers (media type, size, what each holds), platforms and models of an image')
      .argument('<image>', 'an OCI image layout folder, or [REGISTRY/]REPO[:TAG|@DIGEST]')
      .option('--json', JSON_FLAG),
  ).action(async (target: string, o: import('./imageFlags').CredentialFlags & { json?: boolean }) => {
    const { imageInspectCommand } = await import('./image');
    await imageInspectCommand(config, target, o);
  });

  credentialOptions(
    image
      .command('run')
      .description('serve an image on 127.0.0.1:PORT until Ctrl-C, as a container or a plain process')
      .argument('<image>', 'an OCI image layout folder, or [REGISTRY/]REPO[:TAG|@DIGEST]')
      .requiredOption('--port <n>', 'port on 127.0.0.1')
      .option('--cpus <x>', 'CPU limit (containers)', '1')
      .option('--memory <size>', 'memory limit, e.g. 512Mi (containers)', '1Gi')
      .option('--runtime <name>', 'youki, runc or process (default: youki if installed, else runc)'),
  ).action(async (target: string, o: import('./imageRun').ImageRunFlags) => {
    const { imageRunCommand } = await import('./imageRun');
    await imageRunCommand(config, target, o);
  });

  credentialOptions(
    program
      .command('batch')
      .description(
        'run every request file of a folder or bucket through a model image, one response file each; a rerun resumes',
      )
      .argument('<deployment|image>', `${DEPLOYMENT}; or an OCI image layout folder, or REGISTRY/REPO[:TAG|@DIGEST]`)
      .requiredOption('--input <dir|s3://bucket/prefix>', 'the request files (Open Inference Protocol v2 JSON, *.json)')
      .requiredOption(
        '--output <dir|s3://bucket/prefix>',
        'where <name>.response.json, errors/ and batch-summary.json go',
      )
      .option('--concurrency <n>', 'requests in flight', '4')
      .option('--model <name[:version]>', 'which model, when the image serves more than one')
      .option('--runtime <name>', 'youki, runc or process (default: youki if installed, else runc)')
      .option('--cpus <x>', 'CPU limit (containers)', '2')
      .option('--memory <size>', 'memory limit, e.g. 2Gi (containers)', '2Gi'),
  ).action(async (target: string, o: import('./batch').BatchFlags) => {
    const { batchCommand } = await import('./batch');
    const status = await batchCommand(config, target, o, async (ref) => {
      const s = await withClient((ferry) => ferry.status(ref));
      if (!s.image) throw new FerryError(`deployment ${s.deploymentId} has no image yet (it is ${s.phase})`);
      return s.image;
    });
    process.exitCode = status;
  });

  // ---- Ferry on this machine ----
  program.commandsGroup('Run Ferry on this machine:');

  program
    .command('up')
    .description(
      'start the worker, gateway and API (after: bash infra/stack.sh start); a service whose code changed is restarted; the first run makes the admin key <state dir>/admin.key',
    )
    .action(async () => {
      const { startFerry } = await import('./up');
      await startFerry(config);
    });

  program
    .command('down')
    .description("hibernate the gateway's deployments, then stop the API, worker and gateway")
    .action(async () => {
      // Replicas outlive a gateway restart (it adopts them); `down` means down, so hibernate them first.
      const { LocalTarget } = await import('../../lib/targets/local');
      const { FERRY_SERVICES, stopService } = await import('../services');
      const { clientApiKey } = await import('../../lib/auth/clientKey');
      const target = new LocalTarget(config.gateway.url, () => clientApiKey(config));
      for (const d of await target.list().catch(() => [])) {
        if (d.replicas.length) {
          await target.hibernate(d.id);
          console.log(`deployment ${d.id}: hibernated (the next request after \`ferry up\` wakes it)`);
        }
      }
      for (const name of [...FERRY_SERVICES].reverse()) {
        console.log(`ferry ${name}: ${(await stopService(config, name)) ? 'stopped' : 'not running'}`);
      }
    });

  program
    .command('ps')
    .description('show the worker, gateway and API (exit code 1 when one is not healthy)')
    .action(async () => {
      const { serviceStatus } = await import('../services');
      let ok = true;
      for (const s of await serviceStatus(config)) {
        ok &&= s.healthy;
        console.log(
          `${s.name.padEnd(8)} ${s.healthy ? 'healthy' : s.pid ? 'unhealthy' : 'stopped'}${s.pid ? ` pid ${s.pid}` : ''}  log ${s.log}`,
        );
      }
      if (!ok) process.exitCode = 1;
    });

  program
    .command('demo')
    .description('start Ferry, one-click deploy the example model and send one inference')
    .action(async () => {
      const { runDemo } = await import('./demo');
      await runDemo(config);
    });

  program
    .command('example')
    .description('write the example ONNX model and print its path')
    .option('--out <file>', 'where to write it (default: in the state dir)')
    .option('--size-mb <n>', 'about how large its weights are (default 10)')
    .action(async (o: { out?: string; sizeMb?: string }) => {
      const { writeExampleModel } = await import('./demo');
      console.log(await writeExampleModel(config, o.out, o.sizeMb ? Number(o.sizeMb) : undefined));
    });

  program
    .command('serve')
    .description('the inference server alone, on model files (or a ferry-models.json manifest)')
    .argument('<model.onnx...>', 'model files, or one manifest (or a directory holding one)')
    .option('--port <n>', 'port to listen on', '8000')
    .option('--host <address>', 'address to bind', '127.0.0.1')
    .option('--threads <n>', 'onnxruntime intra-op threads per model')
    .option('--batch <n>', 'dynamic batching: most requests run as one batch')
    .option('--max-queue-delay <ms>', 'with --batch: how long a request may wait for others to batch with')
    .action(async (files: string[], o: ServeFlags) => {
      if (o.maxQueueDelay !== undefined && o.batch === undefined)
        throw new FerryError('--max-queue-delay needs --batch N (dynamic batching is off without it)');
      const maxQueueDelayMs = o.maxQueueDelay === undefined ? undefined : Number(o.maxQueueDelay);
      if (maxQueueDelayMs !== undefined && !(maxQueueDelayMs >= 0 && maxQueueDelayMs <= 60_000)) {
        throw new FerryError(`--max-queue-delay must be milliseconds in [0, 60000], got "${o.maxQueueDelay}"`);
      }
      const { serveModelFiles } = await import('./serve');
      await serveModelFiles(files, positiveInt('--port', o.port), {
        host: o.host,
        sessionOptions:
          o.threads === undefined ? undefined : { intraOpNumThreads: positiveInt('--threads', o.threads) },
        batching:
          o.batch === undefined
            ? undefined
            : {
                maxBatchSize: positiveInt('--batch', o.batch),
                ...(maxQueueDelayMs !== undefined ? { maxQueueDelayMs } : {}),
              },
      });
      await forever();
    });

  program
    .command('worker')
    .description('run the pipeline worker in the foreground')
    .action(async () => {
      await import('../../workers/main');
      await forever();
    });

  program
    .command('gateway')
    .description('run the gateway (the local deployment target) in the foreground')
    .action(async () => {
      const { gatewayAccessOptions, startGateway } = await import('../../lib/gateway');
      const { readFileSync } = await import('node:fs');
      const { kubernetesEndpointsIfConfigured } = await import('../../lib/targets/kubernetes/gatewayEndpoints');
      const log = (m: string) => process.stdout.write(`${new Date().toISOString()} gateway: ${m}\n`);
      const remoteDeployments = await kubernetesEndpointsIfConfigured(config.stateDir, log);
      const gw = await startGateway({
        ...(remoteDeployments ? { remoteDeployments } : {}),
        port: config.gateway.port,
        host: config.gateway.host,
        stateDir: config.stateDir,
        limits: config.gateway.limits,
        access: await gatewayAccessOptions(config),
        allowedRegistries: config.access.registries,
        tls: config.access.tls && {
          cert: readFileSync(config.access.tls.certFile),
          key: readFileSync(config.access.tls.keyFile),
        },
      });
      console.log(`ferry gateway: ${gw.url}`);
      stopOnSignal(() => gw.close());
      await forever();
    });

  program
    .command('api')
    .description('run the HTTP API and dashboard in the foreground')
    .action(async () => {
      const { startApiServer } = await import('../api/server');
      const api = await startApiServer(config);
      console.log(`ferry api and dashboard: ${api.url}`);
      stopOnSignal(() => api.close());
      await forever();
    });

  // After an error of commander's own (an unknown flag, a missing argument): where the usage is.
  program.showHelpAfterError('(see `ferry --help`)');
  for (const command of program.commands) {
    command.showHelpAfterError(`(see \`ferry ${command.name()} --help\`)`);
    for (const sub of command.commands)
      sub.showHelpAfterError(`(see \`ferry ${command.name()} ${sub.name()} --help\`)`);
  }
  return program;
}

function stopOnSignal(close: () => Promise<void>): void {
  const stop = () => close().then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
