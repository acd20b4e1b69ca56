/**
 * What the metadata service's answers mean, and what the agent does about them (pure, so the decisions
 * are tested without a metadata service).
 *
 *   /latest/meta-data/spot/instance-action                 200 {"action": "terminate"|"stop"|"hibernate", "time": ISO}
 *     when EC2 reclaims the spot capacity, two minutes before `time`; 404 otherwise.
 *   /latest/meta-data/events/recommendations/rebalance     200 {"noticeTime": ISO} when the instance is at
 *     elevated risk of interruption (it may come earlier than the notice, or not at all); 404 otherwise.
 */
import type { MetadataAnswer } from './imds';

export type Notice = { kind: 'interruption'; action: string; at: string } | { kind: 'rebalance'; at: string };

export function parseInstanceAction(answer: MetadataAnswer): Notice | undefined {
  if (answer.status === 404) return undefined;
  if (answer.status !== 200) throw new Error(`spot/instance-action: HTTP ${answer.status}`);
  const body = JSON.parse(answer.body) as { action?: unknown; time?: unknown };
  if (typeof body.action !== 'string' || typeof body.time !== 'string')
    throw new Error(`spot/instance-action: unexpected answer ${answer.body.slice(0, 200)}`);
  return { kind: 'interruption', action: body.action, at: body.time };
}

export function parseRebalance(answer: MetadataAnswer): Notice | undefined {
  if (answer.status === 404) return undefined;
  if (answer.status !== 200) throw new Error(`events/recommendations/rebalance: HTTP ${answer.status}`);
  const body = JSON.parse(answer.body) as { noticeTime?: unknown };
  if (typeof body.noticeTime !== 'string')
    throw new Error(`events/recommendations/rebalance: unexpected answer ${answer.body.slice(0, 200)}`);
  return { kind: 'rebalance', at: body.noticeTime };
}

export type AgentPhase = 'serving' | 'draining' | 'drained';

export interface DecisionPolicy {
  /** What a rebalance recommendation does: drain now (and get a replacement first), or wait for the notice. */
  onRebalance: 'drain' | 'ignore';
}

export type Decision =
  | { drain: false }
  | { drain: true; reason: 'spot-interruption' | 'rebalance-recommendation'; notice: Notice };

/**
 * Drain once: on the interruption notice (the instance has two minutes), or on a rebalance recommendation
 * when the policy says so. An interruption wins over a rebalance seen in the same poll. Nothing happens
 * twice: a replica already draining or drained stays so.
 */
export function decide(phase: AgentPhase, notices: Array<Notice | undefined>, policy: DecisionPolicy): Decision {
  if (phase !== 'serving') return { drain: false };
  const interruption = notices.find((n) => n?.kind === 'interruption');
  if (interruption) return { drain: true, reason: 'spot-interruption', notice: interruption };
  const rebalance = notices.find((n) => n?.kind === 'rebalance');
  if (rebalance && policy.onRebalance === 'drain')
    return { drain: true, reason: 'rebalance-recommendation', notice: rebalance };
  return { drain: false };
}
