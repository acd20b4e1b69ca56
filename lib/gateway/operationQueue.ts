/**
 * A deployment's operations that start or stop processes (apply, wake, reconcile, hibernate, destroy),
 * run one at a time in the order they were queued, so they never interleave. A failed operation does
 * not stop the ones queued behind it.
 */
export class OperationQueue {
  private tail: Promise<unknown> = Promise.resolve();
  private count = 0;

  /** Operations queued or running (a deployment does not scale to zero on idle while one is). */
  get pending(): number {
    return this.count;
  }

  /** Runs `op` after every operation queued before it. */
  run<T>(op: () => Promise<T>): Promise<T> {
    this.count++;
    const run = this.tail.catch(() => undefined).then(op);
    this.tail = run;
    const done = () => {
      this.count--;
    };
    run.then(done, done);
    return run;
  }
}
