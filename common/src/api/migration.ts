/**
 * The Migration API (`migrations.cryo.dev/v1alpha1`, namespaced): move one running pod to another
 * node (or back onto its own after the node restarts) with its state. The Cryo controller handles
 * it: checkpoint the pod (a Checkpoint with purpose Migration), stop the source through the
 * Eviction API, bring the pod back from the checkpoint on the target, and report each step in
 * status and Events. It survives the client that created it (kubectl cryo migrate / drain).
 * manifests/crd-migrations.yaml mirrors these types (test/manifests checks both directions).
 */
import type { KubernetesObject, V1Condition } from '@kubernetes/client-node';
import { CHECKPOINT_GROUP, CHECKPOINT_VERSION } from './checkpoint.ts';

export const MIGRATION_PLURAL = 'migrations';
export const MIGRATION_KIND = 'Migration';

/**
 * Pending: accepted, nothing done yet. Checkpointing: its Checkpoint is being taken.
 * StoppingSource: the source pod is being evicted. WaitingForNode (restartInPlace only): the
 * source node is cordoned or not Ready; the restore waits for it. Restoring: the pod that carries
 * on (re-created, or the owner's replacement) is being started from the checkpoint.
 * Succeeded: it runs Ready on the target. Failed: the message says at which step and why.
 */
export const MIGRATION_PHASES = ['Pending', 'Checkpointing', 'StoppingSource', 'WaitingForNode', 'Restoring', 'Succeeded', 'Failed'] as const;
export type MigrationPhase = (typeof MIGRATION_PHASES)[number];

export interface MigrationSpec {
  /** The pod to move, in the Migration's namespace. */
  podName: string;
  /** Where it goes; absent: any node the scheduler picks other than the source's. */
  targetNodeName?: string;
  /**
   * Node maintenance with a reboot: checkpoint, stop the source, wait until the source node is
   * Ready and schedulable again (kubectl cryo uncordon), and restore there. targetNodeName must be
   * absent.
   */
  restartInPlace?: boolean;
  /** The CheckpointStorageClass its Checkpoint uses; absent: the namespace's default. */
  storageClassName?: string;
  /** Free text passed on to the Checkpoint (and so to the app's hooks). */
  reason?: string;
}

export interface MigrationStatus {
  phase?: MigrationPhase;
  message?: string;
  /** The node the pod ran on when the Migration started. */
  sourceNodeName?: string;
  /**
   * The uid of the pod the Migration started with: only that pod is evicted (a precondition of
   * the eviction), and a later pod of the same name (a StatefulSet's, or the re-created one) is
   * told apart from it.
   */
  sourcePodUID?: string;
  /**
   * The source pod's controller (ReplicaSet or StatefulSet), when it has one: the webhook restores
   * the replacement that owner creates (same owner uid and container names; for a StatefulSet,
   * the same pod name) instead of the controller re-creating the pod.
   */
  sourceOwner?: { kind: string; name: string; uid: string };
  /** The Checkpoint it took (same namespace). */
  checkpointName?: string;
  /** The pod that carries on: the re-created bare pod, or the owner's replacement. */
  targetPodName?: string;
  /** Where that pod runs. */
  targetNodeName?: string;
  startTime?: string;
  completionTime?: string;
  /**
   * From the source stopping (its eviction) to the target Ready, seconds. An app with hooks stops
   * serving earlier, at its pre-checkpoint hooks (docs/migration.md).
   */
  downtimeSeconds?: number;
  conditions?: V1Condition[];
  observedGeneration?: number;
}

export interface Migration extends KubernetesObject {
  apiVersion?: `${typeof CHECKPOINT_GROUP}/${typeof CHECKPOINT_VERSION}`;
  kind?: typeof MIGRATION_KIND;
  spec: MigrationSpec;
  status?: MigrationStatus;
}

export interface MigrationList {
  apiVersion?: string;
  kind?: string;
  metadata?: { resourceVersion?: string; continue?: string };
  items: Migration[];
}

/** The list/watch path of all Migrations. */
export const MIGRATIONS_PATH = `/apis/${CHECKPOINT_GROUP}/${CHECKPOINT_VERSION}/${MIGRATION_PLURAL}`;

/** The path of a namespace's Migrations, or of one of them. */
export function migrationPath(namespace: string, name?: string): string {
  const base = `/apis/${CHECKPOINT_GROUP}/${CHECKPOINT_VERSION}/namespaces/${encodeURIComponent(namespace)}/${MIGRATION_PLURAL}`;
  return name === undefined ? base : `${base}/${encodeURIComponent(name)}`;
}

/** Phases after which a Migration does nothing more. */
export function isMigrationFinished(phase: MigrationPhase | undefined): boolean {
  return phase === 'Succeeded' || phase === 'Failed';
}
