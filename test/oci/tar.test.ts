import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import {
  chmod,
  lstat,
  mkdir,
  mkdtemp,
  readFile,
  readlink,
  rm,
  stat,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { sha256File } from '../../lib/oci/digest';
import { directoryEntries } from '../../lib/oci/layer';
import { createTarStream, readTar, type TarEntry } from '../../lib/oci/tar';
import { extractTar, UnsafeTarEntryError } from '../../lib/oci/tarExtract';

let work: string;
let source: string;
const LONG_NAME = `deep/${'d'.repeat(60)}/${'n'.repeat(90)}.bin`; // > 100 bytes: needs pax
const UNICODE_NAME = 'modèle-ünïcode.txt';

async function writeTar(entries: TarEntry[], file: string): Promise<string> {
  await pipeline(createTarStream(entries), createWriteStream(file));
  return (await sha256File(file)).digest;
}

before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'ferry-tar-test-'));
  source = path.join(work, 'src');
  await mkdir(path.join(source, 'bin'), { recursive: true });
  await mkdir(path.join(source, path.dirname(LONG_NAME)), { recursive: true });
  await mkdir(path.join(source, 'empty-dir'));
  await writeFile(path.join(source, 'big.bin'), randomBytes(3 * 1024 * 1024 + 17)); // not a multiple of 512
  await writeFile(path.join(source, 'bin', 'run.sh'), '#!/bin/sh\necho hi\n');
  await chmod(path.join(source, 'bin', 'run.sh'), 0o700);
  await writeFile(path.join(source, LONG_NAME), randomBytes(1000));
  await writeFile(path.join(source, UNICODE_NAME), 'héllo');
  await writeFile(path.join(source, 'empty.txt'), '');
  await symlink('bin/run.sh', path.join(source, 'run-link'));
});

after(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('tar writer', () => {
  it('round-trips files, modes, empty dirs, long and unicode names and symlinks through the extractor', async () => {
    const tarPath = path.join(work, 'roundtrip.tar');
    await writeTar(await directoryEntries(source), tarPath);
    const out = path.join(work, 'roundtrip-out');
    await mkdir(out);
    await extractTar(createReadStream(tarPath), out);

    for (const rel of ['big.bin', 'bin/run.sh', LONG_NAME, UNICODE_NAME, 'empty.txt']) {
      assert.deepEqual(await readFile(path.join(out, rel)), await readFile(path.join(source, rel)), rel);
    }
    assert.equal((await stat(path.join(out, 'bin/run.sh'))).mode & 0o777, 0o755, 'executable → 0755');
    assert.equal((await stat(path.join(out, 'big.bin'))).mode & 0o777, 0o644, 'plain file → 0644');
    assert.ok((await stat(path.join(out, 'empty-dir'))).isDirectory());
    assert.equal((await stat(path.join(out, 'empty-dir'))).mode & 0o777, 0o755);
    assert.equal(await readlink(path.join(out, 'run-link')), 'bin/run.sh');
  });

  it('writes archives GNU tar reads, with mtime 0 and root ownership', async () => {
    const tarPath = path.join(work, 'gnu.tar');
    await writeTar(await directoryEntries(source, '/app'), tarPath);
    const listing = execFileSync('tar', ['--numeric-owner', '-tvf', tarPath], { encoding: 'utf8' });
    const lines = listing.trim().split('\n');
    assert.ok(
      lines.some((l) => l.endsWith(` app/${LONG_NAME}`)),
      'long name restored from pax record',
    );
    assert.ok(
      lines.some((l) => l.endsWith(` app/${UNICODE_NAME}`)),
      'unicode name',
    );
    assert.ok(
      lines.some((l) => l.includes('app/run-link -> bin/run.sh')),
      'symlink',
    );
    for (const line of lines) {
      assert.match(line, / 0\/0 /, `owner 0/0: ${line}`);
      assert.match(line, /1970-01-01 00:00/, `mtime 0: ${line}`);
    }
    const names = lines.map((l) => l.split(/\s+/)[5]!);
    assert.equal(names[0], 'app/', 'parent directory implied and first');
    const gnuOut = path.join(work, 'gnu-out');
    await mkdir(gnuOut);
    execFileSync('tar', ['-xf', tarPath, '-C', gnuOut]);
    assert.deepEqual(await readFile(path.join(gnuOut, 'app', 'big.bin')), await readFile(path.join(source, 'big.bin')));
  });

  it('is deterministic: same content → same bytes, whatever the input order or file mtimes', async () => {
    const entries = await directoryEntries(source);
    const first = await writeTar(entries, path.join(work, 'det-1.tar'));
    await utimes(path.join(source, 'big.bin'), new Date(2001, 1, 1), new Date(2001, 1, 1));
    const second = await writeTar([...entries].reverse(), path.join(work, 'det-2.tar'));
    assert.equal(second, first);
    await writeFile(path.join(source, 'empty.txt'), 'changed');
    const third = await writeTar(entries, path.join(work, 'det-3.tar'));
    assert.notEqual(third, first, 'a content change must change the digest');
    await writeFile(path.join(source, 'empty.txt'), '');
  });

  it('records a mode (sticky bit included) and an owner when an entry names them, as GNU tar reads them', async () => {
    const tarPath = path.join(work, 'owners.tar');
    await writeTar(
      [
        { type: 'directory', path: '/tmp', mode: 0o1777 },
        { type: 'directory', path: '/home/ferry', uid: 65532, gid: 65532 },
        { type: 'file', path: '/etc/secret', bytes: Buffer.from('x'), mode: 0o600, uid: 7, gid: 8 },
        { type: 'file', path: '/etc/plain', bytes: Buffer.from('y') },
      ],
      tarPath,
    );
    const listing = execFileSync('tar', ['--numeric-owner', '-tvf', tarPath], { encoding: 'utf8' });
    assert.match(listing, /^drwxrwxrwt 0\/0 .* tmp\/$/m);
    assert.match(listing, /^drwxr-xr-x 65532\/65532 .* home\/ferry\/$/m);
    assert.match(listing, /^-rw------- 7\/8 .* etc\/secret$/m);
    assert.match(listing, /^-rw-r--r-- 0\/0 .* etc\/plain$/m);
    const read: Record<string, [number, number, number]> = {};
    for await (const entry of readTar(createReadStream(tarPath))) read[entry.path] = [entry.mode, entry.uid, entry.gid];
    assert.deepEqual(read['tmp/'], [0o1777, 0, 0]);
    assert.deepEqual(read['etc/secret'], [0o600, 7, 8]);
    assert.throws(() => createTarStream([{ type: 'directory', path: 'x', mode: 0o10000 }]), /invalid mode/);
    assert.throws(() => createTarStream([{ type: 'directory', path: 'x', uid: -1 }]), /invalid uid/);
  });

  it('refuses a path with ".." and duplicate paths', () => {
    assert.throws(() => createTarStream([{ type: 'file', path: 'a/../../x', bytes: Buffer.alloc(1) }]), /\.\./);
    assert.throws(
      () =>
        createTarStream([
          { type: 'file', path: 'a', bytes: Buffer.alloc(1) },
          { type: 'file', path: '/a', bytes: Buffer.alloc(2) },
        ]),
      /twice/,
    );
  });

  it('reader streams entries and skips bodies nobody reads', async () => {
    const tarPath = path.join(work, 'read.tar');
    await writeTar(
      [
        { type: 'file', path: 'a.txt', bytes: Buffer.from('aaa') },
        { type: 'file', path: 'b/c.txt', bytes: Buffer.from('ccc') },
      ],
      tarPath,
    );
    const seen: string[] = [];
    for await (const entry of readTar(createReadStream(tarPath))) {
      if (entry.path === 'b/c.txt') {
        const chunks: Buffer[] = [];
        for await (const c of entry.content) chunks.push(c);
        assert.equal(Buffer.concat(chunks).toString(), 'ccc');
      }
      seen.push(`${entry.kind}:${entry.path}`);
    }
    assert.deepEqual(seen, ['file:a.txt', 'directory:b/', 'file:b/c.txt']);
  });
});

describe('tar extractor on untrusted archives (made by GNU tar)', () => {
  let evilDir: string;
  let outside: string;

  before(async () => {
    evilDir = path.join(work, 'evil');
    outside = path.join(work, 'outside');
    await mkdir(path.join(evilDir, 'inner'), { recursive: true });
    await mkdir(outside);
    await writeFile(path.join(evilDir, 'evil.txt'), 'pwned');
  });

  async function extractInto(tarPath: string): Promise<string> {
    const dest = path.join(work, `dest-${randomBytes(4).toString('hex')}`);
    await mkdir(dest);
    await extractTar(createReadStream(tarPath), dest);
    return dest;
  }

  it('rejects ../evil', async () => {
    const tarPath = path.join(work, 'dotdot.tar');
    // -P keeps the leading "../" that GNU tar would otherwise strip.
    execFileSync('tar', ['-cPf', tarPath, '../evil.txt'], { cwd: path.join(evilDir, 'inner') });
    assert.match(execFileSync('tar', ['-tPf', tarPath], { encoding: 'utf8' }), /^\.\.\/evil\.txt$/m);
    await assert.rejects(
      extractInto(tarPath),
      (e: unknown) => e instanceof UnsafeTarEntryError && /"\.\."/.test(e.message),
    );
    await assert.rejects(stat(path.join(work, 'evil.txt')), 'nothing written next to the destination');
  });

  it('rejects absolute paths', async () => {
    const tarPath = path.join(work, 'absolute.tar');
    execFileSync('tar', ['-cPf', tarPath, path.join(evilDir, 'evil.txt')]);
    await assert.rejects(extractInto(tarPath), /absolute path/);
  });

  it('rejects a symlink pointing out of the tree', async () => {
    const dir = path.join(work, 'symlink-out');
    await mkdir(dir);
    await symlink('../../outside', path.join(dir, 'escape'));
    const tarPath = path.join(work, 'symlink-out.tar');
    execFileSync('tar', ['-cf', tarPath, '-C', dir, 'escape']);
    await assert.rejects(extractInto(tarPath), /points outside the tree/);
  });

  it('rejects an absolute symlink', async () => {
    const dir = path.join(work, 'symlink-abs');
    await mkdir(dir);
    await symlink(outside, path.join(dir, 'abs'));
    const tarPath = path.join(work, 'symlink-abs.tar');
    execFileSync('tar', ['-cf', tarPath, '-C', dir, 'abs']);
    await assert.rejects(extractInto(tarPath), /is absolute/);
  });

  it('never writes through a symlink, even one that stays in the tree', async () => {
    // Archive: "link" → "sub" (in-tree, allowed), then "link/pwned": writing it would follow the link.
    const a = path.join(work, 'through-a');
    const b = path.join(work, 'through-b');
    await mkdir(path.join(a, 'sub'), { recursive: true });
    await symlink('sub', path.join(a, 'link'));
    await mkdir(path.join(b, 'link'), { recursive: true });
    await writeFile(path.join(b, 'link', 'pwned'), 'x');
    const tarPath = path.join(work, 'through.tar');
    execFileSync('tar', ['-cf', tarPath, '-C', a, 'sub', 'link']);
    execFileSync('tar', ['-rf', tarPath, '-C', b, 'link/pwned']);
    let dest = '';
    await assert.rejects(async () => {
      dest = path.join(work, 'through-dest');
      await mkdir(dest);
      await extractTar(createReadStream(tarPath), dest);
    }, /parent directory is a symlink/);
    await assert.rejects(lstat(path.join(dest, 'sub', 'pwned')), 'nothing written through the link');
  });

  it('accepts an in-tree relative symlink', async () => {
    const dir = path.join(work, 'symlink-ok');
    await mkdir(path.join(dir, 'a'), { recursive: true });
    await writeFile(path.join(dir, 'a', 'f'), 'ok');
    await symlink('../a/f', path.join(dir, 'a', 'g'));
    const tarPath = path.join(work, 'symlink-ok.tar');
    execFileSync('tar', ['-cf', tarPath, '-C', dir, 'a']);
    const dest = await extractInto(tarPath);
    assert.equal(await readFile(path.join(dest, 'a', 'g'), 'utf8'), 'ok');
  });
});
