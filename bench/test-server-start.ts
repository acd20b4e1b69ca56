/**
 * What a workflow unit test pays to get its time-skipping Temporal server: the SDK's
 * `TestWorkflowEnvironment.createTimeSkipping` against the installed test server until it is connected,
 * then its teardown. With the install's class-data sharing archive (the wrapper as installed) against
 * the same JVM and flags without it (the baseline), in alternating runs so both see the same machine load.
 *
 *   npx tsx bench/test-server-start.ts [--runs 7]
 *
 * Needs the test server installed (bash scripts/install-test-server.sh). Figures: median (min–max) ms.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { loadConfig } from '../lib/config';

const INSTALL = path.join(loadConfig().repoRoot, 'scripts/install-test-server.sh');

function summary(xs: readonly number[]): { median: number; text: string } {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, text: `${median.toFixed(0)} ms (${s[0]!.toFixed(0)}–${s[s.length - 1]!.toFixed(0)})` };
}

async function startAndStop(executable: string): Promise<number> {
  const t0 = performance.now();
  const env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: executable } },
  });
  const ready = performance.now() - t0;
  await env.teardown();
  return ready;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '7' } } });
  const runs = Number(values.runs);
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const withArchive = execFileSync('bash', [INSTALL], { encoding: 'utf8' }).trim();
  const dir = path.dirname(withArchive);
  // The baseline: the installed wrapper's JVM and flags, without its archive (the wrapper before it had one).
  const scratch = mkdtempSync(path.join(tmpdir(), 'ferry-bench-test-server-'));
  const withoutArchive = path.join(scratch, 'temporal-test-server');
  writeFileSync(
    withoutArchive,
    `#!/usr/bin/env bash\nexec java -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xss512k -cp '${dir}/lib/*' io.temporal.testserver.TestServer "$@"\n`,
  );
  chmodSync(withoutArchive, 0o755);
  try {
    await startAndStop(withArchive); // warm the page cache for both
    const cds: number[] = [];
    const plain: number[] = [];
    for (let i = 0; i < runs; i++) {
      plain.push(await startAndStop(withoutArchive));
      cds.push(await startAndStop(withArchive));
    }
    const a = summary(cds);
    const b = summary(plain);
    console.log(`test server ready, ${runs} runs each (alternating):`);
    console.log(`  with the class-data archive:   ${a.text}`);
    console.log(`  baseline, no archive:          ${b.text}`);
    console.log(`  ratio (median): ${(a.median / b.median).toFixed(2)}`);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
