/**
 * One `ferry` command line, run in this process: what bin/ferry does (client/cli/main.ts), short of
 * leaving the process, so a test can run many without starting a Node process for each.
 *
 * A refusal or failure writes one line, `ferry: <why>`, and gives 1; commander's own errors (an unknown
 * flag or command, a missing argument) write `error: ...` and give 1 too. Help gives 0.
 */
import { type Command, CommanderError } from 'commander';
import type { FerryConfig } from '../../lib/config';
import { buildProgram } from './program';

/** Where commander's own text (help, its errors) and the `ferry: <why>` line go. */
export interface CliOutput {
  out(text: string): void;
  err(text: string): void;
}

const PROCESS_OUTPUT: CliOutput = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

/** Routes a command tree's output to `output`, and makes its errors and help throw instead of exiting. */
function inProcess(command: Command, output: CliOutput): void {
  command.exitOverride().configureOutput({ writeOut: output.out, writeErr: output.err });
  for (const sub of command.commands) inProcess(sub, output);
}

/** Runs `argv` (the arguments after `ferry`) and gives the exit code. */
export async function runCli(argv: string[], config: FerryConfig, output: CliOutput = PROCESS_OUTPUT): Promise<number> {
  const program = buildProgram(config);
  inProcess(program, output);
  try {
    // `ferry` alone is a request for help, not a mistake (commander would answer it on stderr with exit 1).
    if (argv.length === 0) program.outputHelp();
    else await program.parseAsync(argv, { from: 'user' });
    // A command that reports through its exit code sets it (`ferry ps`, `ferry validate`).
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    // Commander has written its own message (or the help) already.
    if (err instanceof CommanderError) return err.exitCode;
    output.err(`ferry: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}
