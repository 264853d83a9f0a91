/**
 * The pod a ReplicaSet or StatefulSet creates to replace one a Migration evicted: it must start
 * from the Migration's checkpoint, on the Migration's target, and nothing in its owner knows
 * that. So the webhook recognizes it (its owner is the Migration's status.sourceOwner, same
 * namespace, the Migration between eviction and restore; for a StatefulSet the same pod name;
 * the same container names as the checkpoint) and adds what a user would write by hand:
 * `cryo.dev/restore-from: <status.checkpointName>` and a required node affinity to the target
 * (off the source when the scheduler picks). The restore mutation then runs as for any such pod.
 *
 * Every pod of a ReplicaSet or StatefulSet is sent (webhook `migrate.cryo.dev`, failurePolicy
 * Ignore, so that an unavailable webhook blocks no workload: the replacement then starts fresh
 * and the controller reports the Migration Failed). Anything that does not match is left alone,
 * and a replacement that matches but cannot be restored is admitted as it is (admission-handler.ts).
 *
 * Of several Migrations of one ReplicaSet's pods, the controller evicts one at a time and records
 * each replacement it finds (status.targetPodName); the next pod is taken for the one evicted
 * and not yet matched, else for the oldest about to be evicted.
 */
import type { V1NodeSelectorRequirement, V1Pod } from '@kubernetes/client-node';
import { annotations, type Checkpoint, type Migration, type MigrationPhase } from '@cryo/common';
import type { CheckpointLookup } from './pod-mutator.ts';
import { nodeNameRequirement, requireNodeAffinity } from './restore-node-affinity.ts';

/** Where the webhook finds Migrations (a watch-fed cache). */
export interface MigrationLookup {
  list(namespace: string): readonly Migration[];
}

/** From the eviction until the pod that carries on is found: the owner's next pod is the replacement. */
export const REPLACEMENT_PHASES: readonly MigrationPhase[] = ['StoppingSource', 'WaitingForNode', 'Restoring'];

/** Owners whose replacement pods are restored (apps/v1). */
const OWNER_KINDS = ['ReplicaSet', 'StatefulSet'];

export interface MigrationReplacement {
  /** The Migration's name. */
  migration: string;
  checkpointName: string;
  /** The node it must run on (In), or the node it must leave (NotIn); absent when the Migration names none. */
  nodeRequirement?: V1NodeSelectorRequirement;
  /** The owner, `ReplicaSet/web-7c9f8d6b5`. */
  owner: string;
  /** The pod it replaces. */
  replaces: string;
}

/**
 * The Migration whose replacement this pod is, or undefined. `podName` is the name the pod will
 * have (its own, or the request's); absent for a generateName that the apiserver has not filled.
 */
export async function findMigrationReplacement(
  pod: V1Pod,
  namespace: string,
  podName: string | undefined,
  migrations: MigrationLookup,
  checkpoints: CheckpointLookup,
): Promise<MigrationReplacement | undefined> {
  const owner = controllerReference(pod);
  if (owner === undefined || owner.apiVersion !== 'apps/v1' || !OWNER_KINDS.includes(owner.kind)) return undefined;
  const statefulSet = owner.kind === 'StatefulSet';
  const restoringFrom = pod.metadata?.annotations?.[annotations.RESTORE_FROM];
  const candidates = migrations.list(namespace).filter((m) => {
    const status = m.status;
    if (status?.sourceOwner?.uid !== owner.uid || status.checkpointName === undefined) return false;
    if (status.phase === undefined || !REPLACEMENT_PHASES.includes(status.phase)) return false;
    if (statefulSet) return podName !== undefined && m.spec.podName === podName;
    // Found already: this pod is another one of the owner's (unless it is that very pod again, a reinvocation).
    return !status.targetPodName || (podName !== undefined && status.targetPodName === podName);
  });
  if (candidates.length === 0) return undefined;
  const migration = candidates.sort((a, b) => rank(a, restoringFrom) - rank(b, restoringFrom) || byAge(a, b))[0];
  const status = migration.status!;
  const checkpoint = await readCheckpoint(checkpoints, namespace, status.checkpointName!);
  if (checkpoint === undefined || !sameContainerNames(pod, checkpoint)) return undefined;
  const target = migration.spec.restartInPlace === true ? status.sourceNodeName : migration.spec.targetNodeName;
  let nodeRequirement: V1NodeSelectorRequirement | undefined;
  if (target) nodeRequirement = nodeNameRequirement(target);
  else if (status.sourceNodeName) nodeRequirement = { key: 'metadata.name', operator: 'NotIn', values: [status.sourceNodeName] };
  return {
    migration: migration.metadata!.name!,
    checkpointName: status.checkpointName!,
    ...(nodeRequirement === undefined ? {} : { nodeRequirement }),
    owner: `${owner.kind}/${owner.name}`,
    replaces: migration.spec.podName,
  };
}

/**
 * Marks the pod (a mutable copy) to restore from the Migration's checkpoint on its target; returns
 * the admission warning, none when the pod was so marked already (a reinvocation).
 */
export function applyMigrationReplacement(pod: V1Pod, replacement: MigrationReplacement): string[] {
  const metadata = (pod.metadata ??= {});
  const podAnnotations = (metadata.annotations ??= {});
  const earlier = podAnnotations[annotations.RESTORE_FROM];
  podAnnotations[annotations.RESTORE_FROM] = replacement.checkpointName;
  const placed = replacement.nodeRequirement !== undefined && requireNodeAffinity(pod, { matchFields: [replacement.nodeRequirement] });
  if (earlier === replacement.checkpointName && !placed) return [];
  const where = replacement.nodeRequirement === undefined
    ? ''
    : replacement.nodeRequirement.operator === 'In'
      ? ` on node ${replacement.nodeRequirement.values![0]}`
      : ` on a node other than ${replacement.nodeRequirement.values![0]}`;
  const instead = earlier === undefined || earlier === replacement.checkpointName ? '' : ` (instead of ${annotations.RESTORE_FROM}: ${earlier} of its template)`;
  return [
    `this pod of ${replacement.owner} replaces pod ${replacement.replaces}, which Migration ${replacement.migration} moves: ` +
      `it is restored from Checkpoint "${replacement.checkpointName}"${where}${instead}`,
  ];
}

/**
 * The pod's controller reference. pod-shape.ts checks only what the restore reads, and a review
 * may come from anyone: whatever is not an array of objects with string fields counts as none.
 */
function controllerReference(pod: V1Pod): { apiVersion: string; kind: string; name: string; uid: string } | undefined {
  const refs: unknown = pod.metadata?.ownerReferences;
  if (!Array.isArray(refs)) return undefined;
  for (const ref of refs as unknown[]) {
    if (typeof ref !== 'object' || ref === null || (ref as { controller?: unknown }).controller !== true) continue;
    const { apiVersion, kind, name, uid } = ref as Record<string, unknown>;
    if (typeof apiVersion !== 'string' || typeof kind !== 'string' || typeof name !== 'string' || typeof uid !== 'string') return undefined;
    return { apiVersion, kind, name, uid };
  }
  return undefined;
}

/** Already restoring from its checkpoint (a reinvocation) first, then those already evicted, then about to be. */
function rank(migration: Migration, restoringFrom: string | undefined): number {
  if (restoringFrom !== undefined && migration.status?.checkpointName === restoringFrom) return 0;
  return migration.status?.phase === 'StoppingSource' ? 2 : 1;
}

/** Oldest first, then by name: the order the controller evicts a ReplicaSet's pods in. */
function byAge(a: Migration, b: Migration): number {
  const at = String(a.metadata?.creationTimestamp ?? '');
  const bt = String(b.metadata?.creationTimestamp ?? '');
  return at === bt ? (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? '') : at < bt ? -1 : 1;
}

/** The cache, then the API once (a Checkpoint that succeeded a moment ago); a read the limiter refuses counts as none. */
async function readCheckpoint(checkpoints: CheckpointLookup, namespace: string, name: string): Promise<Checkpoint | undefined> {
  const cached = await checkpoints.get(namespace, name);
  if (cached?.status?.phase === 'Succeeded') return cached;
  try {
    return await checkpoints.get(namespace, name, { fresh: true });
  } catch {
    return undefined;
  }
}

/** The owner's template may have changed since the checkpoint (a rollout): then it is not the same app. */
function sameContainerNames(pod: V1Pod, checkpoint: Checkpoint): boolean {
  const podNames = (pod.spec?.containers ?? []).map((c) => c.name).sort();
  const checkpointed = (checkpoint.status?.containers ?? []).map((c) => c.name).sort();
  return checkpointed.length > 0 && podNames.length === checkpointed.length && podNames.every((name, i) => name === checkpointed[i]);
}
