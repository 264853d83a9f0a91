/**
 * A cache fed by one list+watch of a resource path (client-node's informer), kept alive across
 * errors: the informer stops on a non-410 error, so this restarts it with capped backoff.
 * `synced` resolves once the first list has landed in the cache.
 */
import { ListWatch, Watch, type KubeConfig, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { Backoff } from '../backoff.ts';
import { describeApiError } from './api-errors.ts';

export interface WatchedCacheOptions<T extends KubernetesObject> {
  kubeConfig: KubeConfig;
  /** The list/watch path, e.g. `/apis/cryo.dev/v1alpha1/checkpoints`. */
  path: string;
  list: () => Promise<KubernetesListObject<T>>;
  logger: Logger;
  labelSelector?: string;
  /** For example `spec.nodeName=<node>`: the node agent caches only its own node's pods. */
  fieldSelector?: string;
  /** Restart delays after watch errors (default 500 ms doubling to 30 s, with jitter). */
  backoff?: { initialMs?: number; maxMs?: number };
  /** Called for every add, update and delete. */
  onChange?: (obj: T) => void;
  onAdd?: (obj: T) => void;
  onUpdate?: (obj: T) => void;
  onDelete?: (obj: T) => void;
}

export class WatchedCache<T extends KubernetesObject> {
  readonly synced: Promise<void>;
  private markSynced!: () => void;
  private isSynced = false;
  private stopped = false;
  private readonly backoff: Backoff;
  private restartTimer: NodeJS.Timeout | undefined;
  private readonly informer;
  private readonly options: WatchedCacheOptions<T>;

  constructor(options: WatchedCacheOptions<T>) {
    this.options = options;
    this.backoff = new Backoff(options.backoff);
    this.synced = new Promise((resolve) => {
      this.markSynced = resolve;
    });
    const list = async () => {
      const result = await options.list();
      // The informer stores the items in the continuation of this promise; mark synced after it.
      setImmediate(() => {
        this.backoff.reset();
        if (!this.isSynced) {
          this.isSynced = true;
          this.markSynced();
        }
      });
      return result;
    };
    // ListWatch rather than makeInformer: makeInformer cannot pass a field selector.
    this.informer = new ListWatch<T>(
      options.path,
      new Watch(options.kubeConfig),
      list,
      false,
      options.labelSelector,
      options.fieldSelector,
    );
    if (options.onChange !== undefined) this.informer.on('change', options.onChange);
    if (options.onAdd !== undefined) this.informer.on('add', options.onAdd);
    if (options.onUpdate !== undefined) this.informer.on('update', options.onUpdate);
    if (options.onDelete !== undefined) this.informer.on('delete', options.onDelete);
    this.informer.on('error', (err: unknown) => this.restartAfterError(err));
  }

  get hasSynced(): boolean {
    return this.isSynced;
  }

  async start(): Promise<void> {
    this.stopped = false;
    await this.informer.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    await this.informer.stop();
  }

  get(namespace: string, name: string): T | undefined {
    return this.informer.get(name, namespace);
  }

  list(namespace?: string): readonly T[] {
    return this.informer.list(namespace);
  }

  private restartAfterError(err: unknown): void {
    if (this.stopped) return;
    const delay = this.backoff.next();
    this.options.logger.warn({ path: this.options.path, err: describeApiError(err), retryInMs: delay }, 'watch failed; restarting');
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => {
      if (this.stopped) return;
      this.informer.start().catch((startErr: unknown) => this.restartAfterError(startErr));
    }, delay);
    this.restartTimer.unref();
  }
}
