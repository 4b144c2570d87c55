/** Small helpers of the bench runs: clean-up in reverse order, pauses, and numbers for people. */

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** What a run must undo, undone in reverse order; a failing step is reported and the others still run. */
export class CleanupStack {
  private readonly steps: Array<{ what: string; undo: () => Promise<void> }> = [];

  constructor(private readonly log: (line: string) => void) {}

  push(what: string, undo: () => Promise<void>): void {
    this.steps.push({ what, undo });
  }

  async run(): Promise<void> {
    for (let step = this.steps.pop(); step; step = this.steps.pop()) {
      try {
        await step.undo();
      } catch (error) {
        this.log(`clean-up failed to ${step.what}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  }
}

export const formatCount = (n: number): string => Math.round(n).toLocaleString('en-US');

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}
