/**
 * Which cluster the kubernetes target talks to: the file `KUBECONFIG` names (the first of a
 * colon-separated list, as kubectl reads it), else the dev stack's cluster
 * (`<stateDir>/kubernetes/kubeconfig`, written by `infra/stack.sh start kubernetes`).
 */
import * as path from 'node:path';

/** The kubeconfig path to use, whether or not the file exists. */
export function kubeconfigPath(stateDir: string, env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env.KUBECONFIG?.split(path.delimiter).find((p) => p.trim() !== '');
  return fromEnv ?? path.join(stateDir, 'kubernetes', 'kubeconfig');
}

export class NoKubeconfigError extends Error {
  constructor(readonly file: string) {
    super(
      `no kubeconfig at ${file}: set KUBECONFIG, or start the dev stack's cluster with \`bash infra/stack.sh start kubernetes\``,
    );
    this.name = 'NoKubeconfigError';
  }
}
