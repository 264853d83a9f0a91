/**
 * The Checkpoint API (`checkpoints.cryo.dev/v1alpha1`): the one definition of the resource's
 * shape that the webhook, the node agent and the CRD schema in manifests/ agree on.
 * manifests/crd-checkpoints.yaml is checked against these names by test/manifests.
 */
import type { KubernetesObject, V1Condition, V1PodSpec } from '@kubernetes/client-node';
import type { PodCheckpointReference } from './pod-checkpoint.ts';

export const CHECKPOINT_GROUP = 'cryo.dev';
export const CHECKPOINT_VERSION = 'v1alpha1';
export const CHECKPOINT_PLURAL = 'checkpoints';
export const CHECKPOINT_KIND = 'Checkpoint';
export const CHECKPOINT_API_VERSION = `${CHECKPOINT_GROUP}/${CHECKPOINT_VERSION}`;

/**
 * The node agent's finalizer on a Checkpoint it claimed: deleting the Checkpoint removes what it
 * stored first (unless annotated cryo.dev/keep-data: "true"), then the agent lets it go.
 */
export const CHECKPOINT_DATA_FINALIZER = 'cryo.dev/stored-data';

/** Expired: it had Succeeded, and retention has since removed its data (the message says when and why). */
export const CHECKPOINT_PHASES = ['Pending', 'Running', 'Succeeded', 'Failed', 'Expired'] as const;
export type CheckpointPhase = (typeof CHECKPOINT_PHASES)[number];

/** Where the node agent stores a checkpoint; the cluster default applies when a Checkpoint names none. */
export interface CheckpointStorage {
  /** Push an OCI checkpoint image to this repository (no tag: the agent tags and pins by digest). */
  registry?: {
    repository: string;
    /** A kubernetes.io/dockerconfigjson Secret in the agent's namespace used to push. */
    pushSecretName?: string;
  };
  /** File the archive under this directory on the node (hostPath or a network mount). */
  directory?: {
    path: string;
    /** True when every node sees the same directory (NFS, CephFS...): restores may run anywhere. */
    shared?: boolean;
  };
}

export interface CheckpointSpec {
  /** The pod to checkpoint, in the Checkpoint's namespace. */
  podName: string;
  /** Only these containers; all of the pod's containers when absent. */
  containers?: string[];
  /**
   * The CheckpointStorageClass to store into (checkpoint-storage-class.ts); without it and
   * without `storage`, the default class open to the namespace, else the node agent's default.
   */
  storageClassName?: string;
  /** A store named directly, within what the node agent's flags allow; a storage class is the administrator's way. */
  storage?: CheckpointStorage;
  /** Free text passed to the app's pre-checkpoint hooks (e.g. "node maintenance"). */
  reason?: string;
  /**
   * `Snapshot` (the default): the pod carries on, and its app is told `resumed`. `Migration`: a
   * copy will carry on from this checkpoint and the pod will be stopped, so its app is told
   * `superseded` (stay quiet until stopped). A Migration's controller sets it.
   */
  purpose?: CheckpointPurpose;
}

export const CHECKPOINT_PURPOSES = ['Snapshot', 'Migration'] as const;
export type CheckpointPurpose = (typeof CHECKPOINT_PURPOSES)[number];

/** The pod as it ran, as a PodTemplateSpec: what re-creating the whole pod starts from (status.podTemplate). */
export interface CheckpointPodTemplate {
  metadata: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: V1PodSpec;
}

export type RestoreReferenceType = 'image' | 'archive';

/**
 * The container runtimes a checkpoint can be taken and restored by. A checkpoint restores only on
 * a node of the runtime that took it: containerd's restore requires its status.dump, CRI-O reads
 * its own layout. The node agent labels each node with the one its runtime restores
 * (node-labels.ts), and the webhook keeps restoring pods to nodes so labelled.
 */
export const CONTAINER_RUNTIMES = ['containerd', 'cri-o'] as const;
export type ContainerRuntime = (typeof CONTAINER_RUNTIMES)[number];

export interface CheckpointedContainer {
  name: string;
  /** A digest-pinned image reference (`repo@sha256:...`) or an archive path on the node. */
  restoreReference: string;
  referenceType: RestoreReferenceType;
  /** Bytes stored for this container. */
  sizeBytes?: number;
  /** The image the container ran from (config.dump `rootfsImageName`); a restore needs it pullable. */
  baseImage?: string;
  /** Destinations of the non-system mounts recorded in the checkpoint; a restored pod must provide each. */
  mountDestinations?: string[];
  /** The runtime that took it, and so the only one that can restore it; absent in statuses written before it was recorded. */
  runtime?: ContainerRuntime;
  checkpointDurationSeconds?: number;
  storeDurationSeconds?: number;
}

export interface CheckpointStatus {
  phase?: CheckpointPhase;
  /**
   * The node the pod ran on and whose agent checkpointed it (for a pod that exists nowhere, the
   * node of the agent that said so): only that node's agent writes this status
   * (manifests/node-agent-checkpoint-policy.yaml).
   */
  nodeName?: string;
  startTime?: string;
  completionTime?: string;
  message?: string;
  /** The phase's stable code: a CheckpointFailureReason when Failed, else CHECKPOINT_PHASE_REASONS' (checkpoint-reasons.ts). */
  reason?: string;
  /** When Failed: whether a new Checkpoint of the same pod may succeed with nothing changed. */
  retryable?: boolean;
  /**
   * What the agent used: the storage kind, for directories whether it is shared between nodes,
   * the CheckpointStorageClass if one was used, and that class's pull Secret (the webhook adds it
   * to restoring pods, as the Secret of that name in their own namespace).
   */
  storage?: { type: 'registry' | 'directory'; shared?: boolean; className?: string; pullSecretName?: string };
  /** Human-readable total of sizeBytes (printer column). */
  totalSize?: string;
  totalSizeBytes?: number;
  containers?: CheckpointedContainer[];
  /** The pod as a whole: its spec and every container's reference in one document (pod-checkpoint.ts). */
  podCheckpoint?: PodCheckpointReference;
  /**
   * The pod's labels, annotations and spec as it ran (the pod checkpoint document's), readable
   * with the Checkpoint: whole-pod restore and migration re-create the pod from it.
   */
  podTemplate?: CheckpointPodTemplate;
  /** `Ready` (True once stored; False with the phase's reason otherwise) and, when Failed, `Failed` with the reason. */
  conditions?: V1Condition[];
  observedGeneration?: number;
}

export interface Checkpoint extends KubernetesObject {
  apiVersion?: typeof CHECKPOINT_API_VERSION;
  kind?: typeof CHECKPOINT_KIND;
  spec: CheckpointSpec;
  status?: CheckpointStatus;
}

/**
 * Which Checkpoint: namespace, name and uid (a Checkpoint deleted and re-created under its name is
 * another one). A uid of '' means not known (data stored before uids were recorded): match by name.
 */
export interface CheckpointIdentity {
  namespace: string;
  name: string;
  uid: string;
}

export interface CheckpointList {
  apiVersion?: string;
  kind?: string;
  metadata?: { resourceVersion?: string; continue?: string };
  items: Checkpoint[];
}

/** The list/watch path of all Checkpoints, as the kube-apiserver serves it. */
export const CHECKPOINTS_PATH = `/apis/${CHECKPOINT_GROUP}/${CHECKPOINT_VERSION}/${CHECKPOINT_PLURAL}`;

export function checkpointPath(namespace: string, name?: string): string {
  const base = `/apis/${CHECKPOINT_GROUP}/${CHECKPOINT_VERSION}/namespaces/${encodeURIComponent(namespace)}/${CHECKPOINT_PLURAL}`;
  return name === undefined ? base : `${base}/${encodeURIComponent(name)}`;
}

