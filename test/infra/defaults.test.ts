/**
 * The dev stack's defaults are defined once, in infra/defaults.env: lib/config.ts and infra/stack.sh read
 * that file, and docker-compose.yml (which Docker reads on its own) is checked against it here. Needs no
 * running service: `stack.sh env` only prints what the script would use.
 *
 *   node --import tsx --test test/infra/defaults.test.ts
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { type FerryConfig, parseStackDefaults, readStackDefaults, STACK_CREDENTIALS_FILE } from '../../lib/config';

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
        // Given, like the S3 keys: with a state dir of its own, lib/config.ts falls back to the default
        // state dir's credentials (a dev stack started in this clone) where stack.sh uses its own.
        FERRY_PG_PASSWORD: 'pg-pass',
        FERRY_S3_BUCKET: 'other-bucket',
        FERRY_S3_ACCESS_KEY: 'alice-key',
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
          // none yet (a stack never started): stack.sh prints no export, lib/config.ts has empty keys
          FERRY_S3_ACCESS_KEY: stack.FERRY_S3_ACCESS_KEY ?? '',
          FERRY_S3_SECRET_KEY: stack.FERRY_S3_SECRET_KEY ?? '',
          FERRY_REGISTRY_URL: stack.FERRY_REGISTRY_URL,
        },
      );
      for (const [name, value] of Object.entries(vars))
        if (value !== '' && name in stack && !name.endsWith('_DIR')) assert.equal(stack[name], value, name);
    });
  }

  test('the defaults are what a fresh clone gets', async () => {
    const config = await configIn(cleanEnv());
    const db = new URL(config.postgres.url);
    assert.deepEqual(
      [db.username, db.host, db.pathname.slice(1)],
      [defaults.FERRY_PG_USER, `127.0.0.1:${defaults.FERRY_PG_PORT}`, defaults.FERRY_PG_DATABASE],
    );
    assert.equal(config.stateDir, path.join(repoRoot, defaults.FERRY_STATE_DIR));
    assert.equal(config.worker.metricsPort, Number(defaults.FERRY_WORKER_METRICS_PORT));
    assert.equal(config.access.auth, true, 'auth is on unless FERRY_AUTH=off says otherwise');
    assert.equal(
      config.api.key,
      undefined,
      'no key by default: clients send the admin key file (lib/auth/clientKey.ts)',
    );
  });

  test('FERRY_AUTH is on or off; any other value is refused rather than read as one of them', async () => {
    assert.equal((await configIn(cleanEnv({ FERRY_AUTH: 'off' }))).access.auth, false);
    assert.equal((await configIn(cleanEnv({ FERRY_AUTH: 'on' }))).access.auth, true);
    await assert.rejects(configIn(cleanEnv({ FERRY_AUTH: 'false' })), /FERRY_AUTH must be on or off, got "false"/);
  });
});

/**
 * The stack's credentials are made per install (stack.sh credentials/start) into the state dir, and both
 * readers take them from there, the environment winning. `stack.sh credentials` starts nothing.
 */
describe('stack credentials: per install, in the state dir', () => {
  const NAMES = [
    'FERRY_PG_PASSWORD',
    'FERRY_S3_ACCESS_KEY',
    'FERRY_S3_SECRET_KEY',
    'FERRY_REGISTRY_USER',
    'FERRY_REGISTRY_PASSWORD',
  ];
  const scratch = mkdtempSync(path.join(tmpdir(), 'ferry-credentials-test-'));
  after(() => rmSync(scratch, { recursive: true, force: true }));

  function fromConfig(config: FerryConfig): Record<string, string | undefined> {
    return {
      FERRY_PG_PASSWORD: decodeURIComponent(new URL(config.postgres.url).password),
      FERRY_S3_ACCESS_KEY: config.s3.accessKeyId,
      FERRY_S3_SECRET_KEY: config.s3.secretAccessKey,
      FERRY_REGISTRY_USER: config.registry.credentials?.username,
      FERRY_REGISTRY_PASSWORD: config.registry.credentials?.password,
    };
  }

  test('defaults.env has no Postgres password, S3 keys or registry password: nothing fixed to guess', () => {
    for (const name of NAMES) assert.ok(!(name in defaults), `${name} has no default`);
  });

  test('made once with mode 0600, random per state dir, kept by the next run, read by lib/config.ts', async () => {
    const made: Record<string, string>[] = [];
    for (const dir of ['a', 'b', 'a']) {
      const env = cleanEnv({ FERRY_STATE_DIR: path.join(scratch, dir) });
      const { stdout } = await run('bash', [path.join(repoRoot, 'infra/stack.sh'), 'credentials'], { env });
      const printed = Object.fromEntries(
        [...stdout.matchAll(/^export (FERRY_[A-Z0-9_]+)='(.*)'$/gm)].map((m) => [m[1], m[2]] as const),
      );
      assert.deepEqual(Object.keys(printed).sort(), [...NAMES].sort());
      const file = path.join(scratch, dir, STACK_CREDENTIALS_FILE);
      assert.equal(statSync(file).mode & 0o777, 0o600, `${file} is private`);
      assert.deepEqual(fromConfig(await configIn(env)), printed, 'lib/config.ts reads the same file');
      assert.deepEqual((await stackEnvIn(env)).FERRY_REGISTRY_PASSWORD, printed.FERRY_REGISTRY_PASSWORD);
      made.push(printed);
    }
    const [a, b, aAgain] = made;
    assert.deepEqual(aAgain, a, 'a second run keeps what the first made');
    assert.notEqual(a.FERRY_S3_SECRET_KEY, b.FERRY_S3_SECRET_KEY, 'another install, other keys');
    assert.notEqual(a.FERRY_REGISTRY_PASSWORD, b.FERRY_REGISTRY_PASSWORD);
    assert.notEqual(a.FERRY_PG_PASSWORD, b.FERRY_PG_PASSWORD);
    assert.match(a.FERRY_PG_PASSWORD, /^[0-9a-f]{48}$/);
    assert.equal(
      (await stackEnvIn(cleanEnv({ FERRY_STATE_DIR: path.join(scratch, 'a') }))).FERRY_DATABASE_URL,
      `postgres://${defaults.FERRY_PG_USER}:${a.FERRY_PG_PASSWORD}@127.0.0.1:${defaults.FERRY_PG_PORT}/${defaults.FERRY_PG_DATABASE}`,
      "stack.sh's URL has the install's password",
    );
    assert.match(a.FERRY_S3_SECRET_KEY, /^[0-9a-f]{48}$/);
    assert.match(a.FERRY_REGISTRY_PASSWORD, /^[0-9a-f]{48}$/);
  });

  test('a variable set in the environment wins over the file, in both readers', async () => {
    const stateDir = path.join(scratch, 'override');
    mkdirSync(stateDir, { recursive: true });
    writeFileSync(
      path.join(stateDir, STACK_CREDENTIALS_FILE),
      'FERRY_PG_PASSWORD=file-pg\nFERRY_S3_ACCESS_KEY=file-key\nFERRY_S3_SECRET_KEY=file-secret\nFERRY_REGISTRY_USER=file-user\nFERRY_REGISTRY_PASSWORD=file-pw\n',
      { mode: 0o600 },
    );
    const env = cleanEnv({
      FERRY_STATE_DIR: stateDir,
      FERRY_S3_SECRET_KEY: 'env-secret',
      FERRY_REGISTRY_PASSWORD: 'env-pw',
    });
    const want = {
      FERRY_PG_PASSWORD: 'file-pg',
      FERRY_S3_ACCESS_KEY: 'file-key',
      FERRY_S3_SECRET_KEY: 'env-secret',
      FERRY_REGISTRY_USER: 'file-user',
      FERRY_REGISTRY_PASSWORD: 'env-pw',
    };
    assert.deepEqual(fromConfig(await configIn(env)), want);
    const stack = await stackEnvIn(env);
    assert.deepEqual(Object.fromEntries(NAMES.map((name) => [name, stack[name]])), want);
  });

  test('a stack first started before the Postgres password was per install keeps its old one until start makes one', async () => {
    const stateDir = path.join(scratch, 'older-stack');
    mkdirSync(stateDir, { recursive: true });
    const file = path.join(stateDir, STACK_CREDENTIALS_FILE);
    writeFileSync(
      file,
      'FERRY_S3_ACCESS_KEY=k\nFERRY_S3_SECRET_KEY=s\nFERRY_REGISTRY_USER=u\nFERRY_REGISTRY_PASSWORD=p\n',
      {
        mode: 0o600,
      },
    );
    const env = cleanEnv({ FERRY_STATE_DIR: stateDir });
    const legacy = defaults.FERRY_PG_LEGACY_PASSWORD;
    assert.equal(fromConfig(await configIn(env)).FERRY_PG_PASSWORD, legacy);
    assert.match((await stackEnvIn(env)).FERRY_DATABASE_URL, new RegExp(`^postgres://\\w+:${legacy}@`));
    // `stack.sh credentials` (as `start` does) adds the one line that is missing and keeps the others.
    await run('bash', [path.join(repoRoot, 'infra/stack.sh'), 'credentials'], { env });
    const made = fromConfig(await configIn(env));
    assert.match(made.FERRY_PG_PASSWORD ?? '', /^[0-9a-f]{48}$/);
    assert.equal(made.FERRY_S3_SECRET_KEY, 's');
    assert.match((await stackEnvIn(env)).FERRY_DATABASE_URL, new RegExp(`:${made.FERRY_PG_PASSWORD}@`));
  });

  test("a Ferry process with a state dir of its own uses the default state dir's credentials", async () => {
    const own = path.join(scratch, 'a-test-of-its-own');
    mkdirSync(own, { recursive: true });
    assert.deepEqual(
      fromConfig(await configIn(cleanEnv({ FERRY_STATE_DIR: own }))),
      fromConfig(await configIn(cleanEnv())),
    );
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
      'FERRY_GATEWAY_PORT',
      'FERRY_API_PORT',
    ])
      assert.equal(composeValue(name), defaults[name], name);
    assert.equal(
      composeValue('FERRY_DATABASE_URL'),
      `postgres://${defaults.FERRY_PG_USER}:\${FERRY_PG_PASSWORD:?run: bash infra/stack.sh credentials (see the header)}@postgres:5432/${defaults.FERRY_PG_DATABASE}`,
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
    assert.equal(composeValue('POSTGRES_PASSWORD'), '*pg-password');
    assert.equal(composeValue('POSTGRES_DB'), defaults.FERRY_PG_DATABASE);
    const healthCheck = `pg_isready, -U, ${defaults.FERRY_PG_USER}, -d, ${defaults.FERRY_PG_DATABASE}]`;
    assert.ok(compose.includes(healthCheck), `the health check asks for the same role and database: ${healthCheck}`);
    assert.deepEqual(
      [...compose.matchAll(/- -bucket=(\S+)$/gm)].map((m) => m[1]),
      [defaults.FERRY_S3_BUCKET],
    );
  });

  test("the credentials come from the environment (stack.sh credentials), the same for Ferry's containers and the services", () => {
    for (const name of [
      'FERRY_PG_PASSWORD',
      'FERRY_S3_ACCESS_KEY',
      'FERRY_S3_SECRET_KEY',
      'FERRY_REGISTRY_USER',
      'FERRY_REGISTRY_PASSWORD',
    ]) {
      assert.match(
        composeValue(name),
        new RegExp(`^&\\S+ "\\$\\{${name}:\\?`),
        `${name} is required from the environment`,
      );
    }
    // SeaweedFS's one identity, and the htpasswd file the registry checks, are made from the same anchors
    assert.match(compose, /AWS_ACCESS_KEY_ID: \*s3-access-key$/m);
    assert.match(compose, /AWS_SECRET_ACCESS_KEY: \*s3-secret-key$/m);
    assert.match(compose, /REGISTRY_AUTH: htpasswd$/m);
    assert.match(compose, /HTPASSWD_PASSWORD: \*registry-password$/m);
  });
});
