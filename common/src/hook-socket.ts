/**
 * Where a hook-enabled pod finds the node agent's hook socket. The webhook mounts
 * `<hostHooksDir>/<pod uid>` at HOOK_MOUNT_PATH; the node agent serves HOOK_SOCKET_NAME in it;
 * the SDK reads the socket path from HOOK_SOCKET_ENV.
 */

/** Default host directory holding one sub-directory per hook-enabled pod (node agent and webhook flag). */
export const DEFAULT_HOST_HOOKS_DIR = '/var/run/cryo/hooks';
/** Where the pod's own directory appears inside each container. */
export const HOOK_MOUNT_PATH = '/run/cryo';
export const HOOK_SOCKET_NAME = 'agent.sock';
/** Env var naming the socket for the SDK. */
export const HOOK_SOCKET_ENV = 'CRYO_HOOK_SOCKET';
/** Env var (downward API metadata.uid) that the subPathExpr expands. */
export const POD_UID_ENV = 'CRYO_POD_UID';
/** Name of the volume the webhook adds. */
export const HOOK_VOLUME_NAME = 'cryo-hooks';

export const HOOK_SOCKET_PATH = `${HOOK_MOUNT_PATH}/${HOOK_SOCKET_NAME}`;
