/**
 * A metav1.LabelSelector as the string a list request's labelSelector takes, so the apiserver
 * does the matching. Checked as the apiserver checks a LabelSelector (LabelSelectorAsSelector):
 * In and NotIn need values, Exists and DoesNotExist none.
 */
import type { V1LabelSelector } from '@kubernetes/client-node';

export class LabelSelectorError extends Error {}

/** `k=v,k2 in (a,b),!k3`; '' (every object) for an empty selector. */
export function labelSelectorString(selector: V1LabelSelector): string {
  const terms = Object.entries(selector.matchLabels ?? {}).map(([key, value]) => `${key}=${value}`);
  for (const [i, { key, operator, values = [] }] of (selector.matchExpressions ?? []).entries()) {
    const where = `selector.matchExpressions[${i}] (key ${key})`;
    switch (operator) {
      case 'In':
      case 'NotIn':
        if (values.length === 0) throw new LabelSelectorError(`${where}: operator ${operator} needs at least one value`);
        terms.push(`${key} ${operator.toLowerCase()} (${[...values].sort().join(',')})`);
        break;
      case 'Exists':
      case 'DoesNotExist':
        if (values.length > 0) throw new LabelSelectorError(`${where}: operator ${operator} takes no values; remove them`);
        terms.push(operator === 'Exists' ? key : `!${key}`);
        break;
      default:
        throw new LabelSelectorError(`${where}: operator "${operator}" is not one of In, NotIn, Exists, DoesNotExist`);
    }
  }
  return terms.join(',');
}
