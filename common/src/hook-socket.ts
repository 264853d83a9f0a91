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

/**
 * The CSI driver through which the webhook mounts the hook socket by default: the node agent
 * serves it (node-agent/src/csi/), and for an inline ephemeral volume of it the kubelet names the
 * pod (podInfoOnMount), whose own directory `<hostHooksDir>/<pod uid>` the agent bind-mounts,
 * read-only. A CSI volume needs no hostPath, so such pods run in namespaces enforcing Pod Security
 * `restricted`. manifests/csi-driver.yaml declares it.
 */
export const HOOK_CSI_DRIVER = 'hooks.cryo.dev';
/** How the webhook mounts the hook socket: the CSI driver above (default) or a hostPath with subPathExpr. */
export const HOOK_SOCKET_VOLUME_KINDS = ['csi', 'hostPath'] as const;
export type HookSocketVolumeKind = (typeof HOOK_SOCKET_VOLUME_KINDS)[number];
