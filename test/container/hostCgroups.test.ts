import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HostCgroups } from '../../lib/container/hostCgroups';

// /proc/self/mountinfo lines as this machine (hybrid), a pure v1 host and a v2 host show them.
const HYBRID = [
  '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
  '32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu',
  '35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
  '39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids',
  '40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd',
  '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
].join('\n');
const V1_COMBINED = [
  '25 24 0:22 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct',
  '26 24 0:23 /docker/abc /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory',
].join('\n');
const V2 = '30 24 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate';

describe('HostCgroups', () => {
  test('hybrid: limits are read on the v1 controllers; every hierarchy is cleaned up', () => {
    const cg = HostCgroups.fromMountinfo(HYBRID);
    assert.equal(cg.mode, 'hybrid');
    assert.equal(cg.controllerDir('memory', '/ferry/c1'), '/sys/fs/cgroup/memory/ferry/c1');
    assert.equal(cg.controllerDir('cpu', '/ferry/c1'), '/sys/fs/cgroup/cpu/ferry/c1');
    assert.deepEqual(cg.allDirs('/ferry/c1').sort(), [
      '/sys/fs/cgroup/cpu/ferry/c1',
      '/sys/fs/cgroup/memory/ferry/c1',
      '/sys/fs/cgroup/pids/ferry/c1',
      '/sys/fs/cgroup/systemd/ferry/c1',
      '/sys/fs/cgroup/unified/ferry/c1',
    ]);
  });

  test('v1 with co-mounted controllers and a mount whose root is not the hierarchy root', () => {
    const cg = HostCgroups.fromMountinfo(V1_COMBINED);
    assert.equal(cg.mode, 'v1');
    assert.equal(cg.controllerDir('cpu', '/ferry/c1'), '/sys/fs/cgroup/cpu,cpuacct/ferry/c1');
    assert.equal(cg.controllerDir('memory', '/docker/abc/ferry/c1'), '/sys/fs/cgroup/memory/ferry/c1');
    assert.throws(() => cg.controllerDir('memory', '/ferry/c1'), /outside the hierarchy/);
    assert.throws(() => cg.controllerDir('pids', '/ferry/c1'), /not mounted/);
  });

  test('v2: one unified hierarchy', () => {
    const cg = HostCgroups.fromMountinfo(V2);
    assert.equal(cg.mode, 'v2');
    assert.equal(cg.controllerDir('memory', '/ferry/c1'), '/sys/fs/cgroup/ferry/c1');
    assert.deepEqual(cg.allDirs('/ferry/c1'), ['/sys/fs/cgroup/ferry/c1']);
    assert.throws(() => HostCgroups.fromMountinfo(''), /no cgroup hierarchy/);
  });

  test("this machine's hierarchies can be read", async () => {
    const cg = await HostCgroups.read();
    assert.ok(['v1', 'v2', 'hybrid'].includes(cg.mode));
    assert.equal(typeof (await cg.swapAccounting()), 'boolean');
  });
});
