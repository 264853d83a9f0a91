/**
 * CRI-O refuses to restore a container unless every non-system mount recorded in the checkpoint
 * exists at the same destination ("expects following bind mounts defined"), and the pod would
 * crash-loop. Refuse such a pod at admission instead, naming what to add.
 */
import type { V1Container } from '@kubernetes/client-node';
import { AdmissionDenial } from './admission-denial.ts';

/** Mounts the kubelet and runtime add to every container themselves. */
const RUNTIME_PROVIDED = new Set(['/etc/hosts', '/etc/hostname', '/etc/resolv.conf', '/dev/shm', '/run/.containerenv']);

export function missingMountDestinations(container: V1Container, recorded: readonly string[] | undefined): string[] {
  const provided = new Set((container.volumeMounts ?? []).map((m) => normalize(m.mountPath)));
  provided.add(normalize(container.terminationMessagePath ?? '/dev/termination-log'));
  return (recorded ?? []).map(normalize).filter((dest) => !provided.has(dest) && !RUNTIME_PROVIDED.has(dest));
}

export function assertMountsPresent(container: V1Container, recorded: readonly string[] | undefined, checkpointName: string): void {
  const missing = missingMountDestinations(container, recorded);
  if (missing.length > 0) {
    throw new AdmissionDenial(
      422,
      'missing-mounts',
      `container "${container.name}" lacks mounts that Checkpoint "${checkpointName}" recorded: ${missing.join(', ')}; ` +
        'add volumeMounts at these paths (the restore fails without every mount the checkpointed container had)',
    );
  }
}

function normalize(path: string): string {
  return path.length > 1 ? path.replace(/\/+$/, '') : path;
}
