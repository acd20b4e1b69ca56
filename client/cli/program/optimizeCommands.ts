/** Models, validation, optimization and the cost engine's plan: commands that need no Ferry services. */
import type { Command } from 'commander';
import { budgetOption, positiveInt, splitList } from '../flags';
import { withConstraintOptions } from './constraintOptions';
import { type CliContext, JSON_FLAG } from './context';

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

export function addOptimizeCommands(program: Command, { config, withClient }: CliContext): void {
  // ---- optimize ----
  const models = program
    .command('models')
    .description('uploaded models with their versions and sizes')
    .option('--json', JSON_FLAG)
    .action(async (o: { json?: boolean }) => {
      const { modelsListCommand } = await import('../models');
      await modelsListCommand(config, Boolean(o.json));
    });
  models
    .command('show')
    .description("one version's validation summary and dependency report (the newest without :version)")
    .argument('<model[:version]>', 'the model, optionally with its version')
    .option('--json', JSON_FLAG)
    .action(async (ref: string, o: { json?: boolean }) => {
      const { modelsShowCommand } = await import('../models');
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
      const { validateCommand } = await import('../validate');
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
      const { optimizeCommand } = await import('../optimize');
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

  withConstraintOptions(
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
      ),
  )
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
    .action(async (ref: string, o: import('../plan').PlanFlags) => {
      const { planCommand } = await import('../plan');
      await planCommand(ref, o, config, (r) => withClient((ferry) => ferry.status(r)));
    });
}
