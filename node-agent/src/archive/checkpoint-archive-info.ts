/**
 * What the agent knows about one container's checkpoint archive (the tar CRI-O writes, or the
 * one `podman container checkpoint --export` writes), read from its config.dump, spec.dump and
 * bind.mounts. readCheckpointArchive() (checkpoint-archive.ts) produces it.
 */
export interface CheckpointArchiveInfo {
  /** Absolute path of the archive (an uncompressed tar). */
  path: string;
  sizeBytes: number;
  /**
   * The container's name: for CRI-O spec.dump's io.kubernetes.container.name (its config.dump
   * `name` is CRI-O's own k8s_<container>_<pod>_<ns>_<uid>_<attempt>), for Podman config.dump `name`.
   */
  containerName: string;
  /** config.dump `rootfsImageName` (else `rootfsImage`): the base image the restore needs, '' if unknown. */
  baseImage: string;
  /** config.dump `rootfsImageRef` (CRI-O) or `rootfsImageID` (Podman), '' if unknown. */
  baseImageId: string;
  /** config.dump `runtime` (runc, crun). */
  runtime: string;
  /** Which engine wrote it: `cri-o` (spec.dump has io.kubernetes.pod.* annotations or io.container.manager=cri-o) or `podman`. */
  engine: 'cri-o' | 'podman';
  /** config.dump `checkpointedTime`/`createdTime` as written, '' if absent. */
  checkpointedTime: string;
  /** spec.dump annotations io.kubernetes.pod.{name,namespace,uid} ('' for Podman). */
  pod: { name: string; namespace: string; uid: string };
  /**
   * Destinations of the mounts the restored container must have again: spec.dump's mounts (what
   * CRI-O checks; bind.mounts only when spec.dump has none) minus those the runtime and the
   * kubelet provide themselves (mount-destinations.ts has the rule).
   */
  mountDestinations: string[];
  /** The CRIU version from dump.log's `Version:` line ('' without dump.log; stats-dump, protobuf timings, names none). */
  criuVersion: string;
}
