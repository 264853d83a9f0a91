/**
 * The pod checkpoint: what one Checkpoint stored for its pod as a whole, beside the archive (or
 * image) of each container — the pod as it ran (labels, annotations, spec), which containers
 * were checkpointed and where each went, and which were left out. It is what moving or
 * re-creating the whole pod needs besides the containers' memory, and the one reference that
 * names all of it.
 *
 * The directory store writes it as `<root>/<namespace>/<pod>/<checkpoint>-<uid8>.pod.json`; the
 * registry store pushes an OCI image index whose manifests are the containers' checkpoint
 * images and whose `dev.cryo.checkpoint.pod` annotation holds this document.
 */
import type { V1PodSpec } from '@kubernetes/client-node';
import { CHECKPOINT_API_VERSION, type RestoreReferenceType } from './checkpoint.ts';

export const POD_CHECKPOINT_KIND = 'PodCheckpoint';

export interface PodCheckpointContainer {
  name: string;
  /** The image the pod's spec names for the container. */
  image: string;
  restoreReference: string;
  referenceType: RestoreReferenceType;
  /** `sha256:<hex>` of what is stored: the image's layer (zstd-compressed or the archive itself), or the archive file. */
  digest: string;
  sizeBytes: number;
  mountDestinations: string[];
}

export interface PodCheckpoint {
  apiVersion: typeof CHECKPOINT_API_VERSION;
  kind: typeof POD_CHECKPOINT_KIND;
  checkpoint: { namespace: string; name: string; uid: string };
  /** When the agent stored it (RFC 3339). */
  createdAt: string;
  nodeName: string;
  pod: {
    namespace: string;
    name: string;
    uid: string;
    labels: Record<string, string>;
    annotations: Record<string, string>;
    /** The spec the pod ran with. */
    spec: V1PodSpec;
  };
  /** In the order of the pod's spec. */
  containers: PodCheckpointContainer[];
  /** The pod's containers this Checkpoint left out (it named a subset): a restored pod starts them afresh. */
  notCheckpointed: string[];
}

/** Where a Checkpoint's pod checkpoint went (status.podCheckpoint). */
export interface PodCheckpointReference {
  /** A digest-pinned OCI image index (`repo@sha256:...`) or the document's path on the node. */
  reference: string;
  referenceType: 'image-index' | 'file';
}

/** The document in `value`, or a reason it is not one (a file or annotation read back). */
export function parsePodCheckpoint(value: unknown): PodCheckpoint | string {
  if (typeof value !== 'object' || value === null) return 'not a JSON object';
  const v = value as Partial<PodCheckpoint>;
  if (v.apiVersion !== CHECKPOINT_API_VERSION || v.kind !== POD_CHECKPOINT_KIND) return `not a ${CHECKPOINT_API_VERSION} ${POD_CHECKPOINT_KIND}`;
  if (typeof v.checkpoint?.name !== 'string' || typeof v.pod?.name !== 'string') return 'checkpoint or pod is missing';
  if (!Array.isArray(v.containers) || !v.containers.every((c) => typeof c?.name === 'string' && typeof c.restoreReference === 'string')) return 'containers is not a list of stored containers';
  return v as PodCheckpoint;
}
