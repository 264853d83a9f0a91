/**
 * Runs an async task one at a time. A request while a run is in flight asks for exactly one more
 * run right after it (however many requests came), and every caller gets the promise that
 * settles when a run that saw its request has finished. For reconcilers woken by watches,
 * timers and file events at once.
 */
export class CoalescingRunner {
  private readonly task: () => Promise<void>;
  private readonly keepGoing: () => boolean;
  private running: Promise<void> | undefined;
  private again = false;

  /** `keepGoing` false stops queued re-runs (e.g. once stopped). */
  constructor(task: () => Promise<void>, keepGoing: () => boolean = () => true) {
    this.task = task;
    this.keepGoing = keepGoing;
  }

  run(): Promise<void> {
    if (this.running !== undefined) {
      this.again = true;
      return this.running;
    }
    this.running = this.loop().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** The run in flight, if any (to await it when shutting down). */
  get inFlight(): Promise<void> | undefined {
    return this.running;
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      await this.task();
    } while (this.again && this.keepGoing());
  }
}
