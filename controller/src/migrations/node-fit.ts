/**
 * Whether a node can take the pod that carries on: it is Ready and schedulable, and the pod's own
 * placement rules (nodeSelector, required node affinity, tolerations of NoSchedule and NoExecute
 * taints) allow it, since the copy keeps them. Also what a PersistentVolume's node affinity
 * allows. The scheduler decides in the end; this refuses up front what could never schedule, so
 * that the source is not stopped for nothing.
 */
import type { V1Node, V1NodeSelector, V1NodeSelectorRequirement, V1NodeSelectorTerm, V1Pod, V1Taint, V1Toleration } from '@kubernetes/client-node';
import { nodeLabels } from '@cryo/common';

export const HOSTNAME_LABEL = 'kubernetes.io/hostname';

/** Why the node cannot take pods now, or undefined when it can. */
export function nodeUnavailable(node: V1Node): string | undefined {
  const name = node.metadata?.name ?? '';
  if (node.metadata?.deletionTimestamp !== undefined) return `node ${name} is being deleted`;
  const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
  if (ready?.status !== 'True') {
    const why = ready === undefined ? 'reports no Ready condition' : `is not Ready (${ready.reason ?? ready.status}${ready.message ? `: ${ready.message}` : ''})`;
    return `node ${name} ${why}`;
  }
  if (node.spec?.unschedulable === true) return `node ${name} is cordoned (unschedulable)`;
  return undefined;
}

/** Why the pod's own placement rules keep it off the node, or undefined when they allow it. */
export function podExcludedFrom(pod: V1Pod, node: V1Node): string | undefined {
  const name = node.metadata?.name ?? '';
  const labels = node.metadata?.labels ?? {};
  const spec = pod.spec;
  const selector = Object.entries(spec?.nodeSelector ?? {}).filter(([key, value]) => labels[key] !== value);
  if (selector.length > 0) return `node ${name} lacks the pod's nodeSelector ${selector.map(([k, v]) => `${k}=${v}`).join(', ')}`;
  const required = spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
  if (required !== undefined && !nodeSelectorMatches(required, node)) return `node ${name} does not match the pod's required node affinity`;
  const taint = (node.spec?.taints ?? []).find((t) => (t.effect === 'NoSchedule' || t.effect === 'NoExecute') && !tolerated(t, spec?.tolerations ?? []));
  if (taint !== undefined) return `node ${name} has the taint ${taint.key}${taint.value ? `=${taint.value}` : ''}:${taint.effect}, which the pod does not tolerate`;
  return undefined;
}

/**
 * The pod as the one that carries on will be placed: without the node requirements Cryo wrote into
 * it when it was itself restored or migrated (matchFields on metadata.name: the pin to its node or
 * the exclusion of the one it left; matchExpressions on the restore-runtime label). The copy gets
 * those afresh for its own checkpoint and target (pod-from-checkpoint.ts, the webhook), so a pod
 * moved once can move again. The scheduler still checks whatever the copy ends up with.
 */
export function placementOfCopy(pod: V1Pod): V1Pod {
  const required = pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
  if (required === undefined) return pod;
  const terms = required.nodeSelectorTerms.map((term) => ({
    ...term,
    matchFields: (term.matchFields ?? []).filter((r) => r.key !== 'metadata.name'),
    matchExpressions: (term.matchExpressions ?? []).filter((r) => r.key !== nodeLabels.RESTORE_RUNTIME),
  }));
  // A term that held only Cryo's requirements would now match nothing: it goes, and so does the
  // whole requirement when no term is left (a term the user left empty stays: it still means no node).
  const kept = terms.filter((term, i) => term.matchFields.length + term.matchExpressions.length > 0 || isEmpty(required.nodeSelectorTerms[i]));
  const nodeAffinity = { ...pod.spec!.affinity!.nodeAffinity, requiredDuringSchedulingIgnoredDuringExecution: kept.length > 0 ? { nodeSelectorTerms: kept } : undefined };
  return { ...pod, spec: { ...pod.spec!, affinity: { ...pod.spec!.affinity, nodeAffinity } } };
}

const isEmpty = (term: V1NodeSelectorTerm): boolean => (term.matchFields?.length ?? 0) + (term.matchExpressions?.length ?? 0) === 0;

/** A NodeSelector (terms ORed, requirements within a term ANDed), as the scheduler reads it. */
export function nodeSelectorMatches(selector: V1NodeSelector, node: V1Node): boolean {
  return selector.nodeSelectorTerms.some((term) => termMatches(term, node));
}

/** True when the selector can only ever match one node by name (a local volume's, say). */
export function pinsToNamedNodes(selector: V1NodeSelector): boolean {
  return selector.nodeSelectorTerms.length > 0 && selector.nodeSelectorTerms.every((term) =>
    (term.matchExpressions ?? []).some((r) => r.key === HOSTNAME_LABEL && r.operator === 'In')
    || (term.matchFields ?? []).some((r) => r.key === 'metadata.name' && r.operator === 'In'));
}

function termMatches(term: V1NodeSelectorTerm, node: V1Node): boolean {
  const expressions = term.matchExpressions ?? [];
  const fields = term.matchFields ?? [];
  // An empty term matches nothing.
  if (expressions.length === 0 && fields.length === 0) return false;
  const labels = node.metadata?.labels ?? {};
  return expressions.every((r) => requirementHolds(r, labels[r.key]))
    && fields.every((r) => r.key === 'metadata.name' && requirementHolds(r, node.metadata?.name));
}

function requirementHolds(requirement: V1NodeSelectorRequirement, value: string | undefined): boolean {
  const values = requirement.values ?? [];
  switch (requirement.operator) {
    case 'In':
      return value !== undefined && values.includes(value);
    case 'NotIn':
      return value === undefined || !values.includes(value);
    case 'Exists':
      return value !== undefined;
    case 'DoesNotExist':
      return value === undefined;
    case 'Gt':
    case 'Lt': {
      const have = Number(value);
      const bound = Number(values[0]);
      if (value === undefined || !Number.isInteger(have) || !Number.isInteger(bound)) return false;
      return requirement.operator === 'Gt' ? have > bound : have < bound;
    }
    default:
      return false;
  }
}

function tolerated(taint: V1Taint, tolerations: V1Toleration[]): boolean {
  return tolerations.some((t) => {
    if (t.effect !== undefined && t.effect !== '' && t.effect !== taint.effect) return false;
    if (t.key === undefined || t.key === '') return t.operator === 'Exists';
    if (t.key !== taint.key) return false;
    return t.operator === 'Exists' || (t.value ?? '') === (taint.value ?? '');
  });
}
