/**
 * containerd's variant of crio-checkpoint-archive.ts: turns what LabContainer.checkpoint wrote
 * (CRIU's images, dump.log, stats-dump and the lab's spec.dump, all in one directory) into the
 * archive containerd 2.1 writes for the kubelet (internal/cri/server/container_checkpoint_linux.go),
 * an uncompressed tar, mode 0600, its members in name order as containerd's archive.Diff walks
 * the directory:
 *
 *   checkpoint/        CRIU's images
 *   config.dump        checkpointctl's ContainerConfig (json.Marshal, unindented): id,
 *                      name = <container>_<pod>_<ns>_<uid>_<attempt>, rootfsImage and
 *                      rootfsImageName (the image), rootfsImageRef (<repository>@sha256:…, what its
 *                      restore pulls), runtime = its shim io.containerd.runc.v2, times
 *   container.log      the container's log so far
 *   dump.log, stats-dump   CRIU's work directory is the archive's root
 *   rootfs-diff.tar    the changed files as a gzip-compressed diff layer (the lab's root is
 *                      read-only: an empty one)
 *   spec.dump          the container's OCI spec with containerd's io.kubernetes.cri.* annotations
 *                      (the kubelet's own container annotations are not copied into the spec)
 *   status             containerd's internal container status ({"Version":"v1","Pid":…})
 *   status.dump        the CRI ContainerStatus (snake_case JSON, Go's omitempty): metadata, state,
 *                      image, image_ref, the kubelet's labels and annotations, its CRI mounts, log_path
 *
 * No bind.mounts, no deleted.files, no io.kubernetes.cri-o.LogPath. containerd's restore needs
 * status.dump; CRI-O cannot read this archive's identity (it has no CRI-O annotations).
 */
import { readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ATTEMPT, EMPTY_TAR, exists, GO_ZERO_TIME, hex64, hostPathOf, packCheckpointArchive, type ArchiveContainer, type SpecMount } from './crio-checkpoint-archive.ts';

/** The shim containerd names as a container's runtime; it runs runc. */
export const CONTAINERD_RUNC_SHIM = 'io.containerd.runc.v2';
/** runtime.ContainerState CONTAINER_RUNNING. */
const CONTAINER_RUNNING = 1;
/** Mounts of the OCI spec that are not CRI mounts: containerd's defaults. */
const SPEC_ONLY_MOUNTS = new Set(['/proc', '/dev', '/dev/pts', '/dev/mqueue', '/sys', '/sys/fs/cgroup']);

/** `registry/app:1` → `registry/app@sha256:<id>`: containerd's image_ref is the image's repository digest. */
function digestReference(image: string): string {
  return `${image.replace(/@.*$/, '').replace(/:[^/:]+$/, '')}@sha256:${hex64('image', image)}`;
}

/**
 * Packs `workDir` as containerd's archive at `archivePath`. `workDir/checkpoint` is what
 * LabContainer.checkpoint wrote; the other files are made in `workDir` beside it (the caller
 * removes the directory).
 */
export async function writeContainerdCheckpointArchive(c: ArchiveContainer, workDir: string, archivePath: string, checkpointedAt: Date): Promise<void> {
  const images = join(workDir, 'checkpoint');
  for (const file of ['dump.log', 'stats-dump', 'spec.dump']) {
    if (await exists(join(images, file))) await rename(join(images, file), join(workDir, file));
  }
  const spec = JSON.parse(await readFile(join(workDir, 'spec.dump'), 'utf8')) as { annotations?: Record<string, string>; mounts: SpecMount[] };
  // The bundle's config.json is written just before crun starts the container.
  const created = (await stat(join(c.lab.bundleDir, 'config.json'))).mtime;
  const createdNanos = created.getTime() * 1e6;
  const containerId = hex64('container', c.lab.id);
  const sandboxId = hex64('sandbox', c.namespace, c.pod, c.podUid);
  const imageRef = digestReference(c.image);
  spec.annotations = {
    ...spec.annotations,
    'io.kubernetes.cri.container-type': 'container',
    'io.kubernetes.cri.container-name': c.container,
    'io.kubernetes.cri.image-name': c.image,
    'io.kubernetes.cri.sandbox-id': sandboxId,
    'io.kubernetes.cri.sandbox-name': c.pod,
    'io.kubernetes.cri.sandbox-namespace': c.namespace,
    'io.kubernetes.cri.sandbox-uid': c.podUid,
  };
  // Field order of checkpointctl's ContainerConfig.
  const config = {
    id: containerId,
    name: `${c.container}_${c.pod}_${c.namespace}_${c.podUid}_${ATTEMPT}`,
    rootfsImage: c.image,
    rootfsImageRef: imageRef,
    rootfsImageName: c.image,
    runtime: CONTAINERD_RUNC_SHIM,
    createdTime: created.toISOString(),
    checkpointedTime: checkpointedAt.toISOString(),
    restoredTime: GO_ZERO_TIME,
    restored: false,
  };
  const status = {
    id: containerId,
    metadata: { name: c.container },
    state: CONTAINER_RUNNING,
    created_at: createdNanos,
    started_at: createdNanos,
    image: { image: c.image },
    image_ref: imageRef,
    labels: {
      'io.kubernetes.container.name': c.container,
      'io.kubernetes.pod.name': c.pod,
      'io.kubernetes.pod.namespace': c.namespace,
      'io.kubernetes.pod.uid': c.podUid,
    },
    annotations: {
      'io.kubernetes.container.hash': hex64(c.namespace, c.pod, c.container).slice(0, 8),
      'io.kubernetes.container.restartCount': String(ATTEMPT),
      'io.kubernetes.container.terminationMessagePath': '/dev/termination-log',
      'io.kubernetes.container.terminationMessagePolicy': 'File',
      'io.kubernetes.pod.terminationGracePeriod': '30',
    },
    // The CRI mounts: the spec's bind mounts, as the host names their sources.
    mounts: spec.mounts
      .filter((m) => m.type === 'bind' && !SPEC_ONLY_MOUNTS.has(m.destination))
      .map((m) => ({ container_path: m.destination, host_path: hostPathOf(m.source), ...(m.options?.includes('ro') ? { readonly: true } : {}) })),
    log_path: `/var/log/pods/${c.namespace}_${c.pod}_${c.podUid}/${c.container}/${ATTEMPT}.log`,
  };
  const internalStatus = { Version: 'v1', Pid: c.lab.pid, CreatedAt: createdNanos, StartedAt: createdNanos, FinishedAt: 0, ExitCode: 0, Reason: '', Message: '', Resources: null, Restore: false };

  await writeFile(join(workDir, 'spec.dump'), JSON.stringify(spec));
  await writeFile(join(workDir, 'config.dump'), JSON.stringify(config), { mode: 0o600 });
  await writeFile(join(workDir, 'status.dump'), JSON.stringify(status), { mode: 0o600 });
  await writeFile(join(workDir, 'status'), JSON.stringify(internalStatus), { mode: 0o600 });
  await writeFile(join(workDir, 'rootfs-diff.tar'), gzipSync(EMPTY_TAR), { mode: 0o600 });
  await writeFile(join(workDir, 'container.log'), await readFile(c.lab.logFile).catch(() => Buffer.alloc(0)), { mode: 0o600 });

  await packCheckpointArchive(workDir, ['checkpoint', 'config.dump', 'container.log', 'dump.log', 'rootfs-diff.tar', 'spec.dump', 'stats-dump', 'status', 'status.dump'], archivePath, {
    what: `the checkpoint of ${c.namespace}/${c.pod}/${c.container}`,
    sortByName: true,
  });
}
