/**
 * The dev stack's defaults are defined once, in infra/defaults.env: lib/config.ts and infra/stack.sh read
 * that file, and docker-compose.yml (which Docker reads on its own) is checked against it here. Needs no
 * running service: `stack.sh env` only prints what the script would use.
 *
 *   node --import tsx --test test/infra/defaults.test.ts
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, realpathSync } from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { type FerryConfig, parseStackDefaults, readStackDefaults } from '../../lib/config';

const run = promisify(execFile);
const repoRoot = path.resolve(__dirname, '../..');
const defaults = readStackDefaults();

/** An environment with no FERRY_* variable of the caller's, plus `vars`. */
function cleanEnv(vars: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('FERRY_')) env[name] = value;
  return { ...env, ...vars };
}

async function configIn(env: NodeJS.ProcessEnv): Promise<FerryConfig> {
  const { stdout } = await run(
    process.execPath,
    ['--import', 'tsx', '-e', "process.stdout.write(JSON.stringify(require('./lib/config').loadConfig()))"],
    { cwd: repoRoot, env },
  );
  return JSON.parse(stdout) as FerryConfig;
}

async function stackEnvIn(env: NodeJS.ProcessEnv): Promise<Record<string, string>> {
  const { stdout } = await run('bash', [path.join(repoRoot, 'infra/stack.sh'), 'env'], { cwd: repoRoot, env });
  const exports: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const m = /^export ([A-Z0-9_]+)='?(.*?)'?$/.exec(line);
    if (m) exports[m[1]] = m[2];
  }
  return exports;
}

/** stack.sh resolves symbolic links in folders (realpath); lib/config.ts does not. */
function real(dir: string): string {
  try {
    return realpathSync(dir);
  } catch {
    return dir;
  }
}

describe('stack defaults: lib/config.ts and infra/stack.sh', () => {
  test('defaults.env names every default the stack needs, each once', () => {
    const text = readFileSync(path.join(repoRoot, 'infra/defaults.env'), 'utf8');
    const names = text.split('\n').flatMap((line) => /^([A-Z][A-Z0-9_]*)=/.exec(line)?.[1] ?? []);
    assert.equal(new Set(names).size, names.length, `a name is listed twice: ${names.join(' ')}`);
    for (const name of ['FERRY_PG_PORT', 'FERRY_PG_USER', 'FERRY_S3_BUCKET', 'FERRY_STATE_DIR', 'FERRY_API_PORT'])
      assert.ok(name in defaults, `${name} has a default`);
  });

  test('a line that is not NAME=value is refused with its line number', () => {
    assert.deepEqual(parseStackDefaults('# c\n\nA=1\nB=x=y\n', 'f'), { A: '1', B: 'x=y' });
    assert.throws(() => parseStackDefaults('A=1\nexport B=2\n', 'f'), /f:2: expected NAME=value/);
  });

  for (const [label, vars] of [
    ['with no FERRY_* variable set', {}],
    [
      'with variables overriding the defaults',
      {
        FERRY_PG_PORT: '6543',
        FERRY_PG_USER: 'alice',
        FERRY_PG_DATABASE: 'meta',
        FERRY_S3_BUCKET: 'other-bucket',
        FERRY_S3_SECRET_KEY: 's3cret',
        FERRY_TEMPORAL_PORT: '7300',
        FERRY_TEMPORAL_NAMESPACE: 'ns',
        FERRY_REGISTRY_PORT: '5100',
        FERRY_STATE_DIR: '/tmp/ferry-defaults-test-state',
        FERRY_CACHE_DIR: '',
      },
    ],
  ] as const) {
    test(`stack.sh env and loadConfig agree ${label}`, async () => {
      const env = cleanEnv(vars);
      const [config, stack] = await Promise.all([configIn(env), stackEnvIn(env)]);
      assert.deepEqual(
        {
          FERRY_STATE_DIR: real(config.stateDir),
          FERRY_CACHE_DIR: real(config.cacheDir),
          FERRY_TEMPORAL_ADDRESS: config.temporal.address,
          FERRY_TEMPORAL_NAMESPACE: config.temporal.namespace,
          FERRY_TEMPORAL_UI_URL: config.temporal.uiUrl,
          FERRY_DATABASE_URL: config.postgres.url,
          FERRY_S3_ENDPOINT: config.s3.endpoint,
          FERRY_S3_BUCKET: config.s3.bucket,
          FERRY_S3_REGION: config.s3.region,
          FERRY_S3_ACCESS_KEY: config.s3.accessKeyId,
          FERRY_S3_SECRET_KEY: config.s3.secretAccessKey,
          FERRY_REGISTRY_URL: config.registry.url,
        },
        {
          FERRY_STATE_DIR: stack.FERRY_STATE_DIR,
          FERRY_CACHE_DIR: stack.FERRY_CACHE_DIR,
          FERRY_TEMPORAL_ADDRESS: stack.FERRY_TEMPORAL_ADDRESS,
          FERRY_TEMPORAL_NAMESPACE: stack.FERRY_TEMPORAL_NAMESPACE,
          FERRY_TEMPORAL_UI_URL: stack.FERRY_TEMPORAL_UI_URL,
          FERRY_DATABASE_URL: stack.FERRY_DATABASE_URL,
          FERRY_S3_ENDPOINT: stack.FERRY_S3_ENDPOINT,
          FERRY_S3_BUCKET: stack.FERRY_S3_BUCKET,
          FERRY_S3_REGION: stack.FERRY_S3_REGION,
          FERRY_S3_ACCESS_KEY: stack.FERRY_S3_ACCESS_KEY,
          FERRY_S3_SECRET_KEY: stack.FERRY_S3_SECRET_KEY,
          FERRY_REGISTRY_URL: stack.FERRY_REGISTRY_URL,
        },
      );
      for (const [name, value] of Object.entries(vars))
        if (value !== '' && name in stack && !name.endsWith('_DIR')) assert.equal(stack[name], value, name);
    });
  }

  test('the defaults are what a fresh clone gets', async () => {
    const config = await configIn(cleanEnv());
    assert.equal(
      config.postgres.url,
      `postgres://${defaults.FERRY_PG_USER}:${defaults.FERRY_PG_PASSWORD}@127.0.0.1:${defaults.FERRY_PG_PORT}/${defaults.FERRY_PG_DATABASE}`,
    );
    assert.equal(config.stateDir, path.join(repoRoot, defaults.FERRY_STATE_DIR));
    assert.equal(config.worker.metricsPort, Number(defaults.FERRY_WORKER_METRICS_PORT));
  });
});

/**
 * docker-compose.yml is read by Docker, not by Ferry, so it keeps its own literals; these tests find each
 * one (every pattern must match) and compare it with defaults.env. Line patterns rather than a YAML
 * parser: the file's layout is Ferry's own, and no YAML package is a dependency of the project.
 */
describe('stack defaults: docker-compose.yml', () => {
  const compose = readFileSync(path.join(repoRoot, 'docker-compose.yml'), 'utf8');

  /** The one value of `key: value` in the file (there must be exactly one). */
  function composeValue(key: string): string {
    const found = [...compose.matchAll(new RegExp(`^\\s+${key}: *(.*?) *$`, 'gm'))].map((m) =>
      m[1].replace(/^"(.*)"$/, '$1'),
    );
    assert.equal(found.length, 1, `docker-compose.yml has one "${key}:" (found ${found.length})`);
    return found[0];
  }

  test('every FERRY_X:-default interpolation (host ports) defaults to defaults.env', () => {
    const uses = [...compose.matchAll(/\$\{(FERRY_[A-Z0-9_]+):-([^}]*)\}/g)];
    assert.ok(uses.length >= 7, `found ${uses.length} interpolations`);
    for (const [text, name, value] of uses) assert.equal(value, defaults[name], `${text} in docker-compose.yml`);
  });

  test("Ferry's containers get the defaults' names, credentials and ports", () => {
    for (const name of [
      'FERRY_TEMPORAL_NAMESPACE',
      'FERRY_TASK_QUEUE',
      'FERRY_S3_BUCKET',
      'FERRY_S3_REGION',
      'FERRY_S3_ACCESS_KEY',
      'FERRY_S3_SECRET_KEY',
      'FERRY_GATEWAY_PORT',
      'FERRY_API_PORT',
    ])
      assert.equal(composeValue(name), defaults[name], name);
    const db = new URL(composeValue('FERRY_DATABASE_URL'));
    assert.deepEqual(
      [db.username, db.password, db.pathname.slice(1)],
      [defaults.FERRY_PG_USER, defaults.FERRY_PG_PASSWORD, defaults.FERRY_PG_DATABASE],
    );
    // inside the network the gateway and API listen on their FERRY_*_PORT, which the host port maps to
    for (const name of ['FERRY_GATEWAY_PORT', 'FERRY_API_PORT']) {
      const mapping = `\${${name}:-${defaults[name]}}:${defaults[name]}`;
      assert.ok(compose.includes(mapping), `docker-compose.yml publishes ${mapping}`);
    }
    assert.equal(composeValue('FERRY_GATEWAY_URL'), `http://gateway:${defaults.FERRY_GATEWAY_PORT}`);
    assert.equal(composeValue('FERRY_API_URL'), `http://api:${defaults.FERRY_API_PORT}`);
  });

  test('postgres and seaweedfs are set up with the same role, database, bucket and keys', () => {
    assert.equal(composeValue('POSTGRES_USER'), defaults.FERRY_PG_USER);
    assert.equal(composeValue('POSTGRES_PASSWORD'), defaults.FERRY_PG_PASSWORD);
    assert.equal(composeValue('POSTGRES_DB'), defaults.FERRY_PG_DATABASE);
    const healthCheck = `pg_isready, -U, ${defaults.FERRY_PG_USER}, -d, ${defaults.FERRY_PG_DATABASE}]`;
    assert.ok(compose.includes(healthCheck), `the health check asks for the same role and database: ${healthCheck}`);
    assert.deepEqual(
      [...compose.matchAll(/- -bucket=(\S+)$/gm)].map((m) => m[1]),
      [defaults.FERRY_S3_BUCKET],
    );
    const s3 = JSON.parse(readFileSync(path.join(repoRoot, 'infra/compose/seaweedfs-s3.json'), 'utf8'));
    assert.deepEqual(s3.identities[0].credentials, [
      { accessKey: defaults.FERRY_S3_ACCESS_KEY, secretKey: defaults.FERRY_S3_SECRET_KEY },
    ]);
  });
});
