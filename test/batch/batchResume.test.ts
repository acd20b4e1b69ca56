/**
 * Resume after a crash: the batch runner's process (runtime/batch/main.ts, as the image runs it) is
 * killed with SIGKILL in the middle of a batch; the second run answers only the requests left, leaves the
 * earlier responses untouched, and the outputs are byte for byte those of one clean run.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { TEMP_PREFIX } from '../../runtime/batch/batchFiles';
import { mlpModel, writeModelDir } from '../runtime/onnxTestModels';

const repoRoot = path.resolve(__dirname, '../..');
const REQUESTS = 240;
const INPUT_DIM = 64;
// ~0.4 GFLOP per request (three 1024x1024 layers over 64 rows): about 10 ms each, a few seconds for
// the batch, so the kill (polled every 10 ms, after a twentieth of it) lands in the middle of it.
const ROWS = 64;

let work: string;
let modelDir: string;
let inputDir: string;

function startRunner(outputDir: string): {
  child: ChildProcess;
  exited: Promise<{ code: number | null; stdout: string; stderr: string }>;
} {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'runtime/batch/main.ts')], {
    cwd: repoRoot,
    env: {
      ...process.env,
      FERRY_MODEL_DIR: modelDir,
      FERRY_BATCH_INPUT: inputDir,
      FERRY_BATCH_OUTPUT: outputDir,
      FERRY_BATCH_CONCURRENCY: '2',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c));
  child.stderr!.on('data', (c: Buffer) => (stderr += c));
  const exited = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.once('exit', (code) => resolve({ code, stdout, stderr })),
  );
  return { child, exited };
}

async function responses(dir: string): Promise<string[]> {
  return (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.response.json')).sort();
}

function lastLine(stdout: string, event: string): Record<string, unknown> {
  const lines = stdout
    .split('\n')
    .filter((l) => l.startsWith('{"ferryBatch"'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.ferryBatch === event);
  assert.ok(lines.length > 0, `no ${event} line in:\n${stdout}`);
  return lines.at(-1)!;
}

before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'ferry-batch-resume-'));
  modelDir = await writeModelDir(path.join(work, 'models'), [
    {
      name: 'mlp',
      version: '1',
      bytes: mlpModel({ inputDim: INPUT_DIM, hiddenDims: [1024, 1024, 1024, 1024], outputDim: 8, seed: 3 }),
      sessionOptions: { intraOpNumThreads: 1 },
    },
  ]);
  inputDir = path.join(work, 'in');
  await mkdir(inputDir);
  for (let r = 0; r < REQUESTS; r++) {
    const data = Array.from({ length: ROWS * INPUT_DIM }, (_, i) => Math.cos(r * 7 + i * 0.01));
    const body = { inputs: [{ name: 'input', datatype: 'FP32', shape: [ROWS, INPUT_DIM], data }] };
    await writeFile(path.join(inputDir, `req-${String(r).padStart(4, '0')}.json`), JSON.stringify(body));
  }
});
after(() => rm(work, { recursive: true, force: true }));

test("SIGKILL mid-batch, then a second run does only the rest and gives the clean run's outputs", {
  timeout: 240_000,
}, async () => {
  const crashed = path.join(work, 'out-crashed');
  const first = startRunner(crashed);
  // Killed once a twentieth of the batch is answered: well after it started, well before it could finish.
  const deadline = Date.now() + 120_000;
  while ((await responses(crashed)).length < REQUESTS / 20) {
    assert.ok(Date.now() < deadline, 'the first run answered too few requests in 2 minutes');
    if (first.child.exitCode !== null) assert.fail(`the first run ended early:\n${(await first.exited).stderr}`);
    await sleep(10);
  }
  first.child.kill('SIGKILL');
  const killed = await first.exited;
  assert.equal(killed.code, null, 'killed by the signal, not exited');
  // What a kill in the middle of a write would leave: a temporary file next to the responses.
  await writeFile(path.join(crashed, `${TEMP_PREFIX}interrupted`), '{"model_name":"mlp","outp');

  const doneBefore = await responses(crashed);
  assert.ok(doneBefore.length < REQUESTS, `the kill came after the batch was over (${doneBefore.length} answered)`);
  const statsBefore = new Map(
    await Promise.all(doneBefore.map(async (n) => [n, (await stat(path.join(crashed, n))).mtimeMs] as const)),
  );

  const second = startRunner(crashed);
  const resumed = await second.exited;
  assert.equal(resumed.code, 0, resumed.stderr);
  const summary = lastLine(resumed.stdout, 'summary');
  assert.equal(summary.total, REQUESTS);
  assert.equal(summary.alreadyDone, doneBefore.length, 'the second run took every earlier response as done');
  assert.equal(summary.succeeded, REQUESTS - doneBefore.length, 'and answered only the rest');
  assert.equal(summary.failed, 0);
  const progress = lastLine(resumed.stdout, 'progress');
  assert.equal(progress.alreadyDone, doneBefore.length);
  for (const [name, mtimeMs] of statsBefore) {
    assert.equal((await stat(path.join(crashed, name))).mtimeMs, mtimeMs, `${name} was written again`);
  }
  assert.ok(!(await readdir(crashed)).some((n) => n.startsWith(TEMP_PREFIX)), 'the leftover temporary file is gone');

  const clean = path.join(work, 'out-clean');
  const cleanRun = await startRunner(clean).exited;
  assert.equal(cleanRun.code, 0, cleanRun.stderr);
  const names = await responses(clean);
  assert.equal(names.length, REQUESTS);
  assert.deepEqual(await responses(crashed), names);
  for (const name of names) {
    const [a, b] = await Promise.all([readFile(path.join(crashed, name)), readFile(path.join(clean, name))]);
    assert.ok(a.equals(b), `${name} differs from the clean run's`);
  }
});
