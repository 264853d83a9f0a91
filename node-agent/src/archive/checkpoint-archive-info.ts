/**
 * What the agent knows about one container's checkpoint archive (the tar CRI-O or containerd
 * writes for the kubelet's checkpoint API, or the one `podman container checkpoint --export`
 * writes), read from its config.dump, spec.dump, status.dump and bind.mounts.
 * readCheckpointArchive() (checkpoint-archive.ts) produces it.
 */

/** The engines whose archives the agent reads: the one list the reader and the stores check against. */
export const CHECKPOINT_ENGINES = ['cri-o', 'containerd', 'podman'] as const;
export type CheckpointEngine = (typeof CHECKPOINT_ENGINES)[number];

export interface CheckpointArchiveInfo {
  /** Absolute path of the archive (an uncompressed tar). */
  path: string;
  sizeBytes: number;
  /**
   * The container's name: for CRI-O spec.dump's io.kubernetes.container.name (its config.dump
   * `name` is CRI-O's own k8s_<container>_<pod>_<ns>_<uid>_<attempt>), for containerd spec.dump's
   * io.kubernetes.cri.container-name (else status.dump's metadata.name; its config.dump `name` is
   * <container>_<pod>_<ns>_<uid>_<attempt>), for Podman config.dump `name`.
   */
  containerName: string;
  /** config.dump `rootfsImageName` (else `rootfsImage`): the base image the restore needs, '' if unknown. */
  baseImage: string;
  /**
   * config.dump `rootfsImageRef` (CRI-O: the image id; containerd: the digest-pinned
   * `<name>@sha256:…` its restore pulls the base image by) or `rootfsImageID` (Podman), '' if unknown.
   */
  baseImageId: string;
  /** config.dump `runtime` (runc, crun; containerd writes its shim, io.containerd.runc.v2). */
  runtime: string;
  /**
   * Which engine wrote it: `cri-o` (spec.dump's io.container.manager=cri-o or io.kubernetes.pod.*
   * annotations), `containerd` (status.dump, an io.containerd.* runtime or io.kubernetes.cri.*
   * annotations) or `podman` (io.container.manager=libpod, or none of the others).
   */
  engine: CheckpointEngine;
  /** config.dump `checkpointedTime`/`createdTime` as written, '' if absent. */
  checkpointedTime: string;
  /** The pod's name, namespace and uid from spec.dump's (else status.dump's) annotations ('' for Podman). */
  pod: { name: string; namespace: string; uid: string };
  /**
   * Destinations of the mounts the restored container must have again: spec.dump's mounts (what
   * CRI-O checks and CRIU restores; bind.mounts only when spec.dump has none) minus those the
   * runtime and the kubelet provide themselves (mount-destinations.ts has the rule).
   */
  mountDestinations: string[];
  /** The CRIU version from dump.log's `Version:` line ('' without dump.log; stats-dump, protobuf timings, names none). */
  criuVersion: string;
}
