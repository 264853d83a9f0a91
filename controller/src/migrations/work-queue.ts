/**
 * The controller's work queue, keyed by `namespace/name`: a key is worked on by one worker at a
 * time (an add while it runs runs it once more afterwards), at most `concurrency` keys at once,
 * and a worker may ask to be run again after a delay (waiting for a pod, a node, a budget). A
 * worker that throws is retried with a per-key backoff. Paused (this replica is not the leader),
 * nothing starts and every pending or delayed key is dropped: the next leader lists everything anew.
 */
import { Backoff, unrefTimeout, type Logger } from '@cryo/common';

/** What a worker answers: undefined when the key needs nothing more until something changes. */
export type WorkResult = { requeueAfterMs?: number } | undefined;

export interface WorkQueueOptions {
  concurrency: number;
  worker: (key: string) => Promise<WorkResult>;
  logger: Logger;
  /** What a key names, for the log (default Migration). */
  kind?: string;
  /** Retry delays after a worker threw (default 500 ms doubling to 30 s). */
  backoff?: { initialMs?: number; maxMs?: number };
}

export class WorkQueue {
  private readonly options: WorkQueueOptions;
  private readonly ready: string[] = [];
  private readonly readySet = new Set<string>();
  private readonly active = new Set<string>();
  /** Keys added while they ran: run again when they finish. */
  private readonly dirty = new Set<string>();
  private readonly delayed = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly backoffs = new Map<string, Backoff>();
  private readonly running = new Set<Promise<void>>();
  private paused = true;

  constructor(options: WorkQueueOptions) {
    this.options = options;
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /** Keys being worked on or waiting to be (not the delayed ones). */
  get depth(): number {
    return this.readySet.size + this.active.size;
  }

  resume(): void {
    this.paused = false;
    this.pump();
  }

  /** Drops everything queued; the workers running finish (their requeues are dropped too). */
  pause(): void {
    this.paused = true;
    this.ready.length = 0;
    this.readySet.clear();
    this.dirty.clear();
    for (const { timer } of this.delayed.values()) clearTimeout(timer);
    this.delayed.clear();
  }

  /** Queues the key now, or after `delayMs` (an earlier request for the same key wins). */
  add(key: string, delayMs = 0): void {
    if (this.paused) return;
    if (delayMs > 0) {
      const at = Date.now() + delayMs;
      const pending = this.delayed.get(key);
      if (pending !== undefined && pending.at <= at) return;
      if (pending !== undefined) clearTimeout(pending.timer);
      this.delayed.set(key, { at, timer: unrefTimeout(() => this.fire(key), delayMs) });
      return;
    }
    const pending = this.delayed.get(key);
    if (pending !== undefined) {
      clearTimeout(pending.timer);
      this.delayed.delete(key);
    }
    if (this.active.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.readySet.has(key)) return;
    this.readySet.add(key);
    this.ready.push(key);
    this.pump();
  }

  /** Resolves when the workers running now have finished. */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  private fire(key: string): void {
    this.delayed.delete(key);
    this.add(key);
  }

  private pump(): void {
    while (!this.paused && this.active.size < this.options.concurrency && this.ready.length > 0) {
      const key = this.ready.shift()!;
      this.readySet.delete(key);
      this.active.add(key);
      const run = this.run(key).finally(() => this.running.delete(run));
      this.running.add(run);
    }
  }

  private async run(key: string): Promise<void> {
    let requeueAfterMs: number | undefined;
    try {
      requeueAfterMs = (await this.options.worker(key))?.requeueAfterMs;
      this.backoffs.delete(key);
    } catch (error) {
      let backoff = this.backoffs.get(key);
      if (backoff === undefined) {
        backoff = new Backoff(this.options.backoff);
        this.backoffs.set(key, backoff);
      }
      requeueAfterMs = backoff.next();
      const kind = this.options.kind ?? 'Migration';
      this.options.logger.error({ [kind.toLowerCase()]: key, err: error instanceof Error ? error.message : String(error), retryInMs: requeueAfterMs }, `reconciling a ${kind} failed; retrying`);
    }
    this.active.delete(key);
    if (this.dirty.delete(key)) this.add(key);
    else if (requeueAfterMs !== undefined) this.add(key, Math.max(1, requeueAfterMs));
    this.pump();
  }
}
