import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { imageUser, resolveUser } from '../../lib/container/imageUser';

const PASSWD = [
  'root:x:0:0:root:/root:/bin/sh',
  'ferry:x:10001:10001::/home/ferry:/bin/sh',
  'odd:x:notanumber:1::/:/bin/sh',
  '',
].join('\n');
const GROUP = ['root:x:0:ferry', 'ferry:x:10001:', 'models:x:10002:ferry,other', 'gpu:x:10003:other', ''].join('\n');

describe('resolveUser', () => {
  test('a name: its uid, primary gid, home and the groups that list it (never root)', () => {
    assert.deepEqual(resolveUser('ferry', PASSWD, GROUP), {
      uid: 10001,
      gid: 10001,
      additionalGids: [10002],
      home: '/home/ferry',
    });
  });

  test('uid, uid:gid, name:group', () => {
    assert.equal(resolveUser('10001', PASSWD, GROUP).gid, 10001);
    assert.deepEqual(resolveUser('10001:10003', PASSWD, GROUP).gid, 10003);
    assert.deepEqual(resolveUser('ferry:gpu', PASSWD, GROUP).gid, 10003);
    // Without a passwd entry, a numeric uid needs its group spelled out.
    assert.deepEqual(resolveUser('20000:20000', PASSWD, GROUP), { uid: 20000, gid: 20000, additionalGids: [] });
    assert.throws(() => resolveUser('20000', PASSWD, GROUP), /no \/etc\/passwd entry/);
  });

  test('refuses root, no user, and names the image does not have', () => {
    assert.throws(() => resolveUser('root', PASSWD, GROUP), /root/);
    assert.throws(() => resolveUser('0', PASSWD, GROUP), /root/);
    assert.throws(() => resolveUser('ferry:root', PASSWD, GROUP), /root/);
    assert.throws(() => resolveUser('10001:0', PASSWD, GROUP), /root/);
    assert.throws(() => resolveUser('', PASSWD, GROUP), /no User/);
    assert.throws(() => resolveUser('nobody', PASSWD, GROUP), /not in the image's \/etc\/passwd/);
    assert.throws(() => resolveUser('ferry:nogroup', PASSWD, GROUP), /not in the image's \/etc\/group/);
  });
});

describe('imageUser', () => {
  test('reads the image files, and not a host file an image symlink points to', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-imageuser-'));
    try {
      await mkdir(path.join(dir, 'etc'));
      await writeFile(path.join(dir, 'etc', 'passwd'), PASSWD);
      await writeFile(path.join(dir, 'etc', 'group'), GROUP);
      assert.equal((await imageUser(dir, 'ferry')).uid, 10001);

      const evil = await mkdtemp(path.join(os.tmpdir(), 'ferry-imageuser-'));
      await mkdir(path.join(evil, 'etc'));
      await writeFile(path.join(dir, 'outside'), 'host:x:4242:4242::/:/bin/sh\n');
      await symlink(path.join(dir, 'outside'), path.join(evil, 'etc', 'passwd'));
      await assert.rejects(imageUser(evil, 'host'), /not in the image's \/etc\/passwd/);
      await rm(evil, { recursive: true, force: true });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
