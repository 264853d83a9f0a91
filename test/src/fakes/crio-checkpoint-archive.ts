/**
 * Turns what LabContainer.checkpoint wrote (CRIU's images, dump.log, stats-dump and the lab's
 * spec.dump, all in one directory) into the archive CRI-O writes for the kubelet: an uncompressed
 * tar, mode 0600, holding
 *
 *   checkpoint/        CRIU's images (descriptors.json included)
 *   config.dump        CRI-O's ContainerConfig (id, name = k8s_<container>_<pod>_<ns>_<uid>_<attempt>, images, times)
 *   spec.dump          the container's OCI spec, with the annotations CRI-O puts there
 *   bind.mounts        [{source, destination, file_type, permissions}] of the bind mounts
 *   rootfs-diff.tar    changed files; the lab's root is read-only, so an empty tar (CRI-O leaves
 *                      the file out when nothing changed: readers must take both)
 *   stats-dump, dump.log
 *   io.kubernetes.cri-o.LogPath   the container's log (CRI-O names the file after the annotation)
 *
 * Layout and field names follow CRI-O's internal/lib/checkpoint.go; the `file_type` key of
 * bind.mounts is CRI-O's JSON tag. The tar is written to a dot-file beside its final name and
 * renamed, so nobody ever opens a half-written archive (packCheckpointArchive(), which
 * containerd-checkpoint-archive.ts, containerd's variant, shares).
 */
import { createHash, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, chmod, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { LabContainer } from '../harness/lab/lab-container.ts';
import { runCommand } from '../harness/lab/run-command.ts';

export interface ArchiveContainer {
  namespace: string;
  pod: string;
  podUid: string;
  container: string;
  lab: LabContainer;
  /** The image the pod spec names (config.dump rootfsImage and rootfsImageName). */
  image: string;
}

/** CRI-O's container-level mounts that never go into bind.mounts (libpod's list). */
const CONTAINER_MOUNTS = new Set(['/dev', '/dev/shm', '/proc', '/run', '/run/.containerenv', '/run/secrets', '/sys']);
/** The file CRI-O copies the container log to: literally the annotation's name. */
const LOG_FILE = 'io.kubernetes.cri-o.LogPath';
/** Go's zero time.Time, what CRI-O and containerd write as restoredTime of a container never restored. */
export const GO_ZERO_TIME = '0001-01-01T00:00:00Z';
/** An empty tar: two zero blocks, padded to GNU tar's default record of 20 blocks. */
export const EMPTY_TAR = Buffer.alloc(20 * 512);
/** Lab containers never restart: the attempt in the runtimes' names and restartCount. */
export const ATTEMPT = 0;
/** Lab paths of host files: the lab sees the host's root at /host (docs/lab.md). */
const LAB_HOST_PREFIX = '/host/';

export interface SpecMount {
  destination: string;
  type: string;
  source: string;
  options?: string[];
}

interface BindMountEntry {
  source: string;
  destination: string;
  file_type: 'directory' | 'file';
  permissions: number;
}

/** The kubelet's archive name: `checkpoint-<pod>_<namespace>-<container>-<RFC 3339 time>.tar`. */
export function kubeletArchiveName(namespace: string, pod: string, container: string, at: Date): string {
  return `checkpoint-${pod}_${namespace}-${container}-${rfc3339Seconds(at)}.tar`;
}

/** Go's time.RFC3339 in UTC: whole seconds, `Z`. */
export function rfc3339Seconds(at: Date): string {
  return at.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function hex64(...parts: string[]): string {
  return createHash('sha256').update(parts.join('\0')).digest('hex');
}

/** The lab's host paths (/host/x) as the host sees them (/x). */
export function hostPathOf(labPath: string): string {
  return labPath.startsWith(LAB_HOST_PREFIX) ? labPath.slice(LAB_HOST_PREFIX.length - 1) : labPath;
}

export async function exists(path: string): Promise<boolean> {
  return access(path, constants.F_OK).then(
    () => true,
    () => false,
  );
}

async function bindMountsOf(mounts: SpecMount[]): Promise<BindMountEntry[]> {
  const entries: BindMountEntry[] = [];
  for (const m of mounts) {
    if (m.type !== 'bind' || CONTAINER_MOUNTS.has(m.destination)) continue;
    const info = await stat(hostPathOf(m.source));
    entries.push({ source: m.source, destination: m.destination, file_type: info.isDirectory() ? 'directory' : 'file', permissions: info.mode & 0o777 });
  }
  return entries;
}

/** CRI-O's annotations on a container's spec (server/container_create_linux.go), for the lab container. */
function crioAnnotations(c: ArchiveContainer, ids: { containerId: string; sandboxId: string; crioName: string }, created: Date): Record<string, string> {
  const hash = hex64(c.namespace, c.pod, c.container).slice(0, 8);
  const kubeAnnotations = {
    'io.kubernetes.container.hash': hash,
    'io.kubernetes.container.restartCount': String(ATTEMPT),
    'io.kubernetes.container.terminationMessagePath': '/dev/termination-log',
    'io.kubernetes.container.terminationMessagePolicy': 'File',
    'io.kubernetes.pod.terminationGracePeriod': '30',
  };
  const labels = {
    'io.kubernetes.container.name': c.container,
    'io.kubernetes.pod.name': c.pod,
    'io.kubernetes.pod.namespace': c.namespace,
    'io.kubernetes.pod.uid': c.podUid,
  };
  return {
    ...kubeAnnotations,
    ...labels,
    'io.container.manager': 'cri-o',
    'io.kubernetes.cri-o.Annotations': JSON.stringify(kubeAnnotations),
    'io.kubernetes.cri-o.ContainerID': ids.containerId,
    'io.kubernetes.cri-o.ContainerType': 'container',
    'io.kubernetes.cri-o.Created': created.toISOString(),
    'io.kubernetes.cri-o.IP.0': c.lab.pod.ip,
    'io.kubernetes.cri-o.Image': hex64('image', c.image),
    'io.kubernetes.cri-o.ImageName': c.image,
    'io.kubernetes.cri-o.ImageRef': hex64('image', c.image),
    'io.kubernetes.cri-o.Labels': JSON.stringify(labels),
    'io.kubernetes.cri-o.LogPath': `/var/log/pods/${c.namespace}_${c.pod}_${c.podUid}/${c.container}/${ATTEMPT}.log`,
    'io.kubernetes.cri-o.Metadata': JSON.stringify({ name: c.container, attempt: ATTEMPT }),
    'io.kubernetes.cri-o.Name': ids.crioName,
    'io.kubernetes.cri-o.SandboxID': ids.sandboxId,
    'io.kubernetes.cri-o.SandboxName': `k8s_${c.pod}_${c.namespace}_${c.podUid}_0`,
    'io.kubernetes.cri-o.Stdin': 'false',
    'io.kubernetes.cri-o.StdinOnce': 'false',
    'io.kubernetes.cri-o.TTY': 'false',
  };
}

/**
 * Packs `workDir` as CRI-O's archive at `archivePath`. `workDir/checkpoint` is what
 * LabContainer.checkpoint wrote; the other files are made in `workDir` beside it (the caller
 * removes the directory).
 */
export async function writeCrioCheckpointArchive(c: ArchiveContainer, workDir: string, archivePath: string, checkpointedAt: Date): Promise<void> {
  const images = join(workDir, 'checkpoint');
  // CRI-O gives CRIU its container directory as work dir: the logs and stats sit beside checkpoint/.
  for (const file of ['dump.log', 'stats-dump', 'spec.dump']) {
    if (await exists(join(images, file))) await rename(join(images, file), join(workDir, file));
  }
  const spec = JSON.parse(await readFile(join(workDir, 'spec.dump'), 'utf8')) as { annotations?: Record<string, string>; mounts: SpecMount[] };
  // The bundle's config.json is written just before crun starts the container.
  const created = (await stat(join(c.lab.bundleDir, 'config.json'))).mtime;
  const ids = {
    containerId: hex64('container', c.lab.id),
    sandboxId: hex64('sandbox', c.namespace, c.pod, c.podUid),
    crioName: `k8s_${c.container}_${c.pod}_${c.namespace}_${c.podUid}_${ATTEMPT}`,
  };
  spec.annotations = { ...spec.annotations, ...crioAnnotations(c, ids, created) };
  // Field order of CRI-O's ContainerConfig; metadata.WriteJSONFile indents by two spaces.
  const config = {
    id: ids.containerId,
    name: ids.crioName,
    rootfsImage: c.image,
    rootfsImageRef: hex64('image', c.image),
    rootfsImageName: c.image,
    runtime: 'crun',
    createdTime: created.toISOString(),
    checkpointedTime: checkpointedAt.toISOString(),
    restoredTime: GO_ZERO_TIME,
    restored: false,
  };
  const bindMounts = await bindMountsOf(spec.mounts);
  await writeFile(join(workDir, 'spec.dump'), JSON.stringify(spec, null, 2));
  await chmod(join(workDir, 'spec.dump'), 0o600); // the lab wrote it 0644; CRI-O's WriteJSONFile uses 0600
  await writeFile(join(workDir, 'config.dump'), JSON.stringify(config, null, 2), { mode: 0o600 });
  // CRI-O writes bind.mounts only when there is a bind mount.
  if (bindMounts.length > 0) await writeFile(join(workDir, 'bind.mounts'), JSON.stringify(bindMounts, null, 2), { mode: 0o600 });
  await writeFile(join(workDir, 'rootfs-diff.tar'), EMPTY_TAR, { mode: 0o600 });
  await writeFile(join(workDir, LOG_FILE), await readFile(c.lab.logFile).catch(() => Buffer.alloc(0)), { mode: 0o600 });

  await packCheckpointArchive(workDir, ['checkpoint', 'config.dump', 'spec.dump', 'bind.mounts', 'rootfs-diff.tar', 'stats-dump', 'dump.log', LOG_FILE], archivePath, {
    what: `the checkpoint of ${c.namespace}/${c.pod}/${c.container}`,
  });
}

/**
 * Tars the `entries` of `workDir` that exist, in that order (or by name with `sortByName`, as
 * containerd's archive.Diff walks them), into `archivePath`: mode 0600, written to a dot-file
 * beside it and renamed into place.
 */
export async function packCheckpointArchive(workDir: string, entries: string[], archivePath: string, options: { what: string; sortByName?: boolean }): Promise<void> {
  const present: string[] = [];
  for (const entry of entries) {
    if (await exists(join(workDir, entry))) present.push(entry);
  }
  // Made 0600 before tar fills it (GNU tar keeps an existing file's mode): it holds every memory page.
  const partial = join(dirname(archivePath), `.${basename(archivePath)}.${randomBytes(4).toString('hex')}.partial`);
  await writeFile(partial, '', { mode: 0o600, flag: 'wx' });
  try {
    const byName = options.sortByName === true;
    // containerd's archive.Diff walks its directory by name and writes pax headers, as Go's archive/tar does.
    const tar = await runCommand(
      ['tar', '--create', ...(byName ? ['--sort=name', '--format=pax'] : []), `--file=${partial}`, `--directory=${workDir}`, '--', ...(byName ? present.sort() : present)],
      { timeoutMs: 120_000 },
    );
    if (tar.code !== 0) throw new Error(`tar of ${options.what} failed (exit ${tar.code}): ${tar.stderr.trim()}`);
    await chmod(partial, 0o600);
    await rename(partial, archivePath);
  } catch (error) {
    await rm(partial, { force: true });
    throw error;
  }
}
