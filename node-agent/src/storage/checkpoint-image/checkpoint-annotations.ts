/**
 * The annotations that make an OCI image a checkpoint image, in the three families runtimes
 * look for (names as upstream defines them), so that one image restores under each:
 * - CRI-O: `io.kubernetes.cri-o.annotations.checkpoint.name` marks it (cri-o
 *   pkg/annotations); the rest of that family describes the base image and CRIU.
 * - containerd: `org.criu.checkpoint.container.name` marks it (checkpointctl lib): its CRI
 *   restore takes an image for a checkpoint when the manifest or index the reference names
 *   carries it, with any value, and does not know CRI-O's. `checkpointctl build` writes the others.
 * - Podman: `io.podman.annotations.checkpoint.runtime.name` must equal the local OCI runtime
 *   (podman pkg/annotations and podman-container-checkpoint(1)).
 * Plus Cryo's own `dev.cryo.checkpoint.*`, from which list() and retention know whose
 * checkpoint an image is and when it was made. Empty values are left out: a runtime reads an
 * empty base image name as a name. A pod checkpoint's index carries Cryo's identity only, never
 * a marker: it is no one container's checkpoint, and containerd would take it for one.
 */
import type { PodCheckpoint } from '@cryo/common';
import type { CheckpointEngine } from '../../archive/checkpoint-archive-info.ts';
import type { StoreRequest } from '../checkpoint-store.ts';

export const CRIO = 'io.kubernetes.cri-o.annotations.checkpoint.';
export const CRIU = 'org.criu.checkpoint.';
export const PODMAN = 'io.podman.annotations.checkpoint.';
export const CRYO = 'dev.cryo.checkpoint.';

/** The annotation by which each Kubernetes runtime takes an image for a checkpoint; both carry the container's name. */
export const CHECKPOINT_MARKERS = {
  crio: `${CRIO}name`,
  containerd: `${CRIU}container.name`,
} as const;

/** `org.criu.checkpoint.engine.name` as checkpointctl spells each engine. */
const ENGINE_NAMES: Record<CheckpointEngine, string> = { 'cri-o': 'CRI-O', containerd: 'containerd', podman: 'Podman' };

/** What list() reads back. */
export const CRYO_ANNOTATIONS = {
  namespace: `${CRYO}namespace`,
  checkpointName: `${CRYO}name`,
  checkpointUid: `${CRYO}uid`,
  podName: `${CRYO}pod-name`,
  podUid: `${CRYO}pod-uid`,
  containerName: `${CRYO}container-name`,
  /** RFC 3339 time the image was stored. */
  created: `${CRYO}created`,
  /** RFC 3339 time (or as the archive wrote it) CRIU dumped the container. */
  checkpointedTime: `${CRYO}checkpointed-time`,
  baseImage: `${CRYO}base-image`,
  /** JSON array of the mount destinations a restored container must have. */
  mountDestinations: `${CRYO}mount-destinations`,
  /** On a pod checkpoint's index: the PodCheckpoint document (@cryo/common), as JSON. */
  pod: `${CRYO}pod`,
} as const;

export const OCI_CREATED = 'org.opencontainers.image.created';

export interface HostFacts {
  /** GOARCH spelling: amd64, arm64, ... */
  arch: string;
  kernel: string;
  /** `v1` or `v2`, '' when unknown. */
  cgroupVersion: string;
}

function withoutEmpty(entries: [string, string][]): Record<string, string> {
  return Object.fromEntries(entries.filter(([, v]) => v !== ''));
}

/** Whose checkpoint it is: what list() and retention read back, on an image and on a pod's index alike. */
function identityEntries(checkpoint: StoreRequest['checkpoint'], pod: StoreRequest['pod']): [string, string][] {
  return [
    [CRYO_ANNOTATIONS.namespace, checkpoint.namespace],
    [CRYO_ANNOTATIONS.checkpointName, checkpoint.name],
    [CRYO_ANNOTATIONS.checkpointUid, checkpoint.uid],
    [CRYO_ANNOTATIONS.podName, pod.name],
    [CRYO_ANNOTATIONS.podUid, pod.uid],
  ];
}

/** The annotations of a pod checkpoint's index: its identity, when it was stored, and the document itself. */
export function podCheckpointAnnotations(document: PodCheckpoint): Record<string, string> {
  return withoutEmpty([
    ...identityEntries(document.checkpoint, document.pod),
    [CRYO_ANNOTATIONS.created, document.createdAt],
    [OCI_CREATED, document.createdAt],
    [CRYO_ANNOTATIONS.pod, JSON.stringify(document)],
  ]);
}

export function cryoAnnotations(request: StoreRequest, created: Date): Record<string, string> {
  const { archive } = request;
  return withoutEmpty([
    ...identityEntries(request.checkpoint, request.pod),
    [CRYO_ANNOTATIONS.containerName, request.containerName],
    [CRYO_ANNOTATIONS.created, created.toISOString()],
    [CRYO_ANNOTATIONS.checkpointedTime, archive.checkpointedTime],
    [CRYO_ANNOTATIONS.baseImage, archive.baseImage],
    [CRYO_ANNOTATIONS.mountDestinations, JSON.stringify(archive.mountDestinations)],
  ]);
}

export function checkpointAnnotations(request: StoreRequest, host: HostFacts, created: Date): Record<string, string> {
  const { archive } = request;
  // The container's name as the archive recorded it: CRI-O matches it against the new container's.
  const container = archive.containerName || request.containerName;
  return {
    ...withoutEmpty([
      [CHECKPOINT_MARKERS.crio, container],
      [`${CRIO}rawImageName`, archive.baseImage],
      [`${CRIO}rootfsImageID`, archive.baseImageId],
      [`${CRIO}rootfsImageName`, archive.baseImage],
      [`${CRIO}criu.version`, archive.criuVersion],

      [CHECKPOINT_MARKERS.containerd, container],
      [`${CRIU}engine.name`, ENGINE_NAMES[archive.engine]],
      [`${CRIU}pod.name`, request.pod.name],
      [`${CRIU}pod.namespace`, request.pod.namespace],
      // The Kubernetes pod uid: the agent does not learn the CRI sandbox id.
      [`${CRIU}pod.id`, request.pod.uid],
      [`${CRIU}rootfsImageName`, archive.baseImage],
      [`${CRIU}rootfsImageUserRequested`, archive.baseImage],
      [`${CRIU}rawImageName`, archive.baseImage],
      [`${CRIU}rootfsImageID`, archive.baseImageId],
      [`${CRIU}runtime.name`, archive.runtime],
      [`${CRIU}criu.version`, archive.criuVersion],
      [`${CRIU}host.arch`, host.arch],
      [`${CRIU}host.kernel`, host.kernel],
      [`${CRIU}cgroup.version`, host.cgroupVersion],

      [`${PODMAN}name`, container],
      [`${PODMAN}rawImageName`, archive.baseImage],
      [`${PODMAN}rootfsImageID`, archive.baseImageId],
      [`${PODMAN}rootfsImageName`, archive.baseImage],
      [`${PODMAN}runtime.name`, archive.runtime],
      [`${PODMAN}criu.version`, archive.criuVersion],
      [`${PODMAN}host.arch`, host.arch],
      [`${PODMAN}host.kernel`, host.kernel],
      [`${PODMAN}cgroups.version`, host.cgroupVersion],

      [OCI_CREATED, created.toISOString()],
    ]),
    ...cryoAnnotations(request, created),
  };
}
