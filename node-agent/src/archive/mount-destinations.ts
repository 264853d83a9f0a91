/**
 * Which of a checkpointed container's mounts the restored container must have again.
 *
 * CRI-O refuses a restore ("restoring ... expects following bind mounts defined (...)") unless
 * every mount in the checkpoint's spec.dump, of any type, is in the new container's CRI mounts,
 * except the ones it sets up itself (server/container_restore.go, `ignoreMounts`): /proc, /dev,
 * /dev/pts, /dev/mqueue, /sys, /sys/fs/cgroup, /dev/shm, /etc/resolv.conf, /etc/hostname,
 * /run/secrets, /run/.containerenv. containerd checks nothing up front, but CRIU restores exactly
 * the mounts it dumped, so a missing one fails the restore all the same; what containerd sets up
 * itself is within that list (its default mounts, and /dev/shm, /etc/hostname and
 * /etc/resolv.conf from the sandbox). Of what is left, the kubelet itself adds /etc/hosts and the
 * termination message file (/dev/termination-log unless the container's terminationMessagePath
 * says otherwise) to every container's CRI mounts, so a pod spec never declares them and the
 * restored pod gets them anyway. Everything else came from the pod spec's volumeMounts (or from
 * the webhook, like the hook socket at /run/cryo) and must be declared again: that is this list.
 *
 * The source is spec.dump, since that is what CRI-O checks and what CRIU dumped. bind.mounts
 * (written by CRI-O only, for its bind mounts minus a shorter system list) is only used when
 * spec.dump has no mounts array: it is a subset of spec.dump's mounts and would miss a non-bind
 * mount CRI-O still asks for. containerd writes no bind.mounts.
 */

/** Mounts CRI-O's restore sets up itself (its ignoreMounts list). */
const RUNTIME_PROVIDED = new Set([
  '/proc',
  '/dev',
  '/dev/pts',
  '/dev/mqueue',
  '/sys',
  '/sys/fs/cgroup',
  '/dev/shm',
  '/etc/resolv.conf',
  '/etc/hostname',
  '/run/secrets',
  '/run/.containerenv',
]);

/** The kubelet adds /etc/hosts and the termination message file to every container's CRI request. */
const KUBELET_HOSTS = '/etc/hosts';
const DEFAULT_TERMINATION_MESSAGE_PATH = '/dev/termination-log';

export const TERMINATION_MESSAGE_PATH_ANNOTATION = 'io.kubernetes.container.terminationMessagePath';

export interface MountSources {
  /** spec.dump `mounts`, when it is an array. */
  specMounts: unknown[] | undefined;
  /** bind.mounts, when the archive has it. */
  bindMounts: unknown[] | undefined;
  /** Annotations carrying the kubelet's terminationMessagePath: spec.dump's (CRI-O), status.dump's (containerd). */
  annotations: Record<string, string>;
}

export function mountDestinations({ specMounts, bindMounts, annotations }: MountSources): string[] {
  const source = specMounts ?? bindMounts ?? [];
  const terminationPath = annotations[TERMINATION_MESSAGE_PATH_ANNOTATION] || DEFAULT_TERMINATION_MESSAGE_PATH;
  const result: string[] = [];
  for (const mount of source) {
    if (typeof mount !== 'object' || mount === null) continue;
    const destination = (mount as { destination?: unknown }).destination;
    if (typeof destination !== 'string' || destination === '') continue;
    // Compared as written, as CRI-O compares them.
    if (RUNTIME_PROVIDED.has(destination) || destination === KUBELET_HOSTS || destination === terminationPath) continue;
    if (!result.includes(destination)) result.push(destination);
  }
  return result;
}
