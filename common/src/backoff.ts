/**
 * Retry delays for API calls that failed: doubling from `initialMs` up to `maxMs`, with ±20%
 * jitter so replicas that failed together do not retry in lockstep.
 */
export interface BackoffOptions {
  initialMs?: number;
  maxMs?: number;
}

export class Backoff {
  private readonly initialMs: number;
  private readonly maxMs: number;
  private currentMs: number;

  constructor(options: BackoffOptions = {}) {
    this.initialMs = options.initialMs ?? 500;
    this.maxMs = Math.max(options.maxMs ?? 30_000, this.initialMs);
    this.currentMs = this.initialMs;
  }

  /** The delay before the next attempt; each call doubles the following one. */
  next(): number {
    const delay = this.currentMs;
    this.currentMs = Math.min(this.currentMs * 2, this.maxMs);
    return Math.round(delay * (0.8 + Math.random() * 0.4));
  }

  reset(): void {
    this.currentMs = this.initialMs;
  }
}

// setTimeout fires at once for delays above 2^31-1 ms (~24.8 days); long waits are re-checked instead.
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A timer that never keeps the process alive on its own. */
export function unrefTimeout(callback: () => void, delayMs: number): NodeJS.Timeout {
  const timer = setTimeout(callback, Math.min(Math.max(0, delayMs), MAX_TIMER_MS));
  timer.unref();
  return timer;
}
