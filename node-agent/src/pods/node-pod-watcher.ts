/**
 * This node's pods, from one watch with the field selector `spec.nodeName=<node>`. It feeds the
 * hook server (a socket exists exactly while a hook-enabled pod runs here; the first full list
 * also removes directories an earlier agent left behind) and tells the Checkpoint controller
 * when a pod appears or changes, so a Checkpoint created before its pod reached this cache runs.
 */
import { CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { WatchedCache, type Logger } from '@cryo/common';
import { hookPodOf } from '../hooks/hook-pod.ts';
import type { HookServer } from '../hooks/hook-server.ts';

export interface NodePodWatcherOptions {
  kubeConfig: KubeConfig;
  nodeName: string;
  server: HookServer;
  logger: Logger;
  /** Called for every pod added or changed, after the first list. */
  onPod?: (pod: V1Pod) => void;
}

export class NodePodWatcher {
  private readonly cache: WatchedCache<V1Pod>;
  private readonly options: NodePodWatcherOptions;
  // Socket changes run one at a time, in the order the watch delivered them.
  private queue: Promise<void> = Promise.resolve();

  constructor(options: NodePodWatcherOptions) {
    this.options = options;
    const core = options.kubeConfig.makeApiClient(CoreV1Api);
    const fieldSelector = `spec.nodeName=${options.nodeName}`;
    this.cache = new WatchedCache<V1Pod>({
      kubeConfig: options.kubeConfig,
      path: '/api/v1/pods',
      fieldSelector,
      list: () => core.listPodForAllNamespaces({ fieldSelector }),
      logger: options.logger,
      onAdd: (pod) => this.apply(pod, false),
      onUpdate: (pod) => this.apply(pod, false),
      onDelete: (pod) => this.apply(pod, true),
    });
  }

  /** Starts the watch; resolves once the sockets match the first list. */
  async start(): Promise<void> {
    await this.cache.start();
    await this.cache.synced;
    await this.enqueue(() => this.options.server.sync(this.cache.list().flatMap((pod) => hookPodOf(pod) ?? [])));
  }

  get hasSynced(): boolean {
    return this.cache.hasSynced;
  }

  /** A pod of this node. */
  get(namespace: string, name: string): V1Pod | undefined {
    return this.cache.get(namespace, name);
  }

  async stop(): Promise<void> {
    await this.cache.stop();
    await this.queue;
  }

  private apply(pod: V1Pod, deleted: boolean): void {
    if (!this.cache.hasSynced) return; // the first sync() covers what arrives with the list
    const hookPod = deleted ? null : hookPodOf(pod);
    const uid = pod.metadata?.uid;
    if (uid === undefined) return;
    void this.enqueue(() => (hookPod === null ? this.options.server.removePod(uid) : this.options.server.addPod(hookPod)));
    if (!deleted) this.options.onPod?.(pod);
  }

  private enqueue(change: () => Promise<void>): Promise<void> {
    const next = this.queue.then(change).catch((error: unknown) => {
      this.options.logger.error({ err: (error as Error).message }, 'could not update a hook socket');
    });
    this.queue = next;
    return next;
  }
}
