/**
 * A restoring pod must run on a node whose runtime restores its checkpoint: the kind of runtime
 * that took it (containerd needs its status.dump, CRI-O its own layout), with restore switched on
 * there. The node agent labels such nodes `cryo.dev/restore-runtime=<runtime>`; this adds the
 * matching required node affinity, ANDed into every term the pod already has (terms are ORed, so
 * only a requirement in each of them holds for the pod), or as the one term when it has none. A
 * Checkpoint whose status does not record the runtime (written before it was) requires the label
 * to exist: some runtime there restores.
 *
 * A checkpoint in a node's own (not shared) directory store is served as images only by that
 * node's agent, on its loopback: the pod is pinned to that node by name, the way the DaemonSet
 * controller pins its pods (matchFields on metadata.name), ANDed in the same way.
 */
import type { V1NodeSelectorRequirement, V1NodeSelectorTerm, V1Pod } from '@kubernetes/client-node';
import { nodeLabels, type CheckpointedContainer, type CheckpointStatus } from '@cryo/common';

/** Requirements on a node's labels (matchExpressions) and fields (matchFields), all of which must hold. */
export interface NodeRequirements {
  matchExpressions?: V1NodeSelectorRequirement[];
  matchFields?: V1NodeSelectorRequirement[];
}

const REQUIREMENT_LISTS = ['matchExpressions', 'matchFields'] as const;

/** What the restored containers need of a node. */
export function restoreNodeRequirement(restored: Iterable<CheckpointedContainer>): V1NodeSelectorRequirement {
  const runtimes = new Set<string>();
  for (const container of restored) {
    if (container.runtime === undefined) return { key: nodeLabels.RESTORE_RUNTIME, operator: 'Exists' };
    runtimes.add(container.runtime);
  }
  // One pod's containers run on one node, so they name one runtime; a status naming several
  // lets the scheduler pick any of them rather than none.
  return { key: nodeLabels.RESTORE_RUNTIME, operator: 'In', values: [...runtimes].sort() };
}

/** True when the checkpoint is in a directory store that only the node that took it sees. */
export function isNodeLocalDirectory(status: CheckpointStatus): boolean {
  return status.storage?.type === 'directory' && status.storage.shared !== true;
}

/** The one node that can serve the checkpoint's images, or undefined when any node can. */
export function checkpointHoldingNode(status: CheckpointStatus): string | undefined {
  return isNodeLocalDirectory(status) ? status.nodeName : undefined;
}

/** Selects the node named `nodeName` (a matchFields requirement). */
export function nodeNameRequirement(nodeName: string): V1NodeSelectorRequirement {
  return { key: 'metadata.name', operator: 'In', values: [nodeName] };
}

/**
 * Puts the requirements into the pod's required node affinity; true when the pod changed. Any
 * other requirement on the same key (in the same list) is replaced: the runtime label is Cryo's,
 * a node has one name, and a pod spec copied from an earlier restored pod carries that restore's
 * requirements.
 */
export function requireNodeAffinity(pod: V1Pod, wanted: NodeRequirements): boolean {
  const spec = (pod.spec ??= { containers: [] });
  const required = spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
  const terms = required?.nodeSelectorTerms ?? [];
  // An empty term matches no node; with the requirements in it, it would match some.
  const usable = terms.filter((term) => !isEmptyTerm(term));
  if (usable.length === 0) {
    if (terms.length > 0) return false;
    const affinity = (spec.affinity ??= {});
    const nodeAffinity = (affinity.nodeAffinity ??= {});
    nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution = { nodeSelectorTerms: [withRequirements({}, wanted)] };
    return true;
  }
  if (usable.every((term) => holdsAll(term, wanted))) return false;
  required!.nodeSelectorTerms = terms.map((term) => (isEmptyTerm(term) || holdsAll(term, wanted) ? term : withRequirements(term, wanted)));
  return true;
}

/** The admission warning saying where the pod may run, and what happens when no node may. */
export function restoreNodeWarning(checkpointName: string, requirement: V1NodeSelectorRequirement): string {
  const where =
    requirement.operator === 'In'
      ? `nodes labelled ${requirement.key}=${requirement.values!.join('|')}, whose runtime the node agent found able to restore it`
      : `nodes labelled ${requirement.key} (its status does not record the runtime that took it)`;
  return `Checkpoint "${checkpointName}" restores only on ${where}; while no node is so labelled, the pod stays Pending`;
}

/** The admission warning for a pod pinned to the node holding its checkpoint. */
export function holdingNodeWarning(checkpointName: string, nodeName: string): string {
  return (
    `Checkpoint "${checkpointName}" is in the directory store of node "${nodeName}", whose node agent alone serves its ` +
    `images, so the pod can run only on node "${nodeName}"; while it cannot be scheduled there, it stays Pending. ` +
    'A directory every node mounts (NFS, CephFS...) declared shared (spec.storage.directory.shared: true, or the node ' +
    "agent's --directory-shared) lets restores run on any node"
  );
}

function isEmptyTerm(term: V1NodeSelectorTerm): boolean {
  return REQUIREMENT_LISTS.every((list) => (term[list]?.length ?? 0) === 0);
}

function holdsAll(term: V1NodeSelectorTerm, wanted: NodeRequirements): boolean {
  return REQUIREMENT_LISTS.every((list) => (wanted[list] ?? []).every((requirement) => holdsExactly(term[list] ?? [], requirement)));
}

function withRequirements(term: V1NodeSelectorTerm, wanted: NodeRequirements): V1NodeSelectorTerm {
  const result = { ...term };
  for (const list of REQUIREMENT_LISTS) {
    const added = wanted[list] ?? [];
    if (added.length === 0) continue;
    const keys = new Set(added.map((requirement) => requirement.key));
    const others = (term[list] ?? []).filter((requirement) => !keys.has(requirement.key));
    result[list] = [...others, ...added.map((requirement) => ({ ...requirement }))];
  }
  return result;
}

function holdsExactly(present: V1NodeSelectorRequirement[], requirement: V1NodeSelectorRequirement): boolean {
  const onKey = present.filter((existing) => existing.key === requirement.key);
  return onKey.length === 1 && sameRequirement(onKey[0], requirement);
}

function sameRequirement(a: V1NodeSelectorRequirement, b: V1NodeSelectorRequirement): boolean {
  const values = (r: V1NodeSelectorRequirement) => JSON.stringify([...(r.values ?? [])].sort());
  return a.operator === b.operator && values(a) === values(b);
}
