/**
 * The connection-pool pattern: a resource (a pool, a client, a socket) that is closed before a
 * checkpoint and opened anew after it. Code asks for it with `get()`, which waits while the
 * resource is closed for a checkpoint instead of failing, so requests arriving meanwhile queue.
 * After a `superseded` outcome it stays closed and `get()` keeps waiting: a copy carries on from
 * the checkpoint, and nothing here may write through the resource any more.
 */
import type { HookDefinition, HookContext } from '../hook-registry.ts';

export interface ManagedResourceOptions<T> {
  name: string;
  /** Opens the resource; called at creation and after every checkpoint (after restore: a fresh one). */
  open: (context: HookContext | null) => T | Promise<T>;
  close: (resource: T) => void | Promise<void>;
  priority?: number;
  timeoutMs?: number;
}

export class ManagedResource<T> {
  private current: Promise<T>;
  private readonly options: ManagedResourceOptions<T>;

  constructor(options: ManagedResourceOptions<T>) {
    this.options = options;
    this.current = Promise.resolve().then(() => options.open(null));
    // A failed first open surfaces from get(); it must not be an unhandled rejection meanwhile.
    this.current.catch(() => {});
  }

  /** The open resource, waiting while it is being closed or reopened for a checkpoint. */
  get(): Promise<T> {
    return this.current;
  }

  hook(): HookDefinition {
    let reopen: ((value: T | Promise<T>) => void) | undefined;
    return {
      name: this.options.name,
      ...(this.options.priority !== undefined ? { priority: this.options.priority } : {}),
      ...(this.options.timeoutMs !== undefined ? { timeoutMs: this.options.timeoutMs } : {}),
      beforeCheckpoint: async () => {
        // Still closed since a checkpoint that superseded this process: nothing to close.
        if (reopen !== undefined) return;
        const previous = this.current;
        this.current = new Promise<T>((resolve) => (reopen = resolve));
        await this.options.close(await previous);
      },
      afterRestore: async (context) => {
        if (context.outcome === 'superseded') return;
        const opened = Promise.resolve().then(() => this.options.open(context));
        if (reopen !== undefined) {
          reopen(opened);
          reopen = undefined;
        } else {
          this.current = opened;
        }
        await opened;
      },
    };
  }
}
