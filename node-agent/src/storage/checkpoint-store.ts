/**
 * Where checkpoints are kept. Two stores implement this: the OCI registry store (a checkpoint
 * image per container, pushed by digest) and the directory store (archive files in a hostPath or
 * network volume). The agent picks one per Checkpoint (spec.storage, else the cluster default).
 */
import type { CheckpointIdentity, PodCheckpoint, PodCheckpointReference } from '@cryo/common';
import type { CheckpointArchiveInfo } from '../archive/checkpoint-archive-info.ts';

export interface StoreRequest {
  archive: CheckpointArchiveInfo;
  /** The Checkpoint resource this archive belongs to. */
  checkpoint: CheckpointIdentity;
  /** The checkpointed pod and container. */
  pod: { namespace: string; name: string; uid: string };
  containerName: string;
  signal?: AbortSignal;
  /**
   * Told, often, how many bytes are stored so far: the caller decides how often to say so
   * (store-progress.ts). Of archive.sizeBytes, or of `totalBytes` when what is stored is not the
   * archive as it is: the directory store copies the archive; the registry store uploads its
   * layer, the archive or (compressed first, nothing said meanwhile) the zstd layer, and counts
   * from where the registry has it again when an upload starts over.
   */
  onProgress?: (storedBytes: number, totalBytes?: number) => void;
}

export interface StoredCheckpoint {
  /** What a restore names: a digest-pinned image reference, or an absolute archive path. */
  restoreReference: string;
  referenceType: 'image' | 'archive';
  /** Where the archive is on the node (directory store), whichever the reference. */
  archivePath?: string;
  /** Bytes stored: the layer as pushed (zstd-compressed when the registry store compresses), or the archive file. */
  sizeBytes: number;
  /** `sha256:<hex>` of those bytes: the layer digest, or the archive file's. */
  digest: string;
  durationMs: number;
  /** The image manifest: what an OCI index of the pod's images points at, or the registry view serves. */
  manifest?: { digest: string; sizeBytes: number };
}

export interface PodCheckpointRequest {
  document: PodCheckpoint;
  /** What store() returned for each container of the document. */
  stored: ReadonlyArray<{ name: string; stored: StoredCheckpoint }>;
  signal?: AbortSignal;
}

export interface StoredPodCheckpoint extends PodCheckpointReference {
  /** `sha256:<hex>` of the index or the document file. */
  digest: string;
}

/** Keep at most this much, per scope; unset limits do not apply. */
export interface RetentionPolicy {
  maxCount?: number;
  maxTotalBytes?: number;
  maxAgeSeconds?: number;
  /** What one budget covers. */
  scope: 'container' | 'pod' | 'namespace';
}

export interface StoredEntry {
  restoreReference: string;
  namespace: string;
  podName: string;
  containerName: string;
  checkpointName: string;
  /** The uid of the Checkpoint that stored it ('' when the store did not record it). */
  checkpointUid: string;
  sizeBytes: number;
  createdAt: Date;
}

/** How far one retention run may reach. */
export interface RetentionScope {
  /**
   * Whether this agent may remove `entry`: an agent removes only data whose Checkpoint is its own
   * node's (or gone), since it may update no other Checkpoint's status. Entries it may not remove
   * stay, and still count in their group. Absent: every entry.
   */
  mayRemove?(entry: StoredEntry): boolean;
  /**
   * Of the entries the policy would remove (those `mayRemove` allows), the ones that must stay:
   * data in use (a pod or workload restores from it). Asked once per run, after the selection, so
   * only what would go is looked into; what it keeps still counts in its group. Absent: none.
   */
  keep?(candidates: readonly StoredEntry[]): Promise<ReadonlySet<StoredEntry>>;
}

export interface RetentionResult {
  kept: StoredEntry[];
  removed: StoredEntry[];
}

export interface CheckpointStore {
  readonly kind: 'registry' | 'directory';
  /** A directory every node mounts (a network volume): its checkpoints restore on any node. */
  readonly shared?: boolean;
  /** Stores one archive; all-or-nothing: on failure nothing that looks complete is left. */
  store(request: StoreRequest): Promise<StoredCheckpoint>;
  /**
   * Stores the pod checkpoint document once its containers are stored (an OCI index of their
   * images, or a file beside their archives); all-or-nothing as well. Retention removes it with
   * the first of its containers' checkpoints it removes: a pod checkpoint is whole or gone.
   */
  storePodCheckpoint(request: PodCheckpointRequest): Promise<StoredPodCheckpoint>;
  /** What the store holds (for retention and for status reconciliation). */
  list(): Promise<StoredEntry[]>;
  /** Removes the oldest entries beyond the policy. */
  applyRetention(policy: RetentionPolicy, scope?: RetentionScope): Promise<RetentionResult>;
  /**
   * Removes everything one Checkpoint stored (every container's, and its pod checkpoint), found by
   * its namespace, name and uid; resolves what it removed (nothing when there was nothing). Throws
   * a StoreError when some of it could not be removed: what was removed stays removed.
   */
  removeCheckpoint(checkpoint: CheckpointIdentity): Promise<StoredEntry[]>;
}

/** Whether `entry` was stored for `checkpoint` (an entry that recorded no uid matches by name: it predates uids). */
export function isOfCheckpoint(entry: StoredEntry, checkpoint: CheckpointIdentity): boolean {
  return entry.namespace === checkpoint.namespace && entry.checkpointName === checkpoint.name && (entry.checkpointUid === '' || entry.checkpointUid === checkpoint.uid);
}

/**
 * What stands in the way of storing until someone acts, where a failure says so: `denied`, the
 * credentials or permissions (a registry's 401 or 403, EACCES, EPERM, a read-only file system);
 * `full`, space or quota (ENOSPC, EDQUOT, a registry's 507); `rejected`, the store does not take
 * the request as it is set up (a registry's other 4xx: an invalid or unknown repository, a body
 * too large; a TLS certificate not trusted; a token realm over plain HTTP). A failure without one
 * may pass by itself (the network, a 5xx, an I/O error). The Checkpoint's reason follows it.
 */
export type StoreBlocker = 'denied' | 'full' | 'rejected';

export class StoreError extends Error {
  override name = 'StoreError';
  /** Worth retrying later (network, 5xx) as opposed to a permanent refusal (auth, 4xx, bad input). */
  readonly retriable: boolean;
  readonly blocker: StoreBlocker | undefined;
  constructor(message: string, options: { retriable: boolean; blocker?: StoreBlocker; cause?: unknown }) {
    super(message, { cause: options.cause });
    this.retriable = options.retriable;
    this.blocker = options.blocker;
  }
}

/** The blocker an errno names: space, or permission to write. */
export function blockerOfErrno(code: string | undefined): StoreBlocker | undefined {
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT':
      return 'full';
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return 'denied';
    default:
      return undefined;
  }
}

/** The blocker a registry's (or its token service's) HTTP status names; 408, 429 and 5xx but 507 may pass. */
export function blockerOfHttpStatus(status: number): StoreBlocker | undefined {
  if (status === 401 || status === 403) return 'denied';
  if (status === 507) return 'full';
  if (status >= 400 && status < 500 && status !== 408 && status !== 429) return 'rejected';
  return undefined;
}
