/**
 * A deployment's metrics: every replica's Prometheus exposition merged into one valid exposition,
 * each sample labelled `replica="<pid>"` (and `revision="<name>"` when known) and each metric family's
 * HELP/TYPE written once, so sums and histogram quantiles over replicas — or per revision, to compare
 * a canary with the rest — work as they would in Prometheus.
 */
import * as http from 'node:http';
import type { ReplicaAddress } from './proxy';

export interface ReplicaMetricsText {
  /** The replica's pid, or its id where it is no local process (an EC2 instance id, a pod's name). */
  pid: number | string;
  revision?: string;
  metricsText: string;
}

interface Family {
  meta: string[];
  metaKinds: Set<string>;
  samples: string[];
}

export function mergeReplicaMetrics(replicas: ReplicaMetricsText[]): string {
  const families = new Map<string, Family>();
  const familyFor = (name: string): Family => {
    let f = families.get(name);
    if (!f) {
      f = { meta: [], metaKinds: new Set(), samples: [] };
      families.set(name, f);
    }
    return f;
  };
  for (const { pid, revision, metricsText } of replicas) {
    let current = familyFor('');
    for (const raw of metricsText.split('\n')) {
      const line = raw.trim();
      if (!line) continue;
      const meta = /^#\s+(HELP|TYPE|UNIT)\s+(\S+)/.exec(line);
      if (meta) {
        current = familyFor(meta[2]);
        // Metadata from the first replica that has it; later replicas repeat the same lines.
        if (!current.metaKinds.has(meta[1])) {
          current.metaKinds.add(meta[1]);
          current.meta.push(line);
        }
        continue;
      }
      if (line.startsWith('#')) continue;
      current.samples.push(withReplicaLabel(line, pid, revision));
    }
  }
  let out = '';
  for (const f of families.values()) {
    if (f.samples.length === 0 && f.meta.length === 0) continue;
    out += `${[...f.meta, ...f.samples].join('\n')}\n`;
  }
  return out;
}

function withReplicaLabel(sample: string, pid: number | string, revision: string | undefined): string {
  const label =
    revision === undefined
      ? `replica="${pid}"`
      : `replica="${pid}",revision="${revision.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`))}"`;
  const brace = sample.indexOf('{');
  const space = sample.search(/\s/);
  if (brace !== -1 && (space === -1 || brace < space)) {
    const empty = sample[brace + 1] === '}';
    return `${sample.slice(0, brace + 1)}${label}${empty ? '' : ','}${sample.slice(brace + 1)}`;
  }
  return `${sample.slice(0, space)}{${label}}${sample.slice(space)}`;
}

/** GET /metrics from one replica, on its socket or port; rejects on a non-200 answer or after `timeoutMs`. */
export function fetchReplicaMetrics(address: ReplicaAddress, timeoutMs = 2000): Promise<string> {
  const where = address.socketPath ? { socketPath: address.socketPath } : { host: '127.0.0.1', port: address.port };
  return new Promise((resolve, reject) => {
    const req = http.get({ ...where, path: '/metrics', agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        res.statusCode === 200
          ? resolve(Buffer.concat(chunks).toString('utf8'))
          : reject(new Error(`GET /metrics answered ${res.statusCode}`)),
      );
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer to GET /metrics within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}
