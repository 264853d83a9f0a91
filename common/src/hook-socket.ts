/**
 * Where a hook-enabled pod finds the node agent's hook socket. The webhook mounts
 * `<hostHooksDir>/<pod uid>` at HOOK_MOUNT_PATH; the node agent serves HOOK_SOCKET_NAME in it;
 * the SDK reads the socket path from HOOK_SOCKET_ENV.
 */

import { CONTAINER_NAME_ENV as SDK_CONTAINER_NAME_ENV, DEFAULT_SOCKET_PATH, POD_UID_ENV as SDK_POD_UID_ENV, SOCKET_ENV } from '@cryo/hook-sdk/protocol';

/** Default host directory holding one sub-directory per hook-enabled pod (node agent and webhook flag). */
export const DEFAULT_HOST_HOOKS_DIR = '/var/run/cryo/hooks';
/** Where the pod's own directory appears inside each container. */
export const HOOK_MOUNT_PATH = '/run/cryo';
export const HOOK_SOCKET_NAME = 'agent.sock';
// The env names and the in-container path are the protocol's (hook-sdk/src/protocol.ts); defined there once.
/** Env var naming the socket for the SDK. */
export const HOOK_SOCKET_ENV = SOCKET_ENV;
/** Env var (downward API metadata.uid) that the subPathExpr expands; the SDK reports it in hello. */
export const POD_UID_ENV = SDK_POD_UID_ENV;
/** Env var with the container's own name, which the SDK reports in hello. */
export const CONTAINER_NAME_ENV = SDK_CONTAINER_NAME_ENV;
/** Name of the volume the webhook adds. */
export const HOOK_VOLUME_NAME = 'cryo-hooks';

export const HOOK_SOCKET_PATH = DEFAULT_SOCKET_PATH;
if (HOOK_SOCKET_PATH !== `${HOOK_MOUNT_PATH}/${HOOK_SOCKET_NAME}`) throw new Error('HOOK_MOUNT_PATH/HOOK_SOCKET_NAME disagree with the protocol socket path');
