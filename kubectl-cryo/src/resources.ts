/** The Cryo resources the CLI reads and creates, through CustomObjectsApi; names and paths from @cryo/common. */
import {
  CHECKPOINT_GROUP,
  CHECKPOINT_KIND,
  CHECKPOINT_PLURAL,
  CHECKPOINT_STORAGE_CLASS_PLURAL,
  CHECKPOINT_VERSION,
  CHECKPOINTS_PATH,
  checkpointPath,
  MIGRATION_KIND,
  MIGRATION_PLURAL,
  MIGRATIONS_PATH,
  migrationPath,
  type Checkpoint,
  type CheckpointStorageClass,
  type Migration,
} from '@cryo/common';
import type { Kube } from './kube.ts';

export interface ResourceInfo {
  kind: string;
  plural: string;
  /** `checkpoint.cryo.dev`: how -o name and messages name one. */
  singularQualified: string;
  /** The list/watch path in a namespace, or across all without one. */
  path(namespace?: string): string;
}

export const CHECKPOINTS: ResourceInfo = {
  kind: CHECKPOINT_KIND,
  plural: CHECKPOINT_PLURAL,
  singularQualified: `checkpoint.${CHECKPOINT_GROUP}`,
  path: (namespace) => (namespace === undefined ? CHECKPOINTS_PATH : checkpointPath(namespace)),
};

export const MIGRATIONS: ResourceInfo = {
  kind: MIGRATION_KIND,
  plural: MIGRATION_PLURAL,
  singularQualified: `migration.${CHECKPOINT_GROUP}`,
  path: (namespace) => (namespace === undefined ? MIGRATIONS_PATH : migrationPath(namespace)),
};

const custom = (plural: string) => ({ group: CHECKPOINT_GROUP, version: CHECKPOINT_VERSION, plural });

export interface ObjectList<T> {
  items: T[];
  metadata?: { resourceVersion?: string };
}

export async function getObject<T>(kube: Kube, resource: ResourceInfo, namespace: string, name: string): Promise<T> {
  return (await kube.custom.getNamespacedCustomObject({ ...custom(resource.plural), namespace, name })) as T;
}

/** One namespace, or every namespace without one. */
export async function listObjects<T>(kube: Kube, resource: ResourceInfo, namespace: string | undefined, selectors: { labelSelector?: string; fieldSelector?: string } = {}): Promise<ObjectList<T>> {
  const selector = Object.fromEntries(Object.entries(selectors).filter(([, value]) => value !== undefined));
  const list: unknown =
    namespace === undefined
      ? await kube.custom.listClusterCustomObject({ ...custom(resource.plural), ...selector })
      : await kube.custom.listNamespacedCustomObject({ ...custom(resource.plural), namespace, ...selector });
  return list as ObjectList<T>;
}

export async function createCheckpoint(kube: Kube, body: Checkpoint): Promise<Checkpoint> {
  return (await kube.custom.createNamespacedCustomObject({ ...custom(CHECKPOINT_PLURAL), namespace: body.metadata!.namespace!, body })) as Checkpoint;
}

export async function createMigration(kube: Kube, body: Migration): Promise<Migration> {
  return (await kube.custom.createNamespacedCustomObject({ ...custom(MIGRATION_PLURAL), namespace: body.metadata!.namespace!, body })) as Migration;
}

export async function getStorageClass(kube: Kube, name: string): Promise<CheckpointStorageClass> {
  return (await kube.custom.getClusterCustomObject({ ...custom(CHECKPOINT_STORAGE_CLASS_PLURAL), name })) as CheckpointStorageClass;
}

export async function listStorageClasses(kube: Kube): Promise<CheckpointStorageClass[]> {
  return ((await kube.custom.listClusterCustomObject(custom(CHECKPOINT_STORAGE_CLASS_PLURAL))) as ObjectList<CheckpointStorageClass>).items;
}
