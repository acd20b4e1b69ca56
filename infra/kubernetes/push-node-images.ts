/**
 * Used by infra/kubernetes/cluster.sh: pushes the images the dev cluster itself needs to the stack's
 * registry, built from files on this machine (no registry outside is reachable):
 *
 *   kubernetes/pause:3.10     the pod sandbox's init: the static pause binary given as the argument
 *   kubernetes/busybox:1.35   Debian's static busybox with a /bin link per applet: for test pods
 *
 *   node --import tsx infra/kubernetes/push-node-images.ts <pause-binary>
 *
 * Registry and credentials come from lib/config.ts, as for Ferry's own pushes.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { loadConfig } from '../../lib/config';
import { assembleImage, hostArchitecture, type ImageSettings } from '../../lib/oci/image';
import { writeLayer } from '../../lib/oci/layer';
import { pushImage } from '../../lib/oci/push';
import type { TarEntry } from '../../lib/oci/tar';

const BUSYBOX = '/bin/busybox';

function busyboxEntries(): TarEntry[] {
  const applets = execFileSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).split('\n').filter(Boolean);
  return [
    { type: 'file', path: '/bin/busybox', sourcePath: BUSYBOX, executable: true },
    ...applets
      .filter((a) => a !== 'busybox')
      .map((a): TarEntry => ({ type: 'symlink', path: `/bin/${a}`, target: 'busybox' })),
    { type: 'directory', path: '/tmp', mode: 0o1777 },
  ];
}

async function push(repository: string, tag: string, entries: TarEntry[], settings: ImageSettings): Promise<void> {
  const { registry } = loadConfig();
  const blobDir = await mkdtemp(path.join(tmpdir(), 'ferry-node-image-'));
  try {
    const layer = await writeLayer(entries, blobDir);
    const image = assembleImage([layer], { architecture: hostArchitecture(), ...settings });
    const pushed = await pushImage(image, registry.url, repository, tag, {
      credentials: registry.credentials ?? null,
      blobLocations: null,
    });
    console.log(`${repository}:${tag} ${pushed.digest} (${pushed.sizeBytes} bytes)`);
  } finally {
    await rm(blobDir, { recursive: true, force: true });
  }
}

async function main(pauseBinary: string | undefined): Promise<void> {
  if (!pauseBinary) throw new Error('usage: push-node-images.ts <pause-binary>');
  await push(
    'kubernetes/pause',
    '3.10',
    [{ type: 'file', path: '/pause', sourcePath: pauseBinary, executable: true }],
    {
      entrypoint: ['/pause'],
    },
  );
  await push('kubernetes/busybox', '1.35', busyboxEntries(), { cmd: ['sh'], env: ['PATH=/bin'] });
}

main(process.argv[2]).catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
