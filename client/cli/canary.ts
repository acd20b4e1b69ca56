/**
 * `ferry deploy --canary`, `ferry promote` and `ferry rollback`: canary releases of a model through the
 * pipeline. A canary version becomes a revision of the model's live deployment with a share of its
 * traffic; promote gives one revision all of it and removes the others, rollback goes back to the
 * deployment's first revision. Flags are checked here before anything is contacted.
 */
import { type FerryClient, FerryError, type RevisionChange } from '../sdk';
import { formatTraffic } from './traffic';

/** `--canary 10`, `10%` or `12.5` → 10 / 12.5; from 0 to 100. */
export function parseCanaryPercent(raw: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*%?\s*$/.exec(raw);
  const n = m ? Number(m[1]) : NaN;
  if (!(n >= 0 && n <= 100))
    throw new FerryError(`--canary must be a percentage of the traffic from 0 to 100, got "${raw}"`);
  return n;
}

export async function promoteCommand(
  ferry: FerryClient,
  ref: string,
  revision: string,
  json: boolean,
): Promise<RevisionChange> {
  const change = await ferry.promote(ref, revision);
  report(change, json, `Promoted revision ${change.kept} of ${change.deploymentId}`);
  return change;
}

export async function rollbackCommand(ferry: FerryClient, ref: string, json: boolean): Promise<RevisionChange> {
  const change = await ferry.rollback(ref);
  report(change, json, `Rolled ${change.deploymentId} back to revision ${change.kept}`);
  return change;
}

function report(change: RevisionChange, json: boolean, done: string): void {
  if (json) {
    console.log(JSON.stringify(change, null, 2));
    return;
  }
  if (change.removed.length) {
    console.log(
      `${done}: it serves all of the traffic; removed ${change.removed.join(', ')} (their replicas finished their requests and stopped).`,
    );
  } else {
    console.log(`${change.deploymentId} already serves revision ${change.kept} alone; nothing changed.`);
  }
  for (const line of formatTraffic(change.status)) console.log(line);
}
