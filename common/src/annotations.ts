/**
 * Every annotation Cryo reads or writes. README.md#annotations documents each one;
 * nothing else in the code spells these strings.
 */
const PREFIX = 'cryo.dev/';

/** Set by users on a pod (or pod template): restore its containers from this Checkpoint (same namespace). */
export const RESTORE_FROM = `${PREFIX}restore-from`;
/**
 * Set by users on a pod (or pod template): `enabled` opts the pod in to live migration. `kubectl
 * cryo drain` gives such pods a Migration (checkpoint, stop, restore elsewhere or, with --reboot,
 * back on the same node) instead of evicting them; other pods are evicted as kubectl drain does.
 */
export const MIGRATE = `${PREFIX}migrate`;
export const MIGRATE_ENABLED = 'enabled';
/** Set by users on a pod: `enabled` mounts the node agent's hook socket into each container. */
export const HOOKS = `${PREFIX}hooks`;
export const HOOKS_ENABLED = 'enabled';

/**
 * Written by the Cryo controller on each Checkpoint a CheckpointSchedule creates: the time the run
 * was due (RFC 3339). A pod's scheduled Checkpoints are pruned oldest first by it.
 */
export const SCHEDULED_TIME = `${PREFIX}scheduled-time`;

/** Written by the webhook: JSON object container name → the image the pod spec asked for. */
export const ORIGINAL_IMAGES = `${PREFIX}original-images`;
/** Written by the webhook: the uid of the Checkpoint restored from (a re-created Checkpoint has another). */
export const RESTORED_CHECKPOINT_UID = `${PREFIX}restored-checkpoint-uid`;
/** Written by the webhook: comma-separated names of the containers that restore from the checkpoint. */
export const RESTORED_CONTAINERS = `${PREFIX}restored-containers`;
/** Written by the webhook: `injected` once the hook socket volume is in the pod. */
export const HOOKS_STATUS = `${PREFIX}hooks-status`;
export const HOOKS_STATUS_INJECTED = 'injected';

/**
 * Set by the administrator on a push Secret in the node agent's namespace: the comma-separated
 * namespaces whose Checkpoints may name it in spec.storage.registry.pushSecretName (`*`: all).
 */
export const PUSH_SECRET_NAMESPACES = `${PREFIX}push-secret-namespaces`;

/**
 * Set by the administrator on a CheckpointStorageClass: `true` makes it the default for the
 * namespaces it is open to (as storageclass.kubernetes.io/is-default-class does for volumes).
 */
export const IS_DEFAULT_CLASS = `${PREFIX}is-default-class`;

/**
 * Set by a user on a Checkpoint: `true` keeps its stored data when the Checkpoint is deleted
 * (the node agent otherwise removes it first: CHECKPOINT_DATA_FINALIZER). Read at deletion.
 */
export const KEEP_DATA = `${PREFIX}keep-data`;

/** True when the pod carries any annotation that asks Cryo for something. */
export function hasCryoAnnotation(annotations: Record<string, string> | undefined): boolean {
  if (annotations === undefined) return false;
  return Object.keys(annotations).some((key) => key.startsWith(PREFIX));
}

export const ANNOTATION_PREFIX = PREFIX;
