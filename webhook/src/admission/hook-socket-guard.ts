/**
 * The hook socket only where it belongs. The node agent serves each hook-enabled pod's socket at
 * `<--host-hooks-dir>/<pod uid>/agent.sock`, world-writable (pods run as any uid), and a process
 * that can reach a pod's socket can abort or stall that pod's checkpoints. A pod reaches a socket
 * only through a hostPath volume that covers the hooks directory (the directory itself, a parent
 * of it such as `/`, `/var` or `/var/run`, or anything under it), so every such volume and mount
 * is checked here, on every pod the webhook is sent and in every kind of container:
 *
 * - the one volume admitted is the one the webhook injects, `cryo-hooks` of exactly the hooks
 *   directory, and only in a pod with `cryo.dev/hooks: enabled`; any other hostPath covering the
 *   directory is refused, mounted or not (an ephemeral container could mount it later);
 * - app containers mount it only exactly as the webhook does: at /run/cryo with
 *   `subPathExpr: $(CRYO_POD_UID)` and CRYO_POD_UID from the downward API's metadata.uid, so each
 *   sees its own pod's directory and nothing else;
 * - init containers never mount it: they run before the app, no checkpoint happens while they
 *   run, and the agent has nothing to ask them; the webhook does not give them the socket either;
 * - ephemeral containers (kubectl debug, added by an UPDATE of pods/ephemeralcontainers) never
 *   mount it: they cannot use subPathExpr at all, so any mount of it would be the whole directory.
 *
 * manifests/hook-socket-policy.yaml holds the kube-apiserver to the same rule (for the default
 * directory) even for pods the webhook is not sent.
 *
 * With the CSI volume (--hook-socket-volume=csi, the default) the webhook injects an inline volume
 * of the driver hooks.cryo.dev instead, which can only ever be the pod's own directory (the node
 * agent mounts the directory of the pod the kubelet names). It is held to the same form all the
 * same: only in a hook-enabled pod, exactly as injected (no volumeAttributes), mounted only by app
 * containers and only as the webhook mounts it; hostPaths reaching the directory stay refused.
 */
import { posix } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { V1Container, V1EphemeralContainer, V1Pod, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import { annotations, HOOK_CSI_DRIVER, HOOK_MOUNT_PATH, HOOK_VOLUME_NAME, POD_UID_ENV } from '@cryo/common';
import { AdmissionDenial } from './admission-denial.ts';
import { hookMount, hookVolume, type HookSocketOptions } from './hook-socket-mutation.ts';

/**
 * A host path as the kubelet resolves it: absolute (a relative one is taken from the kubelet's
 * working directory, `/`), without `.`, `..`, repeated or trailing slashes. The API refuses `..`
 * in a hostPath, but the webhook runs before that validation, so it resolves them as the kernel
 * would (`..` of `/` is `/`).
 */
export function normalizeHostPath(path: string): string {
  const normalized = posix.normalize(`/${path}`);
  return normalized.length > 1 ? normalized.replace(/\/$/, '') : normalized;
}

/**
 * The spellings of the hooks directory. On most nodes /var/run is a symlink to /run (systemd,
 * the FHS), so /var/run/cryo/hooks and /run/cryo/hooks are one directory and a hostPath of `/run`
 * covers it as surely as one of `/var/run`: both spellings are checked, whichever is configured.
 * Other symlinks on the node cannot be seen from here.
 */
export function hooksDirSpellings(hostHooksDir: string): string[] {
  const dir = normalizeHostPath(hostHooksDir);
  if (isWithin(dir, '/var/run')) return [dir, dir.slice('/var'.length)];
  if (isWithin(dir, '/run')) return [dir, `/var${dir}`];
  return [dir];
}

function isWithin(path: string, dir: string): boolean {
  return dir === '/' || path === dir || path.startsWith(`${dir}/`);
}

/** Whether a host path is the hooks directory, a parent of it, or inside it, in any spelling. */
export function coversHooksDir(hostPath: string, hostHooksDir: string): boolean {
  const path = normalizeHostPath(hostPath);
  return hooksDirSpellings(hostHooksDir).some((dir) => isWithin(dir, path) || isWithin(path, dir));
}

/**
 * The objects of a list in the pod. A pod without a cryo.dev/ annotation is read here without
 * pod-shape.ts having checked it (the apiserver's typed decoding makes it well-formed, but a
 * hand-made review need not be), so nothing is assumed: what is not a list of objects is skipped.
 */
function objectsIn<T extends object>(value: readonly T[] | undefined): T[] {
  return Array.isArray(value) ? value.filter((item): item is T => typeof item === 'object' && item !== null) : [];
}

/** Whether a volume is an inline volume of the hook socket's CSI driver. */
function isHookCsiVolume(volume: V1Volume): boolean {
  const csi: unknown = volume.csi;
  return typeof csi === 'object' && csi !== null && (csi as { driver?: unknown }).driver === HOOK_CSI_DRIVER;
}

/**
 * The pod's hostPath volumes that reach the hooks directory, and its volumes of the hook CSI
 * driver. A hostPath without a string path (no pod the apiserver sends) is read as `/`, so it is
 * refused rather than let through.
 */
export function hookDirVolumes(pod: V1Pod, hostHooksDir: string): V1Volume[] {
  return objectsIn(pod.spec?.volumes).filter((v) => {
    if (isHookCsiVolume(v)) return true;
    const hostPath: unknown = v.hostPath;
    if (typeof hostPath !== 'object' || hostPath === null) return false;
    const path = (hostPath as { path?: unknown }).path;
    return coversHooksDir(typeof path === 'string' ? path : '/', hostHooksDir);
  });
}

type AnyContainer = V1Container | V1EphemeralContainer;

function containersOf(pod: V1Pod): Array<{ kind: string; container: AnyContainer }> {
  const spec = pod.spec;
  return [
    ...objectsIn(spec?.initContainers).map((container) => ({ kind: 'init container', container })),
    ...objectsIn(spec?.containers).map((container) => ({ kind: 'container', container })),
    ...objectsIn<AnyContainer>(spec?.ephemeralContainers).map((container) => ({ kind: 'ephemeral container', container })),
  ];
}

function mountsOf(container: AnyContainer, volumeNames: ReadonlySet<string>): V1VolumeMount[] {
  return objectsIn(container.volumeMounts).filter((m) => volumeNames.has(m.name));
}

/**
 * CREATE: the pod as the webhook is about to admit it (after it mounted the socket, if it did).
 * `hooks` is whether the pod is hook-enabled; only then may it hold the injected volume.
 */
export function assertHookSocketConfined(pod: V1Pod, options: HookSocketOptions & { hooks: boolean }): void {
  const { hostHooksDir, hooks } = options;
  const volumes = hookDirVolumes(pod, hostHooksDir);
  const injected = hookVolume(options);
  const injectedMount = hookMount(options.hookSocketVolume);
  for (const volume of volumes) {
    if (hooks && isDeepStrictEqual(volume, injected)) continue;
    throw volumeDenial(pod, volume, hostHooksDir, isDeepStrictEqual(volume, injected));
  }
  const names = new Set(volumes.map((v) => v.name));
  if (names.size === 0) return;
  for (const { kind, container } of containersOf(pod)) {
    for (const mount of mountsOf(container, names)) {
      if (kind === 'init container') throw initMountDenial(container, mount);
      if (kind === 'ephemeral container') throw ephemeralMountDenial(container, mount);
      if (!isDeepStrictEqual(mount, injectedMount)) throw alteredMountDenial(container, mount, injectedMount);
      if (!podUidFromDownwardApi(container)) {
        throw new AdmissionDenial(
          422,
          'hook-mount-altered',
          `container "${shown(container.name)}" mounts volume "${shown(mount.name)}" with subPathExpr $(${POD_UID_ENV}), but its ${POD_UID_ENV} ` +
            'is not the pod\'s uid from the downward API (valueFrom.fieldRef.fieldPath: metadata.uid), so the mount could be another ' +
            `pod's hook socket; remove ${POD_UID_ENV} from the container's env (the webhook sets it)`,
        );
      }
    }
  }
}

/**
 * UPDATE of pods/ephemeralcontainers (kubectl debug): the rest of the pod cannot change and was
 * judged at its creation, so only the ephemeral containers being added are. They may mount none
 * of the pod's volumes that reach the hooks directory, the injected one included.
 */
export function assertEphemeralContainersConfined(pod: V1Pod, oldPod: V1Pod | undefined, hostHooksDir: string): void {
  const names = new Set(hookDirVolumes(pod, hostHooksDir).map((v) => v.name));
  if (names.size === 0) return;
  const existing = new Set(objectsIn(oldPod?.spec?.ephemeralContainers).map((c) => c.name));
  for (const container of objectsIn(pod.spec?.ephemeralContainers)) {
    if (existing.has(container.name)) continue;
    const [mount] = mountsOf(container, names);
    if (mount !== undefined) throw ephemeralMountDenial(container, mount);
  }
}

/** Every CRYO_POD_UID of the container is metadata.uid (the last one wins), and there is one. */
function podUidFromDownwardApi(container: AnyContainer): boolean {
  const vars = objectsIn(container.env).filter((e) => e.name === POD_UID_ENV);
  return vars.length > 0 && vars.every((e) => (e.value ?? '') === '' && e.valueFrom?.fieldRef?.fieldPath === 'metadata.uid');
}

/**
 * A name or path from the pod, for a message. Of a pod pod-shape.ts has not checked (no cryo.dev/
 * annotation) it may be anything: an object whose `toString` is not a function would make a
 * template literal throw.
 */
function shown(value: unknown): string {
  if (typeof value === 'string') return value;
  return `(${value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`}, not a string)`;
}

function mountersOf(pod: V1Pod, volumeName: string): string {
  const mounters = containersOf(pod)
    .filter(({ container }) => mountsOf(container, new Set([volumeName])).length > 0)
    .map(({ kind, container }) => `${kind} "${shown(container.name)}"`);
  return mounters.length > 0 ? `mounted by ${mounters.join(', ')}` : 'mounted by no container yet; an ephemeral container could';
}

function volumeDenial(pod: V1Pod, volume: V1Volume, hostHooksDir: string, isInjected: boolean): AdmissionDenial {
  if (isHookCsiVolume(volume)) {
    return new AdmissionDenial(
      422,
      'hook-csi-volume',
      `volume "${shown(volume.name)}" (CSI driver ${HOOK_CSI_DRIVER}, ${mountersOf(pod, volume.name)}) is Cryo's hook socket volume, which the webhook ` +
        `adds itself (as "${HOOK_VOLUME_NAME}", readOnly, without volumeAttributes) to pods annotated ${annotations.HOOKS}: ${annotations.HOOKS_ENABLED}; ` +
        `remove the volume and its mounts, and annotate the pod ${annotations.HOOKS}: ${annotations.HOOKS_ENABLED} to have its own hook socket mounted`,
    );
  }
  const where = `volume "${shown(volume.name)}" (hostPath ${shown(volume.hostPath!.path)}, ${mountersOf(pod, volume.name)})`;
  if (isInjected) {
    return new AdmissionDenial(
      422,
      'hook-dir-host-path',
      `${where} is Cryo's hook socket volume, but the pod is not annotated ${annotations.HOOKS}: ${annotations.HOOKS_ENABLED}; ` +
        `remove the volume and its mounts, and annotate the pod ${annotations.HOOKS}: ${annotations.HOOKS_ENABLED} to have its own hook socket mounted`,
    );
  }
  const spellings = hooksDirSpellings(hostHooksDir);
  return new AdmissionDenial(
    422,
    'hook-dir-host-path',
    `${where} reaches Cryo's hook directory ${spellings.join(' (also ')}${spellings.length > 1 ? ')' : ''}, which holds every pod's ` +
      `hook socket; mount a host directory outside it instead, and for this pod's own hook socket annotate it ${annotations.HOOKS}: ` +
      `${annotations.HOOKS_ENABLED} and declare no such volume (the webhook adds "${HOOK_VOLUME_NAME}")`,
  );
}

function initMountDenial(container: AnyContainer, mount: V1VolumeMount): AdmissionDenial {
  return new AdmissionDenial(
    422,
    'hook-mount-in-init-container',
    `init container "${shown(container.name)}" mounts volume "${shown(mount.name)}", Cryo's hook directory: init containers never get the ` +
      'hook socket (no checkpoint happens before the app containers run); remove that volumeMount',
  );
}

function ephemeralMountDenial(container: AnyContainer, mount: V1VolumeMount): AdmissionDenial {
  return new AdmissionDenial(
    422,
    'hook-mount-in-ephemeral-container',
    `ephemeral container "${shown(container.name)}" mounts volume "${shown(mount.name)}", Cryo's hook directory: ephemeral containers never ` +
      `get the hook socket (they cannot mount only their pod's part of it); remove that volumeMount (the app containers have the socket at ${HOOK_MOUNT_PATH})`,
  );
}

function alteredMountDenial(container: AnyContainer, mount: V1VolumeMount, expected: V1VolumeMount): AdmissionDenial {
  const how =
    mount.subPath !== undefined && mount.subPath !== ''
      ? `with subPath ${JSON.stringify(shown(mount.subPath))}`
      : mount.subPathExpr !== undefined && mount.subPathExpr !== ''
        ? `with subPathExpr ${JSON.stringify(shown(mount.subPathExpr))}`
        : expected.subPathExpr === undefined ? 'differently' : 'whole (every pod\'s directory)';
  const extra = Object.keys(mount).filter((k) => !['name', 'mountPath', 'subPath', 'subPathExpr'].includes(k) && !(k === 'readOnly' && expected.readOnly === true));
  const form = expected.subPathExpr !== undefined ? `with subPathExpr ${expected.subPathExpr}` : 'read-only';
  return new AdmissionDenial(
    422,
    'hook-mount-altered',
    `container "${shown(container.name)}" mounts volume "${shown(mount.name)}" at ${shown(mount.mountPath)} ${how}${extra.length > 0 ? ` setting ${extra.join(', ')}` : ''}, ` +
      `but Cryo's hook directory is mounted only at ${expected.mountPath} ${form} and nothing else ` +
      '(this pod\'s own directory); remove that volumeMount: the webhook adds the right one to every app container',
  );
}
