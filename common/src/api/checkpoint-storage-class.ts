/**
 * The CheckpointStorageClass API (`checkpointstorageclasses.cryo.dev/v1alpha1`, cluster-scoped):
 * stores the administrator defines, as StorageClasses are for volumes. Each says where
 * checkpoints go (a registry or a node directory), with which credentials, and which namespaces
 * may use it. A Checkpoint names one in spec.storageClassName, or gets the default class open to
 * its namespace (annotation cryo.dev/is-default-class: "true"; the newest wins if several are, as
 * for StorageClasses). manifests/crd-checkpointstorageclasses.yaml mirrors these types
 * (test/manifests checks both directions).
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import { CHECKPOINT_GROUP, CHECKPOINT_VERSION } from './checkpoint.ts';

export const CHECKPOINT_STORAGE_CLASS_PLURAL = 'checkpointstorageclasses';
export const CHECKPOINT_STORAGE_CLASS_KIND = 'CheckpointStorageClass';

/** `*` in spec.namespaces opens a class to every namespace. */
export const ALL_NAMESPACES = '*';

/**
 * spec.registry.layerCompression: each checkpoint image's layer is the archive as it is (`None`)
 * or zstd-compressed (`Zstd`); absent: the node agent's --registry-layer-compression.
 */
export const STORAGE_CLASS_LAYER_COMPRESSIONS = ['None', 'Zstd'] as const;
export type StorageClassLayerCompression = (typeof STORAGE_CLASS_LAYER_COMPRESSIONS)[number];

export interface CheckpointStorageClassSpec {
  /** The namespaces whose Checkpoints may use this class (`*`: all). Each namespace's checkpoints stay apart in it. */
  namespaces: string[];
  /** Push OCI checkpoint images below this repository: each namespace's go to <repository>/cryo-checkpoints/<namespace>. */
  registry?: {
    repository: string;
    /** A kubernetes.io/dockerconfigjson Secret in the node agent's namespace used to push. */
    pushSecretName?: string;
    /**
     * An imagePullSecret the webhook adds to pods restoring from this class: a Secret of that name
     * in the restoring pod's own namespace, whose credential should reach only that namespace's
     * repository (docs/security.md#pull-credentials).
     */
    pullSecretName?: string;
    /** Compress each image's layer, or not; overrides the node agent's --registry-layer-compression. */
    layerCompression?: StorageClassLayerCompression;
  };
  /** File archives under this directory on the node (the agent's --directory or below it): each namespace's go to <path>/<namespace>/. */
  directory?: {
    path: string;
    /** Every node mounts the same directory (NFS, CephFS...): checkpoints restore on any node. */
    shared?: boolean;
  };
}

export interface CheckpointStorageClass extends KubernetesObject {
  apiVersion?: `${typeof CHECKPOINT_GROUP}/${typeof CHECKPOINT_VERSION}`;
  kind?: typeof CHECKPOINT_STORAGE_CLASS_KIND;
  spec: CheckpointStorageClassSpec;
}

export interface CheckpointStorageClassList {
  apiVersion?: string;
  kind?: string;
  metadata?: { resourceVersion?: string; continue?: string };
  items: CheckpointStorageClass[];
}

/** The list/watch path of all CheckpointStorageClasses. */
export const CHECKPOINT_STORAGE_CLASSES_PATH = `/apis/${CHECKPOINT_GROUP}/${CHECKPOINT_VERSION}/${CHECKPOINT_STORAGE_CLASS_PLURAL}`;

/** Whether a class is open to `namespace`. */
export function storageClassAllows(storageClass: CheckpointStorageClass, namespace: string): boolean {
  const open = storageClass.spec?.namespaces ?? [];
  return open.includes(ALL_NAMESPACES) || open.includes(namespace);
}

/** True when the administrator marked the class the default (cryo.dev/is-default-class: "true"). */
export function isDefaultStorageClass(storageClass: CheckpointStorageClass, annotation: string): boolean {
  return storageClass.metadata?.annotations?.[annotation] === 'true';
}

/**
 * The default class for `namespace`: of the classes marked default and open to it, the newest
 * (then the first by name), as Kubernetes picks among several default StorageClasses.
 */
export function defaultStorageClassFor(classes: readonly CheckpointStorageClass[], namespace: string, annotation: string): CheckpointStorageClass | undefined {
  const candidates = classes.filter((c) => isDefaultStorageClass(c, annotation) && storageClassAllows(c, namespace));
  const created = (c: CheckpointStorageClass) => Date.parse(String(c.metadata?.creationTimestamp ?? '')) || 0;
  return candidates.sort((a, b) => created(b) - created(a) || (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''))[0];
}
