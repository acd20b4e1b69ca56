import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type BundleSpecInput, bundleSpec, DEFAULT_PIDS_LIMIT } from '../../lib/container/bundleSpec';
import { seccompProfile } from '../../lib/container/seccompProfile';

const MiB = 1 << 20;

function input(over: Partial<BundleSpecInput> = {}): BundleSpecInput {
  return {
    id: 'ferry-abc',
    rootfs: '/images/x/rootfs',
    image: {
      Entrypoint: ['node', '/app/server.js'],
      Cmd: ['--serve'],
      Env: ['PATH=/usr/bin:/bin', 'FERRY_MODEL_DIR=/models', 'PORT=8000'],
      WorkingDir: '/app',
    },
    user: { uid: 10001, gid: 10001, additionalGids: [10002], home: '/home/ferry' },
    limits: { cpus: 0.5, memoryBytes: 256 * MiB },
    cgroupsPath: '/ferry/ferry-abc',
    arch: 'x64',
    swapAccounting: true,
    ...over,
  };
}

describe('bundleSpec', () => {
  test('the process: image entrypoint + cmd, env merged with additions, working dir, the user', () => {
    const spec = bundleSpec(input({ env: { PORT: '9000', FERRY_SOCKET: '/run/ferry/replica.sock' } }));
    assert.deepEqual(spec.process.args, ['node', '/app/server.js', '--serve']);
    assert.deepEqual(spec.process.env, [
      'PATH=/usr/bin:/bin',
      'FERRY_MODEL_DIR=/models',
      'PORT=9000',
      'FERRY_SOCKET=/run/ferry/replica.sock',
      'HOME=/home/ferry',
    ]);
    assert.equal(spec.process.cwd, '/app');
    assert.deepEqual(spec.process.user, { uid: 10001, gid: 10001, additionalGids: [10002] });
    assert.equal(spec.process.terminal, false);
  });

  test('args replace Cmd, not the Entrypoint; PATH has a default', () => {
    const spec = bundleSpec(input({ args: ['--port', '1'], image: { Entrypoint: ['/bin/app'], Cmd: ['x'] } }));
    assert.deepEqual(spec.process.args, ['/bin/app', '--port', '1']);
    assert.ok(spec.process.env.some((e) => e.startsWith('PATH=/usr/local/sbin:')));
    assert.equal(spec.process.cwd, '/');
  });

  test('refuses a request with nothing to run, root, bad limits or a bad id', () => {
    assert.throws(() => bundleSpec(input({ image: {} })), /neither Entrypoint nor Cmd/);
    assert.throws(() => bundleSpec(input({ user: { uid: 0, gid: 0, additionalGids: [] } })), /root/);
    assert.throws(() => bundleSpec(input({ limits: { cpus: 0, memoryBytes: 256 * MiB } })), /cpus 0/);
    assert.throws(() => bundleSpec(input({ limits: { cpus: Number.NaN, memoryBytes: 256 * MiB } })), /cpus NaN/);
    assert.throws(() => bundleSpec(input({ limits: { cpus: 1, memoryBytes: 1024 } })), /minimum/);
    assert.throws(() => bundleSpec(input({ limits: { cpus: 1, memoryBytes: 256 * MiB, pids: 0 } })), /pids/);
    assert.throws(() => bundleSpec(input({ id: '../x' })), /container id/);
    assert.throws(() => bundleSpec(input({ rootfs: 'relative' })), /absolute/);
    assert.throws(() => bundleSpec(input({ env: { 'A=B': 'x' } })), /not valid/);
  });

  test('hardening: read-only root, no capabilities, no new privileges, seccomp, tmpfs /tmp', () => {
    const spec = bundleSpec(input());
    assert.deepEqual(spec.root, { path: '/images/x/rootfs', readonly: true });
    for (const set of Object.values(spec.process.capabilities)) assert.deepEqual(set, []);
    assert.equal(spec.process.noNewPrivileges, true);
    assert.deepEqual(spec.linux.seccomp, seccompProfile('x64'));
    const tmp = spec.mounts.find((m) => m.destination === '/tmp');
    assert.equal(tmp?.type, 'tmpfs');
    assert.ok(tmp?.options?.includes('mode=1777'));
    assert.ok(spec.mounts.find((m) => m.destination === '/sys')?.options?.includes('ro'));
    assert.ok(spec.linux.maskedPaths.includes('/proc/kcore'));
    assert.ok(spec.linux.readonlyPaths.includes('/proc/sys'));
    // Phase 1: the host network namespace (the replica listens on a Unix socket in a bind mount).
    assert.deepEqual(spec.linux.namespaces.map((n) => n.type).sort(), ['ipc', 'mount', 'pid', 'uts']);
    assert.deepEqual(spec.linux.resources.devices[0], { allow: false, access: 'rwm' });
  });

  test('limits: memory with memory+swap equal, CPU quota per period, pids', () => {
    const spec = bundleSpec(input({ limits: { cpus: 0.5, memoryBytes: 256 * MiB } }));
    assert.deepEqual(spec.linux.resources.memory, { limit: 256 * MiB, swap: 256 * MiB });
    assert.deepEqual(spec.linux.resources.cpu, { quota: 50_000, period: 100_000 });
    assert.deepEqual(spec.linux.resources.pids, { limit: DEFAULT_PIDS_LIMIT });
    assert.equal(spec.linux.cgroupsPath, '/ferry/ferry-abc');
    const noSwap = bundleSpec(input({ swapAccounting: false, limits: { cpus: 2, memoryBytes: 64 * MiB, pids: 32 } }));
    assert.deepEqual(noSwap.linux.resources.memory, { limit: 64 * MiB });
    assert.deepEqual(noSwap.linux.resources.cpu, { quota: 200_000, period: 100_000 });
    assert.deepEqual(noSwap.linux.resources.pids, { limit: 32 });
  });

  test('oomScoreAdj is clamped at 0 and left out when not asked for', () => {
    assert.equal(bundleSpec(input({ oomScoreAdj: -500 })).process.oomScoreAdj, 0);
    assert.equal(bundleSpec(input({ oomScoreAdj: 300 })).process.oomScoreAdj, 300);
    assert.ok(!('oomScoreAdj' in bundleSpec(input()).process));
  });

  test('bind mounts: the host folder at its container path, read-write unless asked', () => {
    const spec = bundleSpec(
      input({
        bindMounts: [
          { hostPath: '/state/sockets/r1', containerPath: '/run/ferry' },
          { hostPath: '/models', containerPath: '/models', readOnly: true },
        ],
      }),
    );
    const sock = spec.mounts.find((m) => m.destination === '/run/ferry');
    assert.deepEqual(sock, {
      destination: '/run/ferry',
      type: 'bind',
      source: '/state/sockets/r1',
      options: ['rbind', 'nosuid', 'nodev', 'rw'],
    });
    assert.ok(spec.mounts.find((m) => m.destination === '/models')?.options?.includes('ro'));
    assert.throws(() => bundleSpec(input({ bindMounts: [{ hostPath: 'x', containerPath: '/y' }] })), /absolute/);
  });
});

describe('seccompProfile', () => {
  test('denies by default with EPERM and allows the ordinary calls of the native architecture', () => {
    const p = seccompProfile('x64');
    assert.equal(p.defaultAction, 'SCMP_ACT_ERRNO');
    assert.equal(p.defaultErrnoRet, 1);
    assert.deepEqual(p.architectures, ['SCMP_ARCH_X86_64']);
    const allowed = new Set(p.syscalls.filter((r) => r.action === 'SCMP_ACT_ALLOW' && !r.args).flatMap((r) => r.names));
    for (const name of ['read', 'write', 'openat', 'mmap', 'futex', 'epoll_pwait', 'accept4', 'execve', 'arch_prctl']) {
      assert.ok(allowed.has(name), `${name} is allowed`);
    }
    for (const name of [
      'mount',
      'unshare',
      'setns',
      'ptrace',
      'bpf',
      'kexec_load',
      'init_module',
      'keyctl',
      'io_uring_setup',
      'perf_event_open',
      'chroot',
      'reboot',
    ]) {
      assert.ok(!p.syscalls.some((r) => r.names.includes(name) && r.action === 'SCMP_ACT_ALLOW'), `${name} is denied`);
    }
  });

  test('clone only without namespace flags; clone3 answers ENOSYS; socket families are filtered', () => {
    const p = seccompProfile('arm64');
    assert.deepEqual(p.architectures, ['SCMP_ARCH_AARCH64']);
    const clone = p.syscalls.find((r) => r.names.includes('clone'));
    assert.deepEqual(clone?.args, [{ index: 0, value: 0x7e020000, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }]);
    assert.deepEqual(
      p.syscalls.find((r) => r.names.includes('clone3')),
      {
        names: ['clone3'],
        action: 'SCMP_ACT_ERRNO',
        errnoRet: 38,
      },
    );
    const families = p.syscalls.filter((r) => r.names.includes('socket')).map((r) => r.args?.[0]?.value);
    assert.deepEqual(families, [1, 2, 10, 16]);
    // arm64 has no legacy calls such as open or arch_prctl.
    assert.ok(!p.syscalls.some((r) => r.names.includes('open') || r.names.includes('arch_prctl')));
    assert.throws(() => seccompProfile('ia32' as never), /no seccomp profile/);
  });
});
