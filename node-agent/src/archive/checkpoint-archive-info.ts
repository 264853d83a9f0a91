/**
 * What the agent knows about one container's checkpoint archive (the tar CRI-O writes, or the
 * one `podman container checkpoint --export` writes), read from its config.dump, spec.dump and
 * bind.mounts. readCheckpointArchive() (checkpoint-archive.ts) produces it.
 */
export interface CheckpointArchiveInfo {
  /** Absolute path of the archive (an uncompressed tar). */
  path: string;
  sizeBytes: number;
  /** config.dump `name`: the container's name. */
  containerName: string;
  /** config.dump `rootfsImageName` (the base image the restore needs), '' if unknown. */
  baseImage: string;
  /** config.dump `rootfsImageRef` (CRI-O) or `rootfsImageID` (Podman), '' if unknown. */
  baseImageId: string;
  /** config.dump `runtime` (runc, crun). */
  runtime: string;
  /** Which engine wrote it: `cri-o` (spec.dump has io.kubernetes.* annotations) or `podman`. */
  engine: 'cri-o' | 'podman';
  /** config.dump `checkpointedTime`/`createdTime` as written, '' if absent. */
  checkpointedTime: string;
  /** spec.dump annotations io.kubernetes.pod.{name,namespace,uid} ('' for Podman). */
  pod: { name: string; namespace: string; uid: string };
  /** Destinations of the non-system mounts (from bind.mounts, else spec.dump): the restore needs each. */
  mountDestinations: string[];
  /** The CRIU version from stats-dump or dump.log, '' if unknown. */
  criuVersion: string;
}
