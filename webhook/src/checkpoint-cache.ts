/**
 * Checkpoints as the webhook sees them: a watch-fed cache of all Checkpoints (no API call per
 * admission) with a direct read on request, for ones created or finished a moment ago. Direct
 * reads are bounded (api-read-limiter.ts: per namespace and in all) and concurrent reads of one
 * Checkpoint share one GET, so pods naming Checkpoints that do not exist cannot flood the API.
 */
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import {
  CHECKPOINT_GROUP,
  CHECKPOINT_PLURAL,
  CHECKPOINT_VERSION,
  CHECKPOINTS_PATH,
  WatchedCache,
  isNotFound,
  type Checkpoint,
  type CheckpointList,
  type Logger,
} from '@cryo/common';
import { ApiReadLimiter, ApiReadThrottled, DEFAULT_API_READ_LIMITS, type ApiReadLimits } from './admission/api-read-limiter.ts';
import type { CheckpointLookup } from './admission/pod-mutator.ts';
import type { WebhookMetrics } from './webhook-metrics.ts';

export class CheckpointCache implements CheckpointLookup {
  private readonly api: CustomObjectsApi;
  private readonly cache: WatchedCache<Checkpoint>;
  private readonly metrics: WebhookMetrics;
  private readonly limiter: ApiReadLimiter;
  /** Direct reads under way, by namespace/name: a second request for one joins the first. */
  private readonly reading = new Map<string, Promise<Checkpoint | undefined>>();

  constructor(kubeConfig: KubeConfig, logger: Logger, metrics: WebhookMetrics, limits: ApiReadLimits = DEFAULT_API_READ_LIMITS) {
    this.api = kubeConfig.makeApiClient(CustomObjectsApi);
    this.metrics = metrics;
    this.limiter = new ApiReadLimiter(limits);
    this.cache = new WatchedCache<Checkpoint>({
      kubeConfig,
      path: CHECKPOINTS_PATH,
      logger,
      list: async () =>
        (await this.api.listClusterCustomObject({
          group: CHECKPOINT_GROUP,
          version: CHECKPOINT_VERSION,
          plural: CHECKPOINT_PLURAL,
        })) as CheckpointList,
    });
  }

  get synced(): Promise<void> {
    return this.cache.synced;
  }

  get hasSynced(): boolean {
    return this.cache.hasSynced;
  }

  start(): Promise<void> {
    return this.cache.start();
  }

  stop(): Promise<void> {
    return this.cache.stop();
  }

  /**
   * The cached Checkpoint, or with `fresh` the API's. A fresh read over the limits rejects with
   * ApiReadThrottled, which the mutator turns into a 503 refusal saying when to retry.
   */
  async get(namespace: string, name: string, options: { fresh?: boolean } = {}): Promise<Checkpoint | undefined> {
    if (options.fresh !== true) {
      const cached = this.cache.get(namespace, name);
      this.metrics.checkpointLookups.inc({ source: 'cache', result: cached ? 'found' : 'missing' });
      return cached;
    }
    const key = `${namespace}/${name}`;
    const pending = this.reading.get(key);
    if (pending !== undefined) return pending;
    const permit = this.limiter.acquire(namespace);
    if (!permit.granted) {
      this.metrics.checkpointLookups.inc({ source: 'api', result: 'throttled' });
      throw new ApiReadThrottled(namespace, permit, this.limiter.limits);
    }
    const read = this.read(namespace, name).finally(() => this.reading.delete(key));
    this.reading.set(key, read);
    return read;
  }

  private async read(namespace: string, name: string): Promise<Checkpoint | undefined> {
    try {
      const checkpoint = (await this.api.getNamespacedCustomObject({
        group: CHECKPOINT_GROUP,
        version: CHECKPOINT_VERSION,
        plural: CHECKPOINT_PLURAL,
        namespace,
        name,
      })) as Checkpoint;
      this.metrics.checkpointLookups.inc({ source: 'api', result: 'found' });
      return checkpoint;
    } catch (err) {
      if (isNotFound(err)) {
        this.metrics.checkpointLookups.inc({ source: 'api', result: 'missing' });
        return undefined;
      }
      this.metrics.checkpointLookups.inc({ source: 'api', result: 'error' });
      throw err;
    }
  }
}
