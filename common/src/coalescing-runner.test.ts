import { describe, expect, it } from 'vitest';
import { CoalescingRunner } from './coalescing-runner.ts';

describe('CoalescingRunner', () => {
  it('folds every request made during a run into one more run', async () => {
    let runs = 0;
    let release!: () => void;
    const runner = new CoalescingRunner(async () => {
      runs++;
      if (runs === 1) await new Promise<void>((resolve) => (release = resolve));
    });
    const first = runner.run();
    const during = [runner.run(), runner.run(), runner.run()];
    expect(during.every((p) => p === first)).toBe(true);
    release();
    await first;
    expect(runs).toBe(2);
    expect(runner.inFlight).toBeUndefined();
  });

  it('drops the queued run once keepGoing says stop', async () => {
    let runs = 0;
    let stopped = false;
    const runner = new CoalescingRunner(
      () => {
        runs++;
        stopped = true;
        return Promise.resolve();
      },
      () => !stopped,
    );
    const first = runner.run();
    void runner.run();
    await first;
    expect(runs).toBe(1);
  });
});
