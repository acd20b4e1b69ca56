/**
 * The few files and folders a process expects of a Linux root besides its libraries: the user it runs as
 * (a non-root `ferry`, uid/gid 65532 as in distroless images), name-service defaults, CA certificates and
 * a world-writable /tmp. All text is fixed here, so it is the same on every machine; only the CA bundle
 * comes from the host's Debian ca-certificates (architecture-independent data, not a binary).
 */
import type { TarEntry } from '../oci/tar';

export const IMAGE_USER = { name: 'ferry', uid: 65532, gid: 65532, home: '/home/ferry' } as const;
/** The image config's `User`: numeric, so a runtime needs no /etc/passwd lookup to apply it. */
export const IMAGE_USER_SPEC = `${IMAGE_USER.uid}:${IMAGE_USER.gid}`;
export const CA_BUNDLE_PATH = '/etc/ssl/certs/ca-certificates.crt';

const PASSWD = [
  'root:x:0:0:root:/root:/sbin/nologin',
  `${IMAGE_USER.name}:x:${IMAGE_USER.uid}:${IMAGE_USER.gid}:${IMAGE_USER.name}:${IMAGE_USER.home}:/sbin/nologin`,
];
const GROUP = ['root:x:0:', `${IMAGE_USER.name}:x:${IMAGE_USER.gid}:`];
const NSSWITCH = ['passwd: files', 'group: files', 'hosts: files dns'];

const text = (lines: string[]) => Buffer.from(`${lines.join('\n')}\n`);

/** The entries, with `caBundle` the path of the CA certificates file on this machine. */
export function systemEntries(caBundle: string): TarEntry[] {
  return [
    { type: 'file', path: '/etc/passwd', bytes: text(PASSWD) },
    { type: 'file', path: '/etc/group', bytes: text(GROUP) },
    { type: 'file', path: '/etc/nsswitch.conf', bytes: text(NSSWITCH) },
    { type: 'file', path: CA_BUNDLE_PATH, sourcePath: caBundle, mode: 0o644 },
    { type: 'directory', path: '/tmp', mode: 0o1777 },
    { type: 'directory', path: IMAGE_USER.home, mode: 0o755, uid: IMAGE_USER.uid, gid: IMAGE_USER.gid },
  ];
}
