/**
 * Migrations as the webhook sees them: a watch-fed cache of all Migrations, so that a pod a
 * ReplicaSet or StatefulSet creates to replace a migrated one is matched without an API call
 * (admission/migration-replacement.ts). Every pod of such an owner is sent to the webhook, so
 * there is no direct read here: the Migration's status was written before the eviction that led
 * to the replacement, and the watch brings it well within the owner's reaction time.
 */
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { CHECKPOINT_GROUP, CHECKPOINT_VERSION, MIGRATION_PLURAL, MIGRATIONS_PATH, WatchedCache, type Logger, type Migration, type MigrationList } from '@cryo/common';
import type { MigrationLookup } from './admission/migration-replacement.ts';

export class MigrationCache implements MigrationLookup {
  private readonly cache: WatchedCache<Migration>;

  constructor(kubeConfig: KubeConfig, logger: Logger) {
    const api = kubeConfig.makeApiClient(CustomObjectsApi);
    this.cache = new WatchedCache<Migration>({
      kubeConfig,
      path: MIGRATIONS_PATH,
      logger,
      list: async () => (await api.listClusterCustomObject({ group: CHECKPOINT_GROUP, version: CHECKPOINT_VERSION, plural: MIGRATION_PLURAL })) as MigrationList,
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

  list(namespace: string): readonly Migration[] {
    return this.cache.list(namespace);
  }
}
