/**
 * Waiting for a worker child process (the optimization engine, a measurement) with a deadline, keeping
 * the tail of its stderr: the two things every caller needs to say why a child failed.
 */
import type { ChildProcess } from 'node:child_process';

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  /** The last few kB the child wrote to stderr (plus a spawn error's message). */
  stderr: string;
}

const STDERR_TAIL_CHARS = 4000;

/** Resolves when `child` exits, or SIGKILLs it after `timeoutMs`. Never rejects: a spawn error is an exit. */
export function waitForChild(child: ChildProcess, timeoutMs: number): Promise<ChildExit> {
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-STDERR_TAIL_CHARS);
  });
  return new Promise((resolve) => {
    const done = (exit: Omit<ChildExit, 'stderr'>) => {
      clearTimeout(timer);
      resolve({ ...exit, stderr });
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      done({ code: null, signal: 'SIGKILL', timedOut: true });
    }, timeoutMs);
    child.once('exit', (code, signal) => done({ code, signal, timedOut: false }));
    child.once('error', (err) => {
      stderr += err.message;
      done({ code: -1, signal: null, timedOut: false });
    });
  });
}

/** The last `lines` non-empty lines of a child's stderr, joined for a one-line error message. */
export function stderrTail(stderr: string, lines: number): string {
  return stderr.trim().split('\n').filter(Boolean).slice(-lines).join(' | ');
}
