/**
 * A restoring pod must run on a node whose runtime restores its checkpoint: the kind of runtime
 * that took it (containerd needs its status.dump, CRI-O its own layout), with restore switched on
 * there. The node agent labels such nodes `cryo.dev/restore-runtime=<runtime>`; this adds the
 * matching required node affinity, ANDed into every term the pod already has (terms are ORed, so
 * only a requirement in each of them holds for the pod), or as the one term when it has none. A
 * Checkpoint whose status does not record the runtime (written before it was) requires the label
 * to exist: some runtime there restores.
 */
import type { V1NodeSelectorRequirement, V1NodeSelectorTerm, V1Pod } from '@kubernetes/client-node';
import { nodeLabels, type CheckpointedContainer } from '@cryo/common';

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

/**
 * Puts the requirement into the pod's required node affinity; true when the pod changed. Any
 * other requirement on the label is replaced: the label is Cryo's, and a pod spec copied from an
 * earlier restored pod carries that restore's requirement.
 */
export function requireRestoreNode(pod: V1Pod, requirement: V1NodeSelectorRequirement): boolean {
  const spec = (pod.spec ??= { containers: [] });
  const required = spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
  const terms = required?.nodeSelectorTerms ?? [];
  // An empty term matches no node; with the requirement in it, it would match some.
  const usable = terms.filter((term) => !isEmptyTerm(term));
  if (usable.length === 0) {
    if (terms.length > 0) return false;
    const affinity = (spec.affinity ??= {});
    const nodeAffinity = (affinity.nodeAffinity ??= {});
    nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution = { nodeSelectorTerms: [{ matchExpressions: [{ ...requirement }] }] };
    return true;
  }
  if (usable.every((term) => holdsExactly(term, requirement))) return false;
  required!.nodeSelectorTerms = terms.map((term) => {
    if (isEmptyTerm(term) || holdsExactly(term, requirement)) return term;
    const others = (term.matchExpressions ?? []).filter((expression) => expression.key !== requirement.key);
    return { ...term, matchExpressions: [...others, { ...requirement }] };
  });
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

function isEmptyTerm(term: V1NodeSelectorTerm): boolean {
  return (term.matchExpressions?.length ?? 0) === 0 && (term.matchFields?.length ?? 0) === 0;
}

function holdsExactly(term: V1NodeSelectorTerm, requirement: V1NodeSelectorRequirement): boolean {
  const onKey = (term.matchExpressions ?? []).filter((expression) => expression.key === requirement.key);
  return onKey.length === 1 && sameRequirement(onKey[0], requirement);
}

function sameRequirement(a: V1NodeSelectorRequirement, b: V1NodeSelectorRequirement): boolean {
  const values = (r: V1NodeSelectorRequirement) => JSON.stringify([...(r.values ?? [])].sort());
  return a.operator === b.operator && values(a) === values(b);
}
