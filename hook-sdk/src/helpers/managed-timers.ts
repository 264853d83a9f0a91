/**
 * Timers that pause before a checkpoint and resume after it with the time they had left.
 * Monotonic time does not jump across a restore, so "time left" measured before the dump is still
 * right in the copy; wall-clock deadlines are the app's to re-arm.
 */
import type { HookDefinition } from '../hook-registry.ts';

export interface ManagedTimer {
  /** Stops the timer for good. */
  clear(): void;
  /** Lets the process exit while only this timer is pending, like Timeout.unref(). */
  unref(): this;
}

interface TimerState {
  callback: () => void;
  periodMs: number | null;
  dueAt: number;
  remainingMs: number | null;
  handle: NodeJS.Timeout | undefined;
  unref: boolean;
  cleared: boolean;
}

export class ManagedTimers {
  private readonly timers = new Set<TimerState>();
  private paused = false;

  setTimeout(callback: () => void, delayMs: number): ManagedTimer {
    return this.add({ callback, periodMs: null, delayMs });
  }

  setInterval(callback: () => void, periodMs: number): ManagedTimer {
    return this.add({ callback, periodMs, delayMs: periodMs });
  }

  get isPaused(): boolean {
    return this.paused;
  }

  pause(): void {
    if (this.paused) return;
    this.paused = true;
    const now = performance.now();
    for (const timer of this.timers) {
      clearTimeout(timer.handle);
      timer.handle = undefined;
      timer.remainingMs = Math.max(0, timer.dueAt - now);
    }
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    for (const timer of this.timers) {
      this.arm(timer, timer.remainingMs ?? 0);
      timer.remainingMs = null;
    }
  }

  /**
   * Register this with CheckpointHooks: pause before, resume after, except when the outcome is
   * `superseded` (a copy carries on from the checkpoint; what the timers would start is its work now).
   */
  hook(options: { name?: string; priority?: number } = {}): HookDefinition {
    return {
      name: options.name ?? 'timers',
      ...(options.priority !== undefined ? { priority: options.priority } : {}),
      beforeCheckpoint: () => this.pause(),
      afterRestore: (context) => {
        if (context.outcome !== 'superseded') this.resume();
      },
    };
  }

  private add(spec: { callback: () => void; periodMs: number | null; delayMs: number }): ManagedTimer {
    const timer: TimerState = {
      callback: spec.callback,
      periodMs: spec.periodMs,
      dueAt: 0,
      remainingMs: null,
      handle: undefined,
      unref: false,
      cleared: false,
    };
    this.timers.add(timer);
    if (this.paused) timer.remainingMs = spec.delayMs;
    else this.arm(timer, spec.delayMs);
    const timers = this.timers;
    return {
      clear() {
        timer.cleared = true;
        clearTimeout(timer.handle);
        timers.delete(timer);
      },
      unref() {
        timer.unref = true;
        timer.handle?.unref();
        return this;
      },
    };
  }

  private arm(timer: TimerState, delayMs: number): void {
    timer.dueAt = performance.now() + delayMs;
    timer.handle = setTimeout(() => this.fire(timer), delayMs);
    if (timer.unref) timer.handle.unref();
  }

  private fire(timer: TimerState): void {
    if (timer.cleared) return;
    if (timer.periodMs === null) this.timers.delete(timer);
    else this.arm(timer, timer.periodMs);
    timer.callback();
  }
}
