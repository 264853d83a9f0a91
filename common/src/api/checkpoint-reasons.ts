/**
 * Why a Checkpoint is where it is, as one stable code: `status.reason`, the reason of its `Ready`
 * and `Failed` conditions, and of the Warning Event the node agent records. Scripts and the
 * Migration controller match the code; people read the message, which names the fix.
 * `retryable` says whether a new Checkpoint of the same pod may succeed with nothing changed
 * (a Checkpoint runs once: nothing retries it by itself).
 * docs/operations.md ("Why a checkpoint failed") lists them all; test/node-agent/checkpoint-reasons.test.ts
 * keeps that table and this catalog the same.
 */
export const CHECKPOINT_FAILURE_REASONS = {
  PodNotFound: { retryable: false, meaning: 'spec.podName names no pod in the namespace' },
  PodNotRunning: { retryable: true, meaning: 'the pod is being deleted or not Running, its init containers have not completed, or a container to checkpoint is not running' },
  ContainerNotFound: { retryable: false, meaning: 'spec.containers names a container the pod does not have' },
  StorageNotConfigured: { retryable: false, meaning: 'the Checkpoint names no storage, no default CheckpointStorageClass is open to its namespace, and the node agent has no default store' },
  StorageRefused: { retryable: false, meaning: 'the storage named is not open to the namespace or is misconfigured (a storage class, a registry repository, a directory, a push secret)' },
  StorageUnreadable: { retryable: true, meaning: 'a CheckpointStorageClass or push Secret could not be read from the API server' },
  HooksNotReady: { retryable: true, meaning: "the app's pre-checkpoint hooks failed or timed out; nothing was dumped and the app resumed" },
  DumpFailed: { retryable: true, meaning: 'the kubelet (its runtime, CRIU) could not checkpoint a container; the app resumed' },
  ArchiveRefused: { retryable: false, meaning: "the kubelet named an archive outside its checkpoints directory; it was neither read nor deleted" },
  StoreFailed: { retryable: true, meaning: "writing the checkpoint to the registry or directory failed in a way that may pass: the network, the registry's 5xx or 429 (after a few tries), an I/O error, the archive changing; nothing half-written is left referenced" },
  StoreDenied: { retryable: false, meaning: "the store refused the node agent: the registry or its token service answered 401 or 403 (the push secret's credentials or rights), or the directory is not writable (EACCES, EPERM, EROFS); nothing half-written is left referenced" },
  StoreFull: { retryable: false, meaning: "no space or quota left (ENOSPC, EDQUOT) on the directory store's volume or, for a compressed layer, beside the kubelet's archive; or the registry's storage is full (HTTP 507); nothing half-written is left referenced" },
  StoreRejected: { retryable: false, meaning: "the registry does not take the push as it is set up: another 4xx (an invalid or unknown repository name, a request body too large for it), a TLS certificate the agent does not trust, or credentials asked for over plain HTTP; nothing half-written is left referenced" },
  AgentRestarted: { retryable: true, meaning: 'the node agent restarted while the checkpoint ran; the app was resumed and nothing was stored' },
  InternalError: { retryable: true, meaning: "an error Cryo did not expect (a bug): the message and the node agent's log say what; please report it" },
} as const satisfies Record<string, { retryable: boolean; meaning: string }>;

export type CheckpointFailureReason = keyof typeof CHECKPOINT_FAILURE_REASONS;

/** The reasons of the phases that are not failures, as the Ready condition shows them. */
export const CHECKPOINT_PHASE_REASONS = {
  Pending: 'Pending',
  Running: 'Checkpointing',
  Succeeded: 'Stored',
  /** Retention removed the stored data (the message says when and under which limit). */
  Expired: 'RetentionRemoved',
} as const;

/**
 * The reasons of the Events the node agent records on a Checkpoint about its stored data when
 * that data does not go the way retention or a deletion would take it. The Checkpoint itself is
 * not failing: these explain why data stays. docs/operations.md ("Why data stays") lists them;
 * test/node-agent/checkpoint-reasons.test.ts keeps that table and this catalog the same.
 */
export const CHECKPOINT_DATA_REASONS = {
  RetentionDeferred: { type: 'Normal', meaning: 'retention would remove its data, but a pod that is not finished or a workload template restores from it (or whether one does could not be read): it stays, and the next run looks again' },
  DataRemovalFailed: { type: 'Warning', meaning: 'the Checkpoint was deleted and its store failed to remove the data: the Checkpoint stays and removal is tried again with backoff' },
  DataNotRemoved: { type: 'Warning', meaning: 'the Checkpoint was deleted but its store cannot be named any more: the Checkpoint goes and its data stays, to be removed by hand' },
} as const satisfies Record<string, { type: 'Normal' | 'Warning'; meaning: string }>;

export type CheckpointDataReason = keyof typeof CHECKPOINT_DATA_REASONS;

/** A failure as every step of a checkpoint reports it: its code and a message naming the fix. */
export interface CheckpointFailure {
  reason: CheckpointFailureReason;
  error: string;
}

export function isRetryable(reason: CheckpointFailureReason): boolean {
  return CHECKPOINT_FAILURE_REASONS[reason].retryable;
}
