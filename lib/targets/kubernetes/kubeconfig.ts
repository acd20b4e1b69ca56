/**
 * Which cluster the kubernetes target talks to: the file `KUBECONFIG` names (the first of a
 * colon-separated list, as kubectl reads it), else the dev stack's cluster
 * (`<stateDir>/kubernetes/kubeconfig`, written by `infra/stack.sh start kubernetes`).
 */
import * as path from 'node:path';

/** The kubeconfig path to use, whether or not the file exists (lib/config.ts gives it KUBECONFIG's value). */
export function kubeconfigPath(stateDir: string, kubeconfigVariable: string | undefined): string {
  const given = kubeconfigVariable?.split(path.delimiter).find((p) => p.trim() !== '');
  return given ?? path.join(stateDir, 'kubernetes', 'kubeconfig');
}

export class NoKubeconfigError extends Error {
  constructor(readonly file: string) {
    super(
      `no kubeconfig at ${file}: set KUBECONFIG, or start the dev stack's cluster with \`bash infra/stack.sh start kubernetes\``,
    );
    this.name = 'NoKubeconfigError';
  }
}
