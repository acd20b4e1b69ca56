/** `ferry image build|inspect|run` and `ferry batch`: model images, with or without a registry. */
import { type Command, Option } from 'commander';
import { FerryError } from '../../sdk/errors';
import { positiveInt } from '../flags';
import { type CliContext, DEPLOYMENT, JSON_FLAG } from './context';

export function addImageCommands(program: Command, { config, withClient }: CliContext): void {
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
  ).action(async (files: string[], o: import('../image').ImageBuildFlags & { chunkSize?: string }) => {
    const { imageBuildCommand } = await import('../image');
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
  ).action(async (target: string, o: import('../imageFlags').CredentialFlags & { json?: boolean }) => {
    const { imageInspectCommand } = await import('../image');
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
  ).action(async (target: string, o: import('../imageRun').ImageRunFlags) => {
    const { imageRunCommand } = await import('../imageRun');
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
  ).action(async (target: string, o: import('../batch').BatchFlags) => {
    const { batchCommand } = await import('../batch');
    const status = await batchCommand(config, target, o, async (ref) => {
      const s = await withClient((ferry) => ferry.status(ref));
      if (!s.image) throw new FerryError(`deployment ${s.deploymentId} has no image yet (it is ${s.phase})`);
      return s.image;
    });
    process.exitCode = status;
  });
}
