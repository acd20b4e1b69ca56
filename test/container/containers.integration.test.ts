/**
 * Real containers under youki and runc (both must be installed: `bash infra/install-container-runtime.sh`;
 * a runtime that is missing fails its tests, saying so). Each test starts containers from a rootfs made
 * of this host's busybox and node (hostRootfs.ts) and checks what the kernel enforces.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Container, type RunContainerRequest, runContainer } from '../../lib/container/container';
import {
  type ContainerRuntime,
  findRuntime,
  RUNTIME_NAMES,
  type RuntimeName,
} from '../../lib/container/containerRuntime';
import { type HostRootfs, makeHostRootfs, TEST_EXTRA_GROUP, TEST_USER } from './hostRootfs';

const MiB = 1 << 20;

/** The container's stdout lines, without conmon's "<time> <stream> <F|P> " prefix. */
async function output(c: Container, stream: 'stdout' | 'stderr' = 'stdout'): Promise<string[]> {
  const text = await readFile(c.logPath, 'utf8').catch(() => '');
  return text
    .split('\n')
    .map((l) => /^\S+ (stdout|stderr) [FP] (.*)$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null && m[1] === stream)
    .map((m) => m[2]!);
}

function get(socketPath: string, urlPath: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath, path: urlPath }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
  });
}

async function waitFor(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

let fs: HostRootfs;
let bundlesDir: string;
before(async () => {
  fs = await makeHostRootfs();
  bundlesDir = await mkdtemp(path.join(os.tmpdir(), 'ferry-bundles-'));
});
after(async () => {
  await fs?.remove();
  if (bundlesDir) await rm(bundlesDir, { recursive: true, force: true });
});

for (const name of RUNTIME_NAMES) {
  describe(`containers under ${name}`, () => {
    let runtime: ContainerRuntime | undefined;
    const runtimeOrFail = async (): Promise<ContainerRuntime> => {
      // No skip: a runtime Ferry relies on that is not installed is a failure, with findRuntime's message.
      runtime ??= await findRuntime(name as RuntimeName);
      return runtime;
    };
    const started: Container[] = [];
    const start = async (over: Partial<RunContainerRequest> & { args: string[] }): Promise<Container> => {
      const c = await runContainer({
        rootfs: fs.rootfs,
        image: { User: TEST_USER.name, WorkingDir: '/' },
        limits: { cpus: 0.5, memoryBytes: 64 * MiB },
        runtime: await runtimeOrFail(),
        bundlesDir,
        ...over,
      });
      started.push(c);
      return c;
    };
    after(async () => {
      for (const c of started) await c.remove();
    });

    test('runs as the image user, with no capabilities, no new privileges and the seccomp filter', async () => {
      const c = await start({
        args: [
          '/bin/sh',
          '-c',
          'id -u; id -g; id -G; grep -E "^(CapEff|CapPrm|NoNewPrivs|Seccomp):" /proc/self/status',
        ],
      });
      const exit = await c.exited;
      assert.equal(exit.exitStatus, 0, exit.reason);
      const lines = await output(c);
      assert.equal(lines[0], String(TEST_USER.uid));
      assert.equal(lines[1], String(TEST_USER.gid));
      assert.deepEqual(lines[2]!.split(' ').map(Number).sort(), [TEST_USER.gid, TEST_EXTRA_GROUP.gid]);
      const status = Object.fromEntries(lines.slice(3).map((l) => l.split(/:\s+/) as [string, string]));
      assert.equal(status.CapEff, '0000000000000000');
      assert.equal(status.CapPrm, '0000000000000000');
      assert.equal(status.NoNewPrivs, '1');
      assert.equal(status.Seccomp, '2', 'a seccomp filter is installed (mode 2)');
    });

    test('cannot write its root filesystem; /tmp is a writable tmpfs', async () => {
      const c = await start({
        args: ['/bin/sh', '-c', 'touch /etc/x 2>&1; echo "root:$?"; touch /tmp/x 2>&1; echo "tmp:$?"'],
      });
      await c.exited;
      const lines = await output(c);
      assert.ok(
        lines.some((l) => /Read-only file system/.test(l)),
        lines.join('\n'),
      );
      assert.ok(lines.includes('root:1'), lines.join('\n'));
      assert.ok(lines.includes('tmp:0'), lines.join('\n'));
      assert.ok(!existsSync(path.join(fs.rootfs, 'etc', 'x')));
    });

    test('the seccomp profile refuses a call a non-root process may otherwise make (unshare)', async () => {
      const c = await start({ args: ['/bin/sh', '-c', 'unshare -U -r id 2>&1; echo "rc:$?"'] });
      await c.exited;
      const lines = await output(c);
      assert.ok(
        lines.some((l) => /Operation not permitted/.test(l)),
        lines.join('\n'),
      );
      assert.ok(lines.includes('rc:1'), lines.join('\n'));
    });

    test('its CPU quota, memory limit (and memory+swap) and pids limit are in its cgroup', async () => {
      const c = await start({ args: ['/bin/sleep', '30'], limits: { cpus: 0.5, memoryBytes: 48 * MiB, pids: 64 } });
      const cg = c.hostCgroups;
      assert.deepEqual(await cg.cpuQuota(c.cgroupPath), { quotaUs: 50_000, periodUs: 100_000 });
      assert.equal(await cg.memoryLimit(c.cgroupPath), 48 * MiB);
      assert.equal(await cg.pidsLimit(c.cgroupPath), 64);
      if (cg.mode !== 'v2' && (await cg.swapAccounting())) {
        const memsw = await readFile(
          path.join(cg.controllerDir('memory', c.cgroupPath), 'memory.memsw.limit_in_bytes'),
          'utf8',
        );
        assert.equal(Number(memsw.trim()), 48 * MiB, 'memory+swap equals the memory limit: no swap');
      }
      // The init is pid 1 and ignores SIGTERM: stop() must escalate to SIGKILL.
      const exit = await c.stop(300);
      assert.equal(exit.signal, 'SIGKILL');
      assert.equal(exit.oomKilled, false);
      assert.equal(exit.reason, 'killed by SIGKILL');
    });

    test('is killed over its memory limit, and the reason says OOM', async () => {
      // A shell variable of 200 MB in a 32 MiB container.
      const c = await start({
        args: ['/bin/sh', '-c', 'x=$(head -c 200000000 /dev/zero | tr "\\0" a); echo survived'],
        limits: { cpus: 1, memoryBytes: 32 * MiB },
      });
      const exit = await c.exited;
      assert.equal(exit.oomKilled, true, exit.reason);
      assert.equal(exit.exitStatus, 137);
      assert.ok(exit.oomKills >= 1);
      assert.match(exit.reason, /^OOM-killed: over its 32 MiB memory limit/);
      assert.ok(!(await output(c)).includes('survived'));
    });

    test('an exit code comes back as it is', async () => {
      const c = await start({ args: ['/bin/sh', '-c', 'exit 3'] });
      const exit = await c.exited;
      assert.equal(exit.exitStatus, 3);
      assert.equal(exit.reason, 'exited with code 3');
    });

    test('serves HTTP on a Unix socket in the bind-mounted folder, which the host reaches', async () => {
      const socketDir = await mkdtemp(path.join(bundlesDir, 'sock-'));
      const server = [
        "const http = require('node:http');",
        'const s = http.createServer((req, res) => res.end(JSON.stringify({ uid: process.getuid(), url: req.url })));',
        "process.on('SIGTERM', () => s.close(() => process.exit(0)));",
        's.listen(process.env.FERRY_SOCKET);',
      ].join('\n');
      const c = await start({
        args: ['/usr/bin/node', '-e', server],
        bindMounts: [{ hostPath: socketDir, containerPath: '/run/ferry', ownedByContainer: true }],
        env: { FERRY_SOCKET: '/run/ferry/replica.sock' },
        limits: { cpus: 1, memoryBytes: 128 * MiB },
      });
      const hostSocket = path.join(socketDir, 'replica.sock');
      await waitFor('the replica socket', () => existsSync(hostSocket) || c.exit !== undefined);
      assert.equal(c.exit, undefined, `the container exited: ${c.exit?.reason}`);
      const res = await get(hostSocket, '/infer');
      assert.equal(res.status, 200);
      assert.deepEqual(JSON.parse(res.body), { uid: TEST_USER.uid, url: '/infer' });

      // Another process can find the running container again from its bundle folder.
      const reopened = await Container.open(c.bundleDir);
      assert.equal((await reopened.state())?.status, 'running');
      assert.equal(reopened.pid, c.pid);

      const exit = await c.stop(5_000);
      assert.equal(exit.exitStatus, 0, exit.reason);
      assert.equal((await reopened.exited).exitStatus, 0);
    });

    test('remove() deletes the container, its cgroup and its bundle folder', async () => {
      const c = await start({ args: ['/bin/sleep', '30'] });
      const cgroupDirs = c.hostCgroups.allDirs(c.cgroupPath);
      assert.ok(
        cgroupDirs.some((d) => existsSync(d)),
        'the cgroup exists while it runs',
      );
      await c.remove();
      assert.equal(await c.state(), null);
      for (const d of cgroupDirs) assert.ok(!existsSync(d), `${d} is gone`);
      assert.ok(!existsSync(c.bundleDir));
      assert.equal(c.exit?.reason, 'killed by SIGKILL');
    });

    test(`says which runtime ran it (${name})`, async () => {
      const c = await start({ args: ['/bin/sh', '-c', 'true'] });
      assert.equal(c.runtime.name, name);
      assert.match(c.runtime.version, new RegExp(name));
      await c.exited;
    });
  });
}
