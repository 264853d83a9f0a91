/**
 * A cache fed by one list+watch of a resource path (client-node's informer), kept alive across
 * errors: the informer stops on a non-410 error, so this restarts it with capped backoff.
 * `synced` resolves once the first list has landed in the cache.
 */
import { makeInformer, type KubeConfig, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { describeApiError } from './api-errors.ts';

export interface WatchedCacheOptions<T extends KubernetesObject> {
  kubeConfig: KubeConfig;
  /** The list/watch path, e.g. `/apis/cryo.dev/v1alpha1/checkpoints`. */
  path: string;
  list: () => Promise<KubernetesListObject<T>>;
  logger: Logger;
  labelSelector?: string;
  /** First restart delay after a watch error; doubles up to maxBackoffMs. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  onChange?: (obj: T) => void;
}

export class WatchedCache<T extends KubernetesObject> {
  readonly synced: Promise<void>;
  private markSynced!: () => void;
  private isSynced = false;
  private stopped = false;
  private backoffMs: number;
  private restartTimer: NodeJS.Timeout | undefined;
  private readonly informer;
  private readonly options: WatchedCacheOptions<T>;

  constructor(options: WatchedCacheOptions<T>) {
    this.options = options;
    this.backoffMs = options.initialBackoffMs ?? 500;
    this.synced = new Promise((resolve) => {
      this.markSynced = resolve;
    });
    const list = async () => {
      const result = await options.list();
      // The informer stores the items in the continuation of this promise; mark synced after it.
      setImmediate(() => {
        this.backoffMs = options.initialBackoffMs ?? 500;
        if (!this.isSynced) {
          this.isSynced = true;
          this.markSynced();
        }
      });
      return result;
    };
    this.informer = makeInformer<T>(options.kubeConfig, options.path, list, options.labelSelector);
    if (options.onChange !== undefined) this.informer.on('change', options.onChange);
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
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, this.options.maxBackoffMs ?? 30_000);
    this.options.logger.warn({ path: this.options.path, err: describeApiError(err), retryInMs: delay }, 'watch failed; restarting');
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => {
      if (this.stopped) return;
      this.informer.start().catch((startErr: unknown) => this.restartAfterError(startErr));
    }, delay);
    this.restartTimer.unref();
  }
}
