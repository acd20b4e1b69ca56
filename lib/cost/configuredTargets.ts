/**
 * Which of Ferry's targets are configured on this machine, for the cost engine's "deployable": local
 * always, kubernetes when its kubeconfig is there (config.kubernetes.kubeconfig), ec2 with AWS
 * credentials and a region. Looks at the file system (the engine itself does not).
 */
import { existsSync } from 'node:fs';
import type { FerryConfig } from '../config';
import { ec2Configured } from '../targets/ec2/awsEnvironment';
import type { TargetKind } from './engine/types';

export function configuredTargets(config: Pick<FerryConfig, 'kubernetes' | 'aws'>): TargetKind[] {
  const out: TargetKind[] = ['local'];
  if (existsSync(config.kubernetes.kubeconfig)) out.push('kubernetes');
  if (ec2Configured(config.aws.variables)) out.push('ec2');
  return out;
}
