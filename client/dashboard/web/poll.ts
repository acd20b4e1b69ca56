/** A value loaded from the API and refreshed every few seconds while the page shows it. */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';

export interface Polled<T> {
  data: T | undefined;
  error: Error | undefined;
  reload(): void;
}

export function usePoll<T>(load: () => Promise<T>, everyMs: number, deps: unknown[]): Polled<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<Error | undefined>(undefined);
  const generation = useRef(0);
  const run = useCallback(async () => {
    const mine = generation.current;
    try {
      const v = await load();
      if (mine !== generation.current) return; // the page moved on while this was in flight
      setData(v);
      setError(undefined);
    } catch (err) {
      if (mine === generation.current) setError(err as Error);
    }
  }, deps);
  useEffect(() => {
    generation.current++;
    setData(undefined);
    setError(undefined);
    run();
    const timer = setInterval(run, everyMs);
    return () => {
      generation.current++;
      clearInterval(timer);
    };
  }, [run, everyMs]);
  return { data, error, reload: run };
}
