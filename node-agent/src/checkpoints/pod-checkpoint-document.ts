/**
 * The PodCheckpoint document (@cryo/common) of one Checkpoint: the pod as it ran and where each of
 * its checkpointed containers went, built once every container is stored.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { CHECKPOINT_API_VERSION, POD_CHECKPOINT_KIND, type Checkpoint, type PodCheckpoint } from '@cryo/common';
import type { StoredCheckpoint } from '../storage/checkpoint-store.ts';

/** Large, and only a copy of the spec that follows it. */
const LEFT_OUT_ANNOTATIONS = new Set(['kubectl.kubernetes.io/last-applied-configuration']);

export interface PodCheckpointInput {
  checkpoint: Checkpoint;
  pod: V1Pod;
  /** In the order they were checkpointed. */
  containers: ReadonlyArray<{ name: string; stored: StoredCheckpoint; mountDestinations: string[] }>;
  createdAt: Date;
}

export function podCheckpointOf({ checkpoint, pod, containers, createdAt }: PodCheckpointInput): PodCheckpoint {
  const spec = pod.spec ?? { containers: [] };
  const byName = new Map(containers.map((c) => [c.name, c]));
  return {
    apiVersion: CHECKPOINT_API_VERSION,
    kind: POD_CHECKPOINT_KIND,
    checkpoint: { namespace: checkpoint.metadata?.namespace ?? '', name: checkpoint.metadata?.name ?? '', uid: checkpoint.metadata?.uid ?? '' },
    createdAt: createdAt.toISOString(),
    nodeName: spec.nodeName ?? '',
    pod: {
      namespace: pod.metadata?.namespace ?? '',
      name: pod.metadata?.name ?? '',
      uid: pod.metadata?.uid ?? '',
      labels: { ...pod.metadata?.labels },
      annotations: Object.fromEntries(Object.entries(pod.metadata?.annotations ?? {}).filter(([key]) => !LEFT_OUT_ANNOTATIONS.has(key))),
      spec,
    },
    // The spec's order, which is the order a restored pod lists them in.
    containers: spec.containers.flatMap((c) => {
      const item = byName.get(c.name);
      if (item === undefined) return [];
      const { stored } = item;
      return [{ name: c.name, image: c.image ?? '', restoreReference: stored.restoreReference, referenceType: stored.referenceType, digest: stored.digest, sizeBytes: stored.sizeBytes, mountDestinations: item.mountDestinations }];
    }),
    notCheckpointed: spec.containers.map((c) => c.name).filter((name) => !byName.has(name)),
  };
}
