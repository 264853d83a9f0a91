/**
 * The first step of a Migration: decide whether it can work before anything is done, and refuse
 * with the reason when it cannot, so that nothing is checkpointed or stopped for a move that
 * would fail. What is checked: the pod runs on a node; it is a bare pod or a ReplicaSet's or
 * StatefulSet's (other controllers would re-create it fresh); no other Migration moves it; the
 * target exists, is Ready, schedulable and allowed by the pod's own placement rules (any other
 * such node when none is named); and its volumes can follow it there (volume-checks.ts).
 */
import type { V1Node, V1OwnerReference, V1Pod } from '@kubernetes/client-node';
import { isMigrationFinished, type Migration } from '@cryo/common';
import { nodeUnavailable, placementOfCopy, podExcludedFrom } from './node-fit.ts';
import { checkVolumes, type VolumeReads } from './volume-checks.ts';

export interface ClusterReads extends VolumeReads {
  pod(namespace: string, name: string): Promise<V1Pod | undefined>;
  node(name: string): Promise<V1Node | undefined>;
  nodes(): Promise<V1Node[]>;
}

/** Controllers whose replacement pod the webhook restores; a bare pod the controller re-creates itself. */
export const RESTORABLE_OWNER_KINDS = ['ReplicaSet', 'StatefulSet'] as const;

export interface MigrationPlan {
  pod: V1Pod;
  sourceNodeName: string;
  /** Named, or the source's for restartInPlace; undefined: the scheduler picks another node. */
  targetNodeName?: string;
  owner?: { kind: string; name: string; uid: string };
  /** What the app will find different (emptyDir contents not carried...), for Warning Events. */
  warnings: string[];
}

export type Validation = { ok: true; plan: MigrationPlan } | { ok: false; message: string };

export function controllerOf(pod: V1Pod): V1OwnerReference | undefined {
  return pod.metadata?.ownerReferences?.find((ref) => ref.controller === true);
}

/** The pod's controller when it is one whose replacement Cryo restores; undefined for a bare pod. */
export function restorableOwnerOf(pod: V1Pod): { kind: string; name: string; uid: string } | undefined {
  const ref = controllerOf(pod);
  if (ref === undefined || ref.apiVersion !== 'apps/v1' || !(RESTORABLE_OWNER_KINDS as readonly string[]).includes(ref.kind)) return undefined;
  return { kind: ref.kind, name: ref.name, uid: ref.uid };
}

/** Creation order, the same in every replica: oldest first, then by name. */
export function compareMigrations(a: Migration, b: Migration): number {
  const at = String(a.metadata?.creationTimestamp ?? '');
  const bt = String(b.metadata?.creationTimestamp ?? '');
  return at === bt ? (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? '') : at < bt ? -1 : 1;
}

export async function validateMigration(migration: Migration, reads: ClusterReads, others: readonly Migration[]): Promise<Validation> {
  const { spec } = migration;
  const namespace = migration.metadata!.namespace!;
  const refuse = (message: string): Validation => ({ ok: false, message });
  if (spec.restartInPlace === true && spec.targetNodeName) {
    return refuse('restartInPlace and targetNodeName exclude each other: restartInPlace brings the pod back onto its own node once that is Ready again; leave targetNodeName out, or restartInPlace');
  }
  const pod = await reads.pod(namespace, spec.podName);
  if (pod === undefined) return refuse(`pod ${namespace}/${spec.podName} does not exist; name a running pod in spec.podName`);
  if (pod.metadata?.deletionTimestamp !== undefined) return refuse(`pod ${namespace}/${spec.podName} is being deleted`);
  const sourceNodeName = pod.spec?.nodeName;
  if (pod.status?.phase !== 'Running' || !sourceNodeName) {
    return refuse(`pod ${namespace}/${spec.podName} is ${pod.status?.phase ?? 'Pending'}, not Running on a node: only a running pod can be migrated`);
  }
  const controller = controllerOf(pod);
  const owner = restorableOwnerOf(pod);
  if (controller !== undefined && owner === undefined) {
    return refuse(
      `pod ${namespace}/${spec.podName} is controlled by ${controller.kind} ${controller.name}, which would re-create it fresh, not from the checkpoint: ` +
        `Cryo migrates bare pods and the pods of ReplicaSets (Deployments) and StatefulSets`,
    );
  }
  const rival = others.find((other) => other.metadata?.uid !== migration.metadata?.uid && other.spec.podName === spec.podName
    && !isMigrationFinished(other.status?.phase) && ((other.status?.phase ?? 'Pending') !== 'Pending' || compareMigrations(other, migration) < 0));
  if (rival !== undefined) return refuse(`Migration ${rival.metadata?.name} is already moving pod ${spec.podName}; wait for it to finish`);

  let targetNodeName: string | undefined;
  let targetNode: V1Node | undefined;
  if (spec.restartInPlace === true) {
    // The source node is expected to go away for a while (drain, reboot): it is checked when the restore waits for it.
    targetNodeName = sourceNodeName;
  } else if (spec.targetNodeName) {
    targetNodeName = spec.targetNodeName;
    targetNode = await reads.node(targetNodeName);
    if (targetNode === undefined) return refuse(`target node ${targetNodeName} does not exist`);
    const problem = nodeUnavailable(targetNode) ?? podExcludedFrom(placementOfCopy(pod), targetNode);
    if (problem !== undefined) return refuse(`the pod cannot run on the target: ${problem}`);
  } else {
    const candidates = (await reads.nodes()).filter((node) => node.metadata?.name !== sourceNodeName);
    const problems = candidates.map((node) => nodeUnavailable(node) ?? podExcludedFrom(placementOfCopy(pod), node));
    if (!problems.includes(undefined)) {
      const why = candidates.length === 0 ? 'the cluster has no other node' : problems.slice(0, 3).join('; ');
      return refuse(`no node other than ${sourceNodeName} can take pod ${spec.podName}: ${why}`);
    }
  }

  const toOtherNode = targetNodeName !== sourceNodeName;
  const volumes = await checkVolumes(pod, { toOtherNode, ...(targetNode === undefined ? {} : { targetNode }) }, reads);
  if (volumes.refusals.length > 0) {
    return refuse(`pod ${spec.podName} cannot move${targetNodeName === undefined ? ' to another node' : ` to node ${targetNodeName}`}: ${volumes.refusals.join('; ')}`);
  }
  return {
    ok: true,
    plan: { pod, sourceNodeName, ...(targetNodeName === undefined ? {} : { targetNodeName }), ...(owner === undefined ? {} : { owner }), warnings: volumes.warnings },
  };
}
