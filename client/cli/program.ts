/**
 * The `ferry` command tree: every subcommand declares its arguments and flags once, in its group's module
 * under program/, and commander generates `ferry --help` and `ferry <command> --help` from that and refuses
 * unknown flags. Flag values are checked by our own parsers (flags.ts, traffic.ts, canary.ts) so their
 * messages stay Ferry's. The commands' implementations are loaded when they run, so `ferry serve` does not
 * load Temporal and `ferry status` does not load onnxruntime.
 */
import { Command } from 'commander';
import type { FerryConfig } from '../../lib/config';
import { addAccessCommands } from './program/accessCommands';
import type { CliContext } from './program/context';
import { DEPLOYMENT } from './program/context';
import { addDeployCommands } from './program/deployCommands';
import { addImageCommands } from './program/imageCommands';
import { addLocalCommands } from './program/localCommands';
import { addOptimizeCommands } from './program/optimizeCommands';
import { addPriceCommands } from './program/priceCommands';

export function buildProgram(config: FerryConfig): Command {
  const context: CliContext = {
    config,
    withClient: async (fn) => {
      const { FerryClient } = await import('../sdk');
      const ferry = await FerryClient.connect(config);
      try {
        return await fn(ferry);
      } finally {
        await ferry.close();
      }
    },
    withApi: async (fn) => {
      const { withApi } = await import('./apiSession');
      return withApi(config, fn);
    },
  };

  const program = new Command('ferry')
    .description('deploy a trained model at the lowest cost that meets its latency goal')
    .addHelpText('after', `\n<deployment> is ${DEPLOYMENT}.`);

  // The order of the groups is the order of `ferry --help`.
  addDeployCommands(program, context);
  addAccessCommands(program, context);
  addOptimizeCommands(program, context);
  addPriceCommands(program, context);
  addImageCommands(program, context);
  addLocalCommands(program, context);

  // After an error of commander's own (an unknown flag, a missing argument): where the usage is.
  program.showHelpAfterError('(see `ferry --help`)');
  for (const command of program.commands) {
    command.showHelpAfterError(`(see \`ferry ${command.name()} --help\`)`);
    for (const sub of command.commands)
      sub.showHelpAfterError(`(see \`ferry ${command.name()} ${sub.name()} --help\`)`);
  }
  return program;
}
