/**
 * `cryo.dev/hooks: enabled`: mount the pod's own directory of the node agent's hook directory
 * into every app container and tell the SDK where the socket is.
 *
 * Two ways (--hook-socket-volume). `csi`, the default: an inline ephemeral volume of the node
 * agent's CSI driver hooks.cryo.dev, which the agent fills with the pod's own directory, read-only,
 * for the pod the kubelet names (node-agent/src/csi/hook-csi-driver.ts); no hostPath, so Pod
 * Security `restricted` admits the pod. `hostPath`: the host directory is mounted with
 * `subPathExpr: $(CRYO_POD_UID)`, the env var coming from the downward API, so a container only
 * ever sees `<host dir>/<its pod uid>`. Either way CRYO_POD_UID is set from the downward API (the
 * SDK reports it), and any CRYO_POD_UID the pod sets itself is dropped first: otherwise it could
 * point the subPath at another pod's socket.
 * Init containers never get the mount (no checkpoint happens while they run), nor do ephemeral
 * ones. Whether anything else in the pod reaches the hook directory is hook-socket-guard.ts's
 * question: this module only adds what is missing.
 */
import { posix } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { V1Container, V1EnvVar, V1Pod, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import { annotations, cloneJson, CONTAINER_NAME_ENV, HOOK_CSI_DRIVER, HOOK_MOUNT_PATH, HOOK_SOCKET_ENV, HOOK_SOCKET_PATH, HOOK_VOLUME_NAME, POD_UID_ENV, type HookSocketVolumeKind } from '@cryo/common';
import { AdmissionDenial } from './admission-denial.ts';

/** How the webhook mounts the socket, and from which host directory (for hostPath). */
export interface HookSocketOptions {
  hostHooksDir: string;
  /** Absent: hostPath (as before the CSI driver); the webhook's flag defaults to csi. */
  hookSocketVolume?: HookSocketVolumeKind;
}

export function hookVolume(options: HookSocketOptions): V1Volume {
  if (options.hookSocketVolume === 'csi') return { name: HOOK_VOLUME_NAME, csi: { driver: HOOK_CSI_DRIVER, readOnly: true } };
  return { name: HOOK_VOLUME_NAME, hostPath: { path: options.hostHooksDir, type: 'DirectoryOrCreate' } };
}

/** The one mount of the hook volume there is: this pod's own directory, at /run/cryo. */
export function hookMount(kind: HookSocketVolumeKind = 'hostPath'): V1VolumeMount {
  if (kind === 'csi') return { name: HOOK_VOLUME_NAME, mountPath: HOOK_MOUNT_PATH, readOnly: true };
  return { name: HOOK_VOLUME_NAME, mountPath: HOOK_MOUNT_PATH, subPathExpr: `$(${POD_UID_ENV})` };
}

const hookEnv: V1EnvVar[] = [
  { name: POD_UID_ENV, valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.uid' } } },
  { name: HOOK_SOCKET_ENV, value: HOOK_SOCKET_PATH },
];

export function applyHookSocket(pod: V1Pod, options: HookSocketOptions): void {
  const spec = pod.spec!;
  const volume = hookVolume(options);
  const volumes = (spec.volumes ??= []);
  const existing = volumes.find((v) => v.name === HOOK_VOLUME_NAME);
  if (existing === undefined) {
    volumes.push(volume);
  } else if (!isDeepStrictEqual(existing, volume)) {
    throw new AdmissionDenial(
      422,
      'reserved-volume-name',
      `volume name "${HOOK_VOLUME_NAME}" is reserved for Cryo's hook socket; rename the pod's volume`,
    );
  }
  for (const container of spec.containers ?? []) mountInto(container, hookMount(options.hookSocketVolume));
  // A mounted socket and `cryo.dev/hooks: enabled` go together: the node agent serves a socket
  // for exactly the pods so annotated (a restore may turn hooks on without the user asking).
  const podAnnotations = ((pod.metadata ??= {}).annotations ??= {});
  podAnnotations[annotations.HOOKS] = annotations.HOOKS_ENABLED;
  podAnnotations[annotations.HOOKS_STATUS] = annotations.HOOKS_STATUS_INJECTED;
}

/** A container path without `.`, `..`, repeated or trailing slashes: /run/cryo/ is /run/cryo. */
const normalizePath = (path: string) => posix.normalize(path).replace(/(.)\/$/, '$1');

function mountInto(container: V1Container, mount: V1VolumeMount): void {
  const mounts = container.volumeMounts ?? [];
  const clash = mounts.find((m) => normalizePath(m.mountPath) === HOOK_MOUNT_PATH && m.name !== HOOK_VOLUME_NAME);
  if (clash !== undefined) {
    throw new AdmissionDenial(
      422,
      'hook-mount-path-taken',
      `container "${container.name}" already mounts volume "${clash.name}" at ${HOOK_MOUNT_PATH}, where Cryo mounts the hook socket; move that mount`,
    );
  }
  // New arrays, never pushes: the lists inside a container are shared with the original pod.
  // A mount of the volume other than this one (another path, another subPath) is left for
  // hook-socket-guard.ts to refuse.
  if (!mounts.some((m) => isDeepStrictEqual(m, mount))) container.volumeMounts = [...mounts, mount];
  // Ours first, so later entries may refer to $(CRYO_POD_UID); the same result on reinvocation.
  const ours = new Set([POD_UID_ENV, HOOK_SOCKET_ENV, CONTAINER_NAME_ENV]);
  const others = (container.env ?? []).filter((e) => !ours.has(e.name));
  container.env = [...cloneJson(hookEnv), { name: CONTAINER_NAME_ENV, value: container.name }, ...others];
}

/** Whether a checkpointed container had the hook socket mounted (its restore needs it again). */
export function recordsHookMount(mountDestinations: readonly string[] | undefined): boolean {
  return mountDestinations?.includes(HOOK_MOUNT_PATH) ?? false;
}
