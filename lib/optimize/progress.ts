/** The engine's progress reports, and the step count that turns building and measuring into one fraction. */

export interface EngineProgress {
  phase: 'analyze' | 'transform' | 'measure' | 'tune' | 'done';
  /** 0..1 over the whole run. */
  fraction: number;
  candidate?: string;
  detail?: string;
}

/** Every build, every measurement and the tuning step count as one step of the run. */
export class StepProgress {
  private step = 0;

  constructor(
    private readonly total: number,
    private readonly emit: (p: EngineProgress) => void,
  ) {}

  /** Reports `within` (0..1) of the current step done. */
  report(phase: EngineProgress['phase'], candidate: string, detail: string | undefined, within = 0): void {
    this.emit({ phase, fraction: (this.step + within) / this.total, candidate, detail });
  }

  /** The current step is done. */
  next(): void {
    this.step++;
  }
}
