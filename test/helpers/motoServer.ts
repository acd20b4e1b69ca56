/**
 * moto's server (an emulator of an AWS account) for one test file: installed by infra/install-moto.sh
 * when missing, started on 127.0.0.1 on a free port, stopped by `stop()`. Every moto server is its own
 * empty account, so test files never see each other's resources.
 */
import { execFile, spawn } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../lib/gateway/replicaProcess';

const run = promisify(execFile);
const repoRoot = path.resolve(__dirname, '../..');

export interface MotoServer {
  /** e.g. http://127.0.0.1:41234: the endpoint override for the AWS SDK clients. */
  endpoint: string;
  /** Environment for code that reads the standard AWS variables (keys are moto's dummies). */
  env: Record<string, string>;
  stop(): Promise<void>;
}

export async function startMotoServer(): Promise<MotoServer> {
  const { stdout } = await run('bash', [path.join(repoRoot, 'infra/install-moto.sh')], { timeout: 300_000 });
  const exe = stdout.trim().split('\n').pop() as string;
  const port = await freePort();
  const child = spawn(exe, ['-H', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d) => {
    stderr = (stderr + d).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const endpoint = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`moto_server exited with ${child.exitCode}: ${stderr}`);
    try {
      // moto's own dashboard API answers once the server is up.
      const res = await fetch(`${endpoint}/moto-api/data.json`);
      if (res.ok) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`moto_server did not answer on ${endpoint} within 30 s: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    endpoint,
    env: {
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
      AWS_REGION: 'us-east-1',
      AWS_ENDPOINT_URL_EC2: endpoint,
    },
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}
