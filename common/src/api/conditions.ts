/** Status conditions as Kubernetes objects carry them (metav1.Condition), for `kubectl wait --for=condition=…`. */
import type { V1Condition } from '@kubernetes/client-node';

/**
 * The list with `next` in place of its type's condition. Its lastTransitionTime is `now` when the
 * status or the reason changed, else the old one: so a condition's time says when its current
 * state (and reason) began, which is what a user waiting on it wants to read.
 */
export function setCondition(conditions: V1Condition[] | undefined, next: Omit<V1Condition, 'lastTransitionTime'>, now: Date): V1Condition[] {
  const list = [...(conditions ?? [])];
  const index = list.findIndex((c) => c.type === next.type);
  const old = index < 0 ? undefined : list[index];
  const changed = old === undefined || old.status !== next.status || old.reason !== next.reason;
  const condition: V1Condition = { ...next, lastTransitionTime: changed ? now : old.lastTransitionTime };
  if (index < 0) list.push(condition);
  else list[index] = condition;
  return list;
}

/** The list without its condition of `type`. */
export function removeCondition(conditions: V1Condition[] | undefined, type: string): V1Condition[] {
  return (conditions ?? []).filter((c) => c.type !== type);
}
