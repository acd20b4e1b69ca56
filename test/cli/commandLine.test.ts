/**
 * The `ferry` command line's parsing, as a user meets it: help generated from each command's
 * declaration, unknown flags and commands refused by name with exit code 1, and bad flag values refused
 * with Ferry's own message before anything is contacted (Temporal and the gateway point at a closed port
 * here, so a command that tried to reach them would fail differently). The command lines run in this
 * process through runCli, which bin/ferry runs too; the last test checks that bin/ferry as a subprocess
 * answers the same.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { before, test } from 'node:test';
import { format, promisify } from 'node:util';
import { runCli } from '../../client/cli/runCli';
import { type FerryConfig, loadConfig } from '../../lib/config';
import { freePort } from '../../lib/gateway/replicaProcess';

const run = promisify(execFile);
const ferryBin = path.resolve(__dirname, '../../bin/ferry');
let closedPort: number;
let config: FerryConfig;

before(async () => {
  closedPort = await freePort();
  const base = loadConfig();
  config = {
    ...base,
    temporal: { ...base.temporal, address: `127.0.0.1:${closedPort}` },
    gateway: { ...base.gateway, url: `http://127.0.0.1:${closedPort}` },
    api: { ...base.api, url: `http://127.0.0.1:${closedPort}` },
  };
});

/** One command line in this process: commands print with console.log/error, commander through runCli's output. */
async function ferry(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const { log, error } = console;
  console.log = (...a: unknown[]) => {
    out += `${format(...a)}\n`;
  };
  console.error = (...a: unknown[]) => {
    err += `${format(...a)}\n`;
  };
  try {
    const code = await runCli(args, config, { out: (t) => (out += t), err: (t) => (err += t) });
    return { code, out, err };
  } finally {
    console.log = log;
    console.error = error;
    process.exitCode = undefined;
  }
}

/** bin/ferry as a subprocess, against the same closed port. */
async function ferryProcess(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const env = {
    ...process.env,
    FERRY_TEMPORAL_ADDRESS: `127.0.0.1:${closedPort}`,
    FERRY_GATEWAY_URL: `http://127.0.0.1:${closedPort}`,
    FERRY_API_URL: `http://127.0.0.1:${closedPort}`,
  };
  try {
    const { stdout, stderr } = await run(ferryBin, args, { env, timeout: 60_000 });
    return { code: 0, out: stdout, err: stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof x.code === 'number' ? x.code : -1, out: x.stdout ?? '', err: x.stderr ?? '' };
  }
}

test('ferry --help lists every command by group; ferry alone and ferry help print the same', async () => {
  const help = await ferry('--help');
  assert.equal(help.code, 0, help.err);
  for (const heading of [
    'Deploy and operate:',
    'Traffic and scaling',
    'Optimize without deploying',
    'Run Ferry on this machine:',
    'Keys and the audit log',
  ])
    assert.ok(help.out.includes(heading), `heading ${heading}:\n${help.out}`);
  for (const command of [
    'deploy',
    'promote',
    'rollback',
    'status',
    'approve',
    'list',
    'infer',
    'undeploy',
    'traffic',
    'scale',
    'keys',
    'audit',
    'optimize',
    'up',
    'down',
    'ps',
    'demo',
    'example',
    'serve',
    'worker',
    'gateway',
    'api',
  ])
    assert.match(help.out, new RegExp(`^  ${command}\\b`, 'm'), `command ${command} listed`);
  const bare = await ferry();
  const helpCommand = await ferry('help');
  assert.deepEqual(bare, help);
  assert.deepEqual(helpCommand, help);
});

test("ferry <command> --help shows that command's arguments and flags", async () => {
  const deploy = await ferry('deploy', '--help');
  const scale = await ferry('help', 'scale');
  assert.equal(deploy.code, 0, deploy.err);
  assert.match(deploy.out, /^Usage: ferry deploy \[options\] <model\.onnx>/);
  for (const flag of [
    '--review',
    '--name <name>',
    '--replicas <n>',
    '--approval-timeout <duration>',
    '--no-wait',
    '--canary <percent>',
    '--canary-of <deployment>',
  ])
    assert.ok(deploy.out.includes(flag), `deploy --help has ${flag}`);
  assert.equal(scale.code, 0, scale.err);
  for (const flag of [
    '--replicas <n>',
    '--min <n>',
    '--max <n>',
    '--target-concurrency <x>',
    '--scale-to-zero-after <duration>',
    '--no-scale-to-zero',
    '--json',
  ])
    assert.ok(scale.out.includes(flag), `scale --help has ${flag}`);
  assert.ok(!scale.out.includes('--canary'), 'a command lists its own flags only');
});

test('an unknown flag is refused by name with exit code 1, and nothing runs', async () => {
  const cases = [
    ['deploy', 'model.onnx', '--replica', '2'],
    ['status', 'some-deployment', '--jsn'],
    ['traffic', 'some-deployment', '--splt', 'a=100'],
  ] as const;
  const unknownCommand = await ferry('deplyo', 'model.onnx');
  const results: Awaited<ReturnType<typeof ferry>>[] = [];
  for (const args of cases) results.push(await ferry(...args));
  for (const [i, args] of cases.entries()) {
    const r = results[i]!;
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.out}${r.err}`);
    assert.match(r.err, new RegExp(`^error: unknown option '${args.find((a) => a.startsWith('--'))}'`));
    assert.match(r.err, new RegExp(`see \`ferry ${args[0]} --help\``));
    assert.equal(r.out, '');
  }
  assert.equal(unknownCommand.code, 1);
  assert.match(unknownCommand.err, /^error: unknown command 'deplyo'/);
});

test('missing arguments and required flags are named', async () => {
  const noArg = await ferry('status');
  const noPlan = await ferry('approve', 'some-deployment');
  const noScope = await ferry('keys', 'create', '--project', 'p');
  const extra = await ferry('undeploy', 'a', 'b');
  assert.equal(noArg.code, 1);
  assert.match(noArg.err, /missing required argument 'deployment'/);
  assert.equal(noPlan.code, 1);
  assert.match(noPlan.err, /required option '--plan <plan>' not specified/);
  assert.equal(noScope.code, 1);
  assert.match(noScope.err, /required option '--scope <a,b>' not specified/);
  assert.match(noScope.err, /see `ferry keys create --help`/);
  assert.equal(extra.code, 1);
  assert.match(extra.err, /too many arguments for 'undeploy'/);
});

test("bad flag values get Ferry's messages, one line, exit 1, before anything is contacted", async () => {
  const refused = async (args: string[], message: string) => {
    const r = await ferry(...args);
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.out}${r.err}`);
    assert.equal(r.err.trim(), `ferry: ${message}`);
  };
  for (const [args, message] of [
    [
      ['deploy', 'model.onnx', '--approval-timeout', 'soon'],
      '"soon" is not a duration (examples: 500ms, 30s, 10m, 2h)',
    ],
    [['deploy', 'model.onnx', '--replicas', '0'], '--replicas must be a positive integer, got "0"'],
    [
      ['deploy', 'model.onnx', '--predictive', 'sometimes'],
      '--predictive must be one of on, off, forecast-only, not "sometimes"',
    ],
    [['deploy', 'model.onnx', '--canary-of', 'x'], '--canary-of needs --canary PERCENT'],
    [
      ['deploy', 'model.onnx', '--canary', '10', '--public'],
      "--public cannot be given with --canary: a canary is served with its deployment's access",
    ],
    [
      ['deploy', 'model.onnx', '--canary', '120'],
      '--canary must be a percentage of the traffic from 0 to 100, got "120"',
    ],
    [
      ['traffic', 'x', '--split', 'stable:100'],
      '--split: "stable:100" is not revision=percent (example: --split stable=90,canary=10)',
    ],
    [['traffic', 'x', '--split', 'a=50,a=50'], '--split: revision "a" is given twice'],
    [
      ['scale', 'x', '--scale-down-delay', 'later'],
      '--scale-down-delay: "later" is not a duration (examples: 500ms, 30s, 10m, 2h)',
    ],
    [
      ['scale', 'x', '--scale-to-zero-after', '10m', '--no-scale-to-zero'],
      'give --scale-to-zero-after or --no-scale-to-zero, not both',
    ],
    [
      ['keys', 'create', '--project', 'p', '--scope', 'read,root'],
      'unknown scope "root"; choose from read, deploy, approve, operate, infer, admin',
    ],
    [
      ['keys', 'create', '--project', 'P!', '--scope', 'read'],
      'invalid project name "P!": use lower-case letters, digits or "-", 1-40 long, starting with a letter or digit',
    ],
    [['audit', '--limit', 'many'], '--limit must be a positive integer, got "many"'],
    [
      ['serve', 'm.onnx', '--max-queue-delay', '5'],
      '--max-queue-delay needs --batch N (dynamic batching is off without it)',
    ],
  ] as Array<[string[], string]>)
    await refused(args, message);
});

test("with valid flags a command does contact Ferry (so the refusals above were the parser's)", async () => {
  const r = await ferry('status', 'some-deployment', '--json');
  const keys = await ferry('keys', 'create', '--project', 'p', '--scope', 'read');
  assert.equal(r.code, 1);
  assert.match(r.err, /^ferry: Temporal at 127\.0\.0\.1:\d+ is not reachable/);
  assert.equal(keys.code, 1);
  assert.match(
    keys.err,
    /^ferry: cannot reach Ferry's API at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\): start it with `ferry up`/,
  );
});

test('bin/ferry as a subprocess answers as runCli does: help, an unknown flag, a bad value, an unreachable service', async () => {
  const cases = [
    ['--help'],
    ['deploy', 'model.onnx', '--replica', '2'],
    ['deploy', 'model.onnx', '--replicas', '0'],
    ['status', 'some-deployment'],
  ];
  // Processes of their own, so these run side by side.
  const processes = await Promise.all(cases.map((args) => ferryProcess(...args)));
  for (const [i, args] of cases.entries()) {
    assert.deepEqual(processes[i], await ferry(...args), `ferry ${args.join(' ')}`);
  }
  assert.deepEqual(
    processes.map((p) => p.code),
    [0, 1, 1, 1],
  );
});

test('bin/ferry writes a long answer whole before it exits (to a pipe, writes are asynchronous)', async () => {
  const prices = await ferryProcess('prices', '--json');
  assert.equal(prices.code, 0, prices.err);
  assert.ok(prices.out.length > 65_536, `${prices.out.length} bytes: longer than a pipe's buffer`);
  assert.ok(Array.isArray(JSON.parse(prices.out).instances), 'the JSON is whole');
});
