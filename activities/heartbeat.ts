/** Keeps an activity's heartbeat going while a long await runs, so the server can tell slow from dead. */
import { heartbeat } from '@temporalio/activity';

export async function whileHeartbeating<T>(
  details: Record<string, unknown>,
  fn: () => Promise<T>,
  everyMs = 5000,
): Promise<T> {
  heartbeat(details);
  const timer = setInterval(() => heartbeat(details), everyMs);
  try {
    return await fn();
  } finally {
    clearInterval(timer);
  }
}
