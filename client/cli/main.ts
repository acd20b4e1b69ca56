#!/usr/bin/env -S node --import tsx
/**
 * The `ferry` command line (`ferry --help`, `ferry <command> --help`). The commands are declared in
 * program.ts and run by runCli.ts; this file only leaves the process with the command's exit code.
 */
import { loadConfig } from '../../lib/config';
import { runCli } from './runCli';

Promise.resolve()
  .then(() => runCli(process.argv.slice(2), loadConfig()))
  .then(
    // The SDK's connections are closed, but a library may leave a timer behind: leave now, once what was
    // written has reached stdout and stderr (to a pipe, writes are asynchronous: exiting at once cuts a
    // large `--json` answer short).
    (code) => flushThenExit(code),
    (err) => {
      // loadConfig or building the program failed: nothing ran.
      console.error(`ferry: ${err instanceof Error ? err.message : String(err)}`);
      flushThenExit(1);
    },
  );

function flushThenExit(code: number): void {
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
}
