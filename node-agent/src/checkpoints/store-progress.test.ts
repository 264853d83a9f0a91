import { describe, expect, it } from 'vitest';
import { describeStoreProgress, StoreProgressThrottle, type StoreProgress } from './store-progress.ts';

const GiB = 1024 ** 3;

describe('StoreProgressThrottle: how far a store got, at a bounded rate', () => {
  /** A throttle on a clock the test moves; `at(ms, bytes)` sets the clock and reports the bytes stored. */
  function throttle(totalBytes: number, intervalMs = 10_000) {
    let clock = 0;
    const reports: StoreProgress[] = [];
    const progress = new StoreProgressThrottle({ container: 'app', totalBytes, intervalMs, now: () => clock, report: (p) => reports.push(p) });
    const at = (ms: number, bytes: number) => {
      clock = ms;
      progress.update(bytes);
    };
    return { at, reports };
  }

  it('reports each quarter as it is crossed, once, and nothing at the end', () => {
    const { at, reports } = throttle(4 * GiB);
    // Many small chunks within the interval: only the quarters are said.
    for (let i = 1; i <= 40; i++) at(i * 100, (i * 4 * GiB) / 40);
    expect(reports.map((r) => r.storedBytes)).toEqual([GiB, 2 * GiB, 3 * GiB]);
    expect(reports[0]).toEqual({ container: 'app', storedBytes: GiB, totalBytes: 4 * GiB, bytesPerSecond: GiB });
  });

  it('reports once an interval has passed without a quarter crossed, and not more often', () => {
    const { at, reports } = throttle(100 * GiB);
    at(5_000, GiB);
    at(9_999, 2 * GiB);
    at(10_000, 3 * GiB);
    at(15_000, 4 * GiB);
    at(20_000, 5 * GiB);
    expect(reports.map((r) => [r.storedBytes, r.bytesPerSecond])).toEqual([
      [3 * GiB, (3 * GiB) / 10],
      [5 * GiB, (5 * GiB) / 20],
    ]);
  });

  it('counts of the total a store says with each update (a compressed layer), not the archive\'s', () => {
    let clock = 0;
    const reports: StoreProgress[] = [];
    const progress = new StoreProgressThrottle({ container: 'app', totalBytes: 4 * GiB, now: () => clock, report: (p) => reports.push(p) });
    clock = 1_000;
    progress.update(GiB / 4, 2 * GiB);
    // A quarter of 2 GiB (of the archive's 4 GiB it would be an eighth, and not said).
    progress.update(GiB / 2, 2 * GiB);
    progress.update(2 * GiB, 2 * GiB);
    expect(reports).toEqual([{ container: 'app', storedBytes: GiB / 2, totalBytes: 2 * GiB, bytesPerSecond: GiB / 2 }]);
  });

  it('says nothing of an empty archive', () => {
    const { at, reports } = throttle(0);
    at(60_000, 0);
    expect(reports).toEqual([]);
  });

  it('is said in words a person reads in kubectl', () => {
    expect(describeStoreProgress({ container: 'app', storedBytes: 1.2 * GiB, totalBytes: 2 * GiB, bytesPerSecond: 180 * 1024 ** 2 })).toBe('container "app": stored 1.2 GiB of 2.0 GiB (60 %) at 180.0 MiB/s');
  });
});
