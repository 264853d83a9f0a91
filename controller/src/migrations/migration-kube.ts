/**
 * The API calls the Migration controller makes, each one RBAC grants it
 * (manifests/operator-rbac.yaml): reads answer undefined for 404, so the steps read as decisions.
 */
import { CoreV1Api, CustomObjectsApi, type KubeConfig, type V1Node, type V1PersistentVolume, type V1PersistentVolumeClaim, type V1Pod } from '@kubernetes/client-node';
import {
  apiStatusCode,
  CHECKPOINT_GROUP,
  CHECKPOINT_PLURAL,
  CHECKPOINT_VERSION,
  describeApiError,
  isNotFound,
  MIGRATION_PLURAL,
  type Checkpoint,
  type Migration,
  type MigrationStatus,
} from '@cryo/common';

/** What an eviction came to. */
export type EvictionResult =
  | { outcome: 'evicted' }
  /** No such pod, or one of that name with another uid: the source is gone already. */
  | { outcome: 'gone' }
  /** 429: a PodDisruptionBudget holds it (`budget`), or the eviction failed otherwise. */
  | { outcome: 'blocked'; message: string; budget?: boolean };

async function orUndefined<T>(read: Promise<T>): Promise<T | undefined> {
  try {
    return await read;
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

export class MigrationKube {
  private readonly core: CoreV1Api;
  private readonly custom: CustomObjectsApi;

  constructor(kubeConfig: KubeConfig) {
    this.core = kubeConfig.makeApiClient(CoreV1Api);
    this.custom = kubeConfig.makeApiClient(CustomObjectsApi);
  }

  getPod(namespace: string, name: string): Promise<V1Pod | undefined> {
    return orUndefined(this.core.readNamespacedPod({ namespace, name }));
  }

  async listPods(namespace: string, labelSelector?: string): Promise<V1Pod[]> {
    return (await this.core.listNamespacedPod({ namespace, ...(labelSelector === undefined ? {} : { labelSelector }) })).items;
  }

  createPod(namespace: string, pod: V1Pod): Promise<V1Pod> {
    return this.core.createNamespacedPod({ namespace, body: pod });
  }

  getNode(name: string): Promise<V1Node | undefined> {
    return orUndefined(this.core.readNode({ name }));
  }

  async listNodes(): Promise<V1Node[]> {
    return (await this.core.listNode()).items;
  }

  getClaim(namespace: string, name: string): Promise<V1PersistentVolumeClaim | undefined> {
    return orUndefined(this.core.readNamespacedPersistentVolumeClaim({ namespace, name }));
  }

  getVolume(name: string): Promise<V1PersistentVolume | undefined> {
    return orUndefined(this.core.readPersistentVolume({ name }));
  }

  /** POST pods/<name>/eviction (policy/v1), only of the pod with this uid: PodDisruptionBudgets apply. */
  async evict(namespace: string, name: string, uid: string | undefined): Promise<EvictionResult> {
    try {
      await this.core.createNamespacedPodEviction({
        namespace,
        name,
        body: {
          apiVersion: 'policy/v1',
          kind: 'Eviction',
          metadata: { name, namespace },
          ...(uid === undefined ? {} : { deleteOptions: { preconditions: { uid } } }),
        },
      });
      return { outcome: 'evicted' };
    } catch (error) {
      const code = apiStatusCode(error);
      // 409: the precondition failed, this name is another pod now.
      if (code === 404 || code === 409) return { outcome: 'gone' };
      if (code === 429) return { outcome: 'blocked', message: describeApiError(error).replace(/^HTTP 429: /, ''), budget: true };
      throw error;
    }
  }

  getCheckpoint(namespace: string, name: string): Promise<Checkpoint | undefined> {
    return orUndefined(this.custom.getNamespacedCustomObject({ group: CHECKPOINT_GROUP, version: CHECKPOINT_VERSION, plural: CHECKPOINT_PLURAL, namespace, name }) as Promise<Checkpoint>);
  }

  createCheckpoint(checkpoint: Checkpoint): Promise<Checkpoint> {
    const namespace = checkpoint.metadata!.namespace!;
    return this.custom.createNamespacedCustomObject({ group: CHECKPOINT_GROUP, version: CHECKPOINT_VERSION, plural: CHECKPOINT_PLURAL, namespace, body: checkpoint }) as Promise<Checkpoint>;
  }

  getMigration(namespace: string, name: string): Promise<Migration | undefined> {
    return orUndefined(this.custom.getNamespacedCustomObject({ group: CHECKPOINT_GROUP, version: CHECKPOINT_VERSION, plural: MIGRATION_PLURAL, namespace, name }) as Promise<Migration>);
  }

  /** Replaces the status, checked against the resourceVersion read: a lost race is a 409. */
  writeStatus(migration: Migration, status: MigrationStatus): Promise<Migration> {
    return this.custom.replaceNamespacedCustomObjectStatus({
      group: CHECKPOINT_GROUP,
      version: CHECKPOINT_VERSION,
      plural: MIGRATION_PLURAL,
      namespace: migration.metadata!.namespace!,
      name: migration.metadata!.name!,
      body: { ...migration, status },
    }) as Promise<Migration>;
  }
}
