/**
 * Which of Ferry's targets are configured on this machine, for the cost engine's "deployable": local
 * always, kubernetes when a kubeconfig is there (KUBECONFIG or `<stateDir>/kubernetes/kubeconfig`), ec2
 * with AWS credentials and a region. Reads the environment and the file system (the engine itself does not).
 */
import { existsSync } from 'node:fs';
import { ec2Configured } from '../targets/ec2/awsEnvironment';
import { kubeconfigPath } from '../targets/kubernetes/kubeconfig';
import type { TargetKind } from './engine/types';

export function configuredTargets(stateDir: string, env: NodeJS.ProcessEnv = process.env): TargetKind[] {
  const out: TargetKind[] = ['local'];
  if (existsSync(kubeconfigPath(stateDir, env))) out.push('kubernetes');
  if (ec2Configured(env)) out.push('ec2');
  return out;
}

/** What this machine costs per hour, when the user has said so (FERRY_LOCAL_COST_PER_HOUR); local is an option only then. */
export function userLocalCostPerHour(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const raw = env.FERRY_LOCAL_COST_PER_HOUR;
  if (raw === undefined || raw.trim() === '') return undefined;
  const n = Number(raw);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}
