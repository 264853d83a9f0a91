/**
 * Whether a pod can be checkpointed now, and which of its containers: the Checkpoint fails at
 * once with the reason when it cannot, instead of the kubelet failing later with a vaguer one.
 */
import type { V1Pod } from '@kubernetes/client-node';
import type { CheckpointFailure } from '@cryo/common';

export type PodCheck = { containers: string[] } | CheckpointFailure;

export function checkPod(pod: V1Pod | undefined, namespace: string, podName: string, wanted: readonly string[] | undefined): PodCheck {
  if (pod === undefined) return { reason: 'PodNotFound', error: `pod ${namespace}/${podName} does not exist; name a running pod in spec.podName` };
  const phase = pod.status?.phase ?? 'Unknown';
  if (pod.metadata?.deletionTimestamp !== undefined) return { reason: 'PodNotRunning', error: `pod ${namespace}/${podName} is being deleted; checkpoint a running pod` };
  if (phase !== 'Running') return { reason: 'PodNotRunning', error: `pod ${namespace}/${podName} is ${phase}, not Running; only a running pod can be checkpointed` };
  const unfinishedInit = (pod.status?.initContainerStatuses ?? []).filter((s) => s.state?.terminated?.exitCode !== 0 && !isRestartableInit(pod, s.name));
  if (unfinishedInit.length > 0) {
    return { reason: 'PodNotRunning', error: `pod ${namespace}/${podName} has init containers that have not completed: ${unfinishedInit.map((s) => s.name).join(', ')}; wait until they have` };
  }
  const all = (pod.spec?.containers ?? []).map((c) => c.name);
  const names = wanted === undefined || wanted.length === 0 ? all : [...wanted];
  const unknown = names.filter((n) => !all.includes(n));
  if (unknown.length > 0) {
    return { reason: 'ContainerNotFound', error: `pod ${namespace}/${podName} has no container ${unknown.map((n) => `"${n}"`).join(', ')}; its containers are ${all.join(', ')}` };
  }
  const notRunning = names.filter((n) => pod.status?.containerStatuses?.find((s) => s.name === n)?.state?.running === undefined);
  if (notRunning.length > 0) return { reason: 'PodNotRunning', error: `container ${notRunning.map((n) => `"${n}"`).join(', ')} of pod ${namespace}/${podName} is not running` };
  return { containers: names };
}

// Sidecar containers (init containers with restartPolicy Always) keep running; they are not "done".
function isRestartableInit(pod: V1Pod, name: string): boolean {
  return pod.spec?.initContainers?.find((c) => c.name === name)?.restartPolicy === 'Always';
}
