/**
 * The ELF reader against binutils' readelf, and the shared-library resolver against the loader itself
 * (ldd) on amd64 and against the unpacked arm64 Debian packages. Needs infra/install-image-deps.sh's
 * inputs (the arm64 sysroot); the test installs them when missing, as the build does.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { cp, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../lib/config';
import { ELF_MACHINE, NotElfError, readElfDynamicInfo } from '../../lib/image/elf';
import { ensurePlatformInputs, type ImagePlatform, imagePlatform } from '../../lib/image/platforms';
import { type ImageElf, realPathInRoot, resolveSharedLibraries } from '../../lib/image/sharedLibraries';

const ortDir = (arch: string) =>
  path.join(loadConfig().repoRoot, 'node_modules/onnxruntime-node/bin/napi-v6/linux', arch);
const inImage = (arch: string) => `/app/node_modules/onnxruntime-node/bin/napi-v6/linux/${arch}`;

function onnxRuntimeElves(platform: ImagePlatform): ImageElf[] {
  return ['onnxruntime_binding.node', 'libonnxruntime.so.1'].map((name) => ({
    imagePath: `${inImage(platform.nodeArch)}/${name}`,
    sourcePath: path.join(ortDir(platform.nodeArch), name),
  }));
}

const nodeOf = (platform: ImagePlatform): ImageElf => ({
  imagePath: '/usr/bin/node',
  sourcePath: path.join(platform.sysroot, platform.nodeBinary),
});

let amd64: ImagePlatform;
let arm64: ImagePlatform;
let work: string;

before(async () => {
  amd64 = imagePlatform('amd64');
  arm64 = imagePlatform('arm64');
  await ensurePlatformInputs(amd64);
  await ensurePlatformInputs(arm64);
  work = await mkdtemp(path.join(os.tmpdir(), 'ferry-elf-test-'));
});

after(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('ELF reader', () => {
  for (const [what, file] of [
    ['the amd64 node', () => nodeOf(amd64).sourcePath],
    ['the arm64 node', () => nodeOf(arm64).sourcePath],
    ['onnxruntime arm64', () => path.join(ortDir('arm64'), 'libonnxruntime.so.1')],
    ['onnxruntime binding x64', () => path.join(ortDir('x64'), 'onnxruntime_binding.node')],
  ] as const) {
    it(`reads what readelf reads from ${what}`, async () => {
      const info = await readElfDynamicInfo(file());
      const dynamic = execFileSync('readelf', ['-d', file()], { encoding: 'utf8' });
      const listed = (tag: string) =>
        [...dynamic.matchAll(new RegExp(`\\(${tag}\\)\\s+[^\\[]*\\[([^\\]]*)\\]`, 'g'))].map((m) => m[1]);
      assert.deepEqual(info.needed, listed('NEEDED'));
      assert.deepEqual(
        info.runpath,
        listed('RUNPATH').flatMap((p) => p!.split(':')),
      );
      assert.equal(info.soname, listed('SONAME')[0]);
      const program = execFileSync('readelf', ['-l', file()], { encoding: 'utf8' });
      assert.equal(info.interpreter, program.match(/Requesting program interpreter: ([^\]]+)\]/)?.[1]);
    });
  }

  it('tells the machine apart and refuses what is not ELF', async () => {
    assert.equal((await readElfDynamicInfo(nodeOf(amd64).sourcePath)).machine, ELF_MACHINE.x86_64);
    assert.equal((await readElfDynamicInfo(nodeOf(arm64).sourcePath)).machine, ELF_MACHINE.aarch64);
    const text = path.join(work, 'libfake.so');
    await writeFile(text, '/* GNU ld script */ GROUP ( libc.so.6 )\n');
    await assert.rejects(readElfDynamicInfo(text), NotElfError);
  });
});

describe('shared-library resolver', () => {
  it('amd64: resolves exactly the libraries the loader loads (ldd) for node and onnxruntime', async () => {
    const closure = await resolveSharedLibraries(amd64, nodeOf(amd64), onnxRuntimeElves(amd64));
    const lddSet = new Map<string, string>();
    for (const elf of [nodeOf(amd64), ...onnxRuntimeElves(amd64)]) {
      for (const line of execFileSync('ldd', [elf.sourcePath], { encoding: 'utf8' }).split('\n')) {
        const linked = line.match(/^\s*(\S+) => (\/\S+)/);
        const loader = line.match(/^\s*(\/\S+ld-linux\S+)/);
        if (linked) lddSet.set(linked[1]!, realpathSync(linked[2]!));
        else if (loader) lddSet.set(path.basename(loader[1]!), realpathSync(loader[1]!));
      }
    }
    lddSet.delete('libonnxruntime.so.1'); // ldd finds it beside the binding through $ORIGIN, as we do
    const ours = new Map(closure.libraries.map((l) => [l.soname, realpathSync(l.sourcePath)]));
    assert.deepEqual([...ours.entries()].sort(), [...lddSet.entries()].sort());
    assert.deepEqual(closure.satisfiedByGiven, [
      { soname: 'libonnxruntime.so.1', imagePath: `${inImage('x64')}/libonnxruntime.so.1` },
    ]);
    assert.deepEqual(closure.interpreter, {
      path: '/lib64/ld-linux-x86-64.so.2',
      imagePath: '/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2',
      symlinkTarget: '../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2',
    });
    for (const lib of closure.libraries) assert.equal(lib.imagePath, `/lib/x86_64-linux-gnu/${lib.soname}`);
  });

  it('arm64: takes every library from the arm64 packages, each an aarch64 ELF', async () => {
    const closure = await resolveSharedLibraries(arm64, nodeOf(arm64), onnxRuntimeElves(arm64));
    assert.deepEqual(closure.libraries.map((l) => l.soname).sort(), [
      'ld-linux-aarch64.so.1',
      'libc.so.6',
      'libdl.so.2',
      'libgcc_s.so.1',
      'libm.so.6',
      'libpthread.so.0',
      'librt.so.1',
      'libstdc++.so.6',
    ]);
    for (const lib of closure.libraries) {
      assert.ok(lib.sourcePath.startsWith(`${arm64.sysroot}/`), `${lib.sourcePath} is inside the arm64 sysroot`);
      assert.equal((await readElfDynamicInfo(lib.sourcePath)).machine, ELF_MACHINE.aarch64);
      assert.equal(lib.imagePath, `/lib/aarch64-linux-gnu/${lib.soname}`);
    }
    assert.deepEqual(closure.interpreter, {
      path: '/lib/ld-linux-aarch64.so.1',
      imagePath: '/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1',
      symlinkTarget: 'aarch64-linux-gnu/ld-linux-aarch64.so.1',
    });
  });

  it('refuses a host binary in an arm64 image, and names a library it cannot find', async () => {
    await assert.rejects(
      resolveSharedLibraries(arm64, nodeOf(amd64), []),
      /is not a arm64 \(e_machine 183\) binary: it cannot go into a arm64 image/,
    );
    // An arm64 sysroot without libstdc++: the amd64 one on the host must not stand in for it.
    const partial = path.join(work, 'partial-root');
    await cp(path.join(arm64.sysroot, 'lib'), path.join(partial, 'lib'), { recursive: true, verbatimSymlinks: true });
    await assert.rejects(
      resolveSharedLibraries({ ...arm64, sysroot: partial }, nodeOf(arm64), []),
      /\/usr\/bin\/node .* needs libstdc\+\+\.so\.6, found neither/,
    );
  });

  it('follows absolute symlinks inside the root, never out of it', async () => {
    const root = path.join(work, 'root');
    await mkdir(path.join(root, 'usr', 'lib'), { recursive: true });
    await writeFile(path.join(root, 'usr', 'lib', 'libx.so.1.2'), 'x');
    await symlink('/usr/lib/libx.so.1.2', path.join(root, 'usr', 'lib', 'libx.so.1'));
    await symlink('usr/lib', path.join(root, 'lib'));
    assert.equal(await realPathInRoot(root, '/lib/libx.so.1'), '/usr/lib/libx.so.1.2');
    await symlink('/etc/passwd', path.join(root, 'usr', 'lib', 'outside'));
    assert.equal(await realPathInRoot(root, '/usr/lib/outside'), null, 'the host /etc/passwd is not in the root');
  });
});
