/** Ferry on this machine: up, down, ps, demo, example, and the services in the foreground. */
import type { Command } from 'commander';
import { FerryError } from '../../sdk/errors';
import { positiveInt } from '../flags';
import { type CliContext, forever, stopOnSignal } from './context';

interface ServeFlags {
  port: string;
  host: string;
  threads?: string;
  batch?: string;
  maxQueueDelay?: string;
}

export function addLocalCommands(program: Command, { config }: CliContext): void {
  // ---- Ferry on this machine ----
  program.commandsGroup('Run Ferry on this machine:');

  program
    .command('up')
    .description(
      'start the worker, gateway and API (after: bash infra/stack.sh start); a service whose code changed is restarted; the first run makes the admin key <state dir>/admin.key',
    )
    .action(async () => {
      const { startFerry } = await import('../up');
      await startFerry(config);
    });

  program
    .command('down')
    .description("hibernate the gateway's deployments, then stop the API, worker and gateway")
    .action(async () => {
      // Replicas outlive a gateway restart (it adopts them); `down` means down, so hibernate them first.
      const { LocalTarget } = await import('../../../lib/targets/local');
      const { FERRY_SERVICES, stopService } = await import('../../services');
      const { clientApiKey } = await import('../../../lib/auth/clientKey');
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
      const { serviceStatus } = await import('../../services');
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
      const { runDemo } = await import('../demo');
      await runDemo(config);
    });

  program
    .command('example')
    .description('write the example ONNX model and print its path')
    .option('--out <file>', 'where to write it (default: in the state dir)')
    .option('--size-mb <n>', 'about how large its weights are (default 10)')
    .action(async (o: { out?: string; sizeMb?: string }) => {
      const { writeExampleModel } = await import('../demo');
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
      const { serveModelFiles } = await import('../serve');
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
      await import('../../../workers/main');
      await forever();
    });

  program
    .command('gateway')
    .description('run the gateway (the local deployment target) in the foreground')
    .action(async () => {
      const { gatewayAccessOptions, startGateway } = await import('../../../lib/gateway');
      const { readFileSync } = await import('node:fs');
      const { kubernetesEndpointsIfConfigured } = await import('../../../lib/targets/kubernetes/gatewayEndpoints');
      const log = (m: string) => process.stdout.write(`${new Date().toISOString()} gateway: ${m}\n`);
      const remoteDeployments = await kubernetesEndpointsIfConfigured(config.kubernetes.kubeconfig, log);
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
      const { startApiServer } = await import('../../api/server');
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
}
