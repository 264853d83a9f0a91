/**
 * How far the store of a container's archive got, said at a bounded rate: gigabytes take seconds
 * to minutes to store, and `kubectl get -w` and `kubectl describe` should show a Checkpoint move
 * meanwhile without one status write and Event per chunk. A report goes out each time another
 * quarter of the archive is stored, and otherwise once an interval (10 s) has passed since the
 * last one, whichever comes first; none at the end (the final status follows).
 */
import { formatBytes } from '@cryo/common';

export interface StoreProgress {
  container: string;
  storedBytes: number;
  totalBytes: number;
  /** Since the store of this container began. */
  bytesPerSecond: number;
}

export interface StoreProgressOptions {
  container: string;
  /** The archive's size; a store that writes something else says its own total with each update. */
  totalBytes: number;
  report(progress: StoreProgress): void;
  /** At most this long without a report while storing (default 10 s). */
  intervalMs?: number;
  /** Milliseconds on a monotonic clock (tests inject theirs). */
  now?: () => number;
}

const DEFAULT_INTERVAL_MS = 10_000;
const STEPS = 4;

/** `container "app": stored 1.2 GiB of 2.0 GiB (60 %) at 180.0 MiB/s` */
export function describeStoreProgress({ container, storedBytes, totalBytes, bytesPerSecond }: StoreProgress): string {
  const percent = totalBytes > 0 ? Math.floor((storedBytes * 100) / totalBytes) : 0;
  return `container "${container}": stored ${formatBytes(storedBytes)} of ${formatBytes(totalBytes)} (${percent} %) at ${formatBytes(Math.round(bytesPerSecond))}/s`;
}

export class StoreProgressThrottle {
  private readonly options: StoreProgressOptions;
  private readonly now: () => number;
  private readonly intervalMs: number;
  private readonly startedAt: number;
  private lastReportAt: number;
  private lastStep = 0;

  constructor(options: StoreProgressOptions) {
    this.options = options;
    this.now = options.now ?? (() => performance.now());
    this.intervalMs = options.intervalMs ?? DEFAULT_INTERVAL_MS;
    this.startedAt = this.lastReportAt = this.now();
  }

  /**
   * The bytes stored so far (of `totalBytes` when the store writes something else than the
   * archive, a compressed layer); reports when a quarter is crossed or the interval has passed.
   */
  update(storedBytes: number, totalBytes = this.options.totalBytes): void {
    if (totalBytes <= 0 || storedBytes >= totalBytes) return;
    const at = this.now();
    const step = Math.floor((storedBytes * STEPS) / totalBytes);
    if (step <= this.lastStep && at - this.lastReportAt < this.intervalMs) return;
    this.lastStep = Math.max(step, this.lastStep);
    this.lastReportAt = at;
    const seconds = (at - this.startedAt) / 1000;
    this.options.report({ container: this.options.container, storedBytes, totalBytes, bytesPerSecond: seconds > 0 ? storedBytes / seconds : 0 });
  }
}
