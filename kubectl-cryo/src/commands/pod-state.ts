/** A pod's progress towards Ready, in one line, and the states it does not recover from by waiting. */
import type { V1Pod } from '@kubernetes/client-node';

/** Waiting reasons that waiting does not cure: a restore that the runtime refused, a bad image name, a crash loop. */
const FATAL_WAITING = new Set(['CreateContainerError', 'CreateContainerConfigError', 'InvalidImageName', 'CrashLoopBackOff', 'RunContainerError']);

export function isPodReady(pod: V1Pod): boolean {
  return pod.status?.phase === 'Running' && (pod.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
}

/** `Pending: Unschedulable: 0/3 nodes are available...`, `Running on node-b, Ready`. */
export function podState(pod: V1Pod): string {
  const status = pod.status ?? {};
  const node = pod.spec?.nodeName === undefined ? '' : ` on ${pod.spec.nodeName}`;
  if (isPodReady(pod)) return `Running${node}, Ready`;
  const unschedulable = (status.conditions ?? []).find((c) => c.type === 'PodScheduled' && c.status === 'False');
  if (unschedulable !== undefined) return `${status.phase ?? 'Pending'}: ${unschedulable.reason ?? 'not scheduled'}: ${unschedulable.message ?? ''}`.trimEnd();
  const waiting = [...(status.initContainerStatuses ?? []), ...(status.containerStatuses ?? [])]
    .filter((c) => c.state?.waiting !== undefined)
    .map((c) => `${c.name} ${c.state!.waiting!.reason ?? 'waiting'}${c.state!.waiting!.message ? ` (${c.state!.waiting!.message})` : ''}`);
  return `${status.phase ?? 'Pending'}${node}${waiting.length > 0 ? `: ${waiting.join('; ')}` : ''}`;
}

/** Why the pod will not become Ready by itself, or undefined while it may. */
export function podProblem(pod: V1Pod): string | undefined {
  const status = pod.status ?? {};
  if (status.phase === 'Failed') return `it Failed${status.reason ? `: ${status.reason}` : ''}${status.message ? `: ${status.message}` : ''}`;
  if (status.phase === 'Succeeded') return 'it ran to completion (Succeeded) and will not become Ready';
  for (const c of [...(status.initContainerStatuses ?? []), ...(status.containerStatuses ?? [])]) {
    const waiting = c.state?.waiting;
    if (waiting?.reason !== undefined && FATAL_WAITING.has(waiting.reason)) return `container ${c.name} ${waiting.reason}${waiting.message ? `: ${waiting.message}` : ''}`;
  }
  return undefined;
}
