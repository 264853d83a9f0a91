/**
 * `cryo.dev/hooks: enabled`: mount the pod's own directory of the node agent's hook directory
 * into every app container and tell the SDK where the socket is.
 *
 * The host directory is mounted with `subPathExpr: $(CRYO_POD_UID)`, the env var coming from the
 * downward API, so a container only ever sees `<host dir>/<its pod uid>`. Any CRYO_POD_UID the
 * pod sets itself is dropped first: otherwise it could point the subPath at another pod's socket.
 * Init containers never get the mount (no checkpoint happens while they run), nor do ephemeral
 * ones. Whether anything else in the pod reaches the hook directory is hook-socket-guard.ts's
 * question: this module only adds what is missing.
 */
import { posix } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { V1Container, V1EnvVar, V1Pod, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import { annotations, cloneJson, CONTAINER_NAME_ENV, HOOK_MOUNT_PATH, HOOK_SOCKET_ENV, HOOK_SOCKET_PATH, HOOK_VOLUME_NAME, POD_UID_ENV } from '@cryo/common';
import { AdmissionDenial } from './admission-denial.ts';

export function hookVolume(hostHooksDir: string): V1Volume {
  return { name: HOOK_VOLUME_NAME, hostPath: { path: hostHooksDir, type: 'DirectoryOrCreate' } };
}

/** The one mount of the hook volume there is: this pod's own directory, at /run/cryo. */
export function hookMount(): V1VolumeMount {
  return { name: HOOK_VOLUME_NAME, mountPath: HOOK_MOUNT_PATH, subPathExpr: `$(${POD_UID_ENV})` };
}

const hookEnv: V1EnvVar[] = [
  { name: POD_UID_ENV, valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.uid' } } },
  { name: HOOK_SOCKET_ENV, value: HOOK_SOCKET_PATH },
];

export function applyHookSocket(pod: V1Pod, options: { hostHooksDir: string }): void {
  const spec = pod.spec!;
  const volume = hookVolume(options.hostHooksDir);
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
  for (const container of spec.containers ?? []) mountInto(container);
  // A mounted socket and `cryo.dev/hooks: enabled` go together: the node agent serves a socket
  // for exactly the pods so annotated (a restore may turn hooks on without the user asking).
  const podAnnotations = ((pod.metadata ??= {}).annotations ??= {});
  podAnnotations[annotations.HOOKS] = annotations.HOOKS_ENABLED;
  podAnnotations[annotations.HOOKS_STATUS] = annotations.HOOKS_STATUS_INJECTED;
}

/** A container path without `.`, `..`, repeated or trailing slashes: /run/cryo/ is /run/cryo. */
const normalizePath = (path: string) => posix.normalize(path).replace(/(.)\/$/, '$1');

function mountInto(container: V1Container): void {
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
  const mount = hookMount();
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
