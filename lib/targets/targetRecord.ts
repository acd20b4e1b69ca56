/**
 * Where a deployment runs, as its PostgreSQL row records it (deployments.target): `local`, or
 * `kubernetes:<namespace>`. The deploy stage writes it; the serving controls (traffic, promote,
 * rollback) read it to reach the deployment where it runs.
 */
export type TargetPlace = { kind: 'local' } | { kind: 'kubernetes'; namespace: string };

export function targetRecord(place: TargetPlace): string {
  return place.kind === 'kubernetes' ? `kubernetes:${place.namespace}` : 'local';
}

/** The place a row names; anything else (rows written before targets) is the local gateway. */
export function targetPlace(record: string | undefined): TargetPlace {
  const m = /^kubernetes:(.+)$/.exec(record ?? '');
  return m ? { kind: 'kubernetes', namespace: m[1] } : { kind: 'local' };
}
