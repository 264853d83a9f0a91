/**
 * Checkpoints as the webhook sees them: a watch-fed cache of all Checkpoints (no API call per
 * admission) with a direct read on request, for ones created or finished a moment ago.
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
import type { CheckpointLookup } from './admission/pod-mutator.ts';
import type { WebhookMetrics } from './webhook-metrics.ts';

export class CheckpointCache implements CheckpointLookup {
  private readonly api: CustomObjectsApi;
  private readonly cache: WatchedCache<Checkpoint>;
  private readonly metrics: WebhookMetrics;

  constructor(kubeConfig: KubeConfig, logger: Logger, metrics: WebhookMetrics) {
    this.api = kubeConfig.makeApiClient(CustomObjectsApi);
    this.metrics = metrics;
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

  async get(namespace: string, name: string, options: { fresh?: boolean } = {}): Promise<Checkpoint | undefined> {
    if (options.fresh !== true) {
      const cached = this.cache.get(namespace, name);
      this.metrics.checkpointLookups.inc({ source: 'cache', result: cached ? 'found' : 'missing' });
      return cached;
    }
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
