#!/usr/bin/env -S node --import tsx
/**
 * The `ferry` command line (`ferry --help`, `ferry <command> --help`). The commands are declared in
 * program.ts. A refusal or failure prints one line, `ferry: <why>`, and exits with 1; commander's own
 * errors (an unknown flag or command, a missing argument) print `error: ...` and exit with 1 too.
 */
import { loadConfig } from '../../lib/config';
import { buildProgram } from './program';

async function main(argv: string[]): Promise<void> {
  const program = buildProgram(loadConfig());
  // `ferry` alone is a request for help, not a mistake (commander would answer it on stderr with exit 1).
  if (argv.length === 0) program.outputHelp();
  else await program.parseAsync(argv, { from: 'user' });
}

main(process.argv.slice(2)).then(
  // The SDK's connections are closed, but a library may leave a timer behind: leave now (exitCode: `ferry ps`).
  () => process.exit(),
  (err) => {
    console.error(`ferry: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
