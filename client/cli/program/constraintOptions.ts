/** The cost engine's constraint flags as `ferry plan` and `ferry deploy` register them (client/cli/costFlags.ts parses them). */
import type { Command } from 'commander';
import { DEFAULT_SLO_P95_MS } from '../../../lib/cost/engine/constraints';

export function withConstraintOptions(cmd: Command): Command {
  return cmd
    .option('--slo-p95 <latency>', `the p95 latency goal (default ${DEFAULT_SLO_P95_MS}ms)`)
    .option('--budget <usd>', 'most per month, e.g. 200/month')
    .option('--providers <a,b>', 'clouds to compare (aws, gcp, azure; local, cluster, edge for the others)')
    .option('--regions <globs>', 'regions, globs allowed: us-*,eu-west-1')
    .option('--arch <arch>', 'arm64 or x86_64')
    .option('--gpu', 'GPU instances only')
    .option('--max-cold-start <latency>', 'longest cold start allowed (scale to zero)')
    .option('--no-spot', 'no spot instances')
    .option('--users-in <region>', "the users' region: the round trip (estimated) counts against the SLO");
}
