/**
 * Test helper: checkpoint archives laid out as CRI-O and containerd write them for the kubelet
 * (or as Podman's `--export --compress=none` does), with memory pages of any size from random
 * bytes, so tests and benchmarks get realistic archives without CRIU. It can also spoil them the
 * ways real ones get spoiled: cut short inside a member or before the end-of-archive blocks, a
 * member missing, a member's content replaced (bad JSON).
 *
 * CRI-O's layout (its member order: stats-dump, dump.log, checkpoint/, config.dump, spec.dump,
 * bind.mounts, rootfs-diff.tar):
 *   config.dump      CRI-O's ContainerConfig: id, name (k8s_<container>_<pod>_<ns>_<uid>_0),
 *                    rootfsImage, rootfsImageRef, rootfsImageName, runtime, times, restored
 *   spec.dump        an OCI spec with the io.kubernetes.* annotations and the mounts CRI-O gives
 *                    a pod's container (system ones, /etc/hosts, the termination log, the service
 *                    account token, and one bind mount per `volumeMounts` entry)
 *   bind.mounts      CRI-O's list of the bind mounts outside its own system list
 *   checkpoint/      inventory.img, pstree.img, core-1.img, pages-1.img (`pagesBytes` random bytes)
 *   rootfs-diff.tar  a small tar of one changed file
 *   stats-dump, dump.log (its first line carries the CRIU version)
 *
 * containerd's (2.1, internal/cri/server/container_checkpoint_linux.go; members in name order,
 * as its archive.Diff walks the directory):
 *   checkpoint/      the same CRIU images
 *   config.dump      checkpointctl's ContainerConfig, unindented: id, name
 *                    (<container>_<pod>_<ns>_<uid>_0), rootfsImage and rootfsImageName (the
 *                    image's tag), rootfsImageRef (<repository>@sha256:…, what its restore pulls),
 *                    runtime io.containerd.runc.v2, times, restored
 *   container.log    the CRI log so far
 *   dump.log, stats-dump (CRIU's work directory is the archive's root)
 *   rootfs-diff.tar  gzip-compressed (a containerd diff layer)
 *   spec.dump        an OCI spec with containerd's io.kubernetes.cri.* annotations (not the
 *                    kubelet's: those are in status.dump) and its mounts: defaults, then the CRI
 *                    mounts and its own /etc/hostname, /etc/resolv.conf and /dev/shm by depth
 *   status           containerd's internal container status
 *   status.dump      the CRI ContainerStatus as Go's encoding/json writes it (snake_case):
 *                    metadata, image, image_ref, the kubelet's labels and annotations, mounts
 *   no bind.mounts, no deleted.files
 */
import { open, stat, truncate } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { TarWriter, tarOf } from './tar-writer.ts';

export { TarWriter, tarOf } from './tar-writer.ts';
export type { TarEntryOptions } from './tar-writer.ts';

export interface CheckpointArchiveSpec {
  /** Directory to write into (must exist). */
  dir: string;
  /** Default: the kubelet's `checkpoint-<pod>_<namespace>-<container>-<time>.tar`. */
  fileName?: string;
  engine?: CheckpointArchiveEngine;
  pod?: { name: string; namespace: string; uid: string };
  containerName?: string;
  image?: string;
  /** config.dump rootfsImageRef (Podman: rootfsImageID). Default: an image id, or for containerd `<image's repository>@<that id>`. */
  imageRef?: string;
  /** Default crun, for containerd its shim io.containerd.runc.v2. */
  runtime?: string;
  createdTime?: string;
  checkpointedTime?: string;
  /** The version dump.log names; null writes no dump.log. */
  criuVersion?: string | null;
  /** Destinations of the pod's volume mounts (bind mounts from the kubelet's volume directories). */
  volumeMounts?: string[];
  /** Mount the service account token at /var/run/secrets/kubernetes.io/serviceaccount (CRI-O and containerd; default true). */
  serviceAccountToken?: boolean;
  /** Size of checkpoint/pages-1.img, random bytes (default 64 KiB). */
  pagesBytes?: number;
  /** Members to leave out, by name (`config.dump`, `checkpoint/pstree.img`, ...). */
  omit?: string[];
  /** Members whose content to replace, by name (e.g. `{ 'spec.dump': '{not json' }`). */
  contents?: Record<string, string | Buffer>;
  /** Cut the archive: in the middle of pages-1.img, just before the end-of-archive blocks, or to a byte count. */
  truncate?: 'inside-pages' | 'before-end-blocks' | { bytes: number };
}

export type CheckpointArchiveEngine = 'cri-o' | 'containerd' | 'podman';

export interface BuiltCheckpointArchive {
  path: string;
  sizeBytes: number;
  engine: CheckpointArchiveEngine;
  containerName: string;
  pod: { name: string; namespace: string; uid: string };
  image: string;
  imageRef: string;
  runtime: string;
  criuVersion: string;
  /** What readCheckpointArchive() should report as mountDestinations. */
  expectedMountDestinations: string[];
  /** Where each member's data starts and how long it is (before any truncation). */
  members: Record<string, { dataOffset: number; size: number }>;
}

const DEFAULT_POD = { name: 'orders-api-7c9f8d6b5-x2vqz', namespace: 'shop', uid: '6f1c2b9e-8d4a-4e5f-9a7b-3c2d1e0f9a8b' };
const SERVICE_ACCOUNT_PATH = '/var/run/secrets/kubernetes.io/serviceaccount';
const IMAGE_DIGEST = 'sha256:3f4e5d6c7b8a99887766554433221100ffeeddccbbaa99887766554433221100';
/** What containerd's config.dump names as runtime: the shim, not the OCI runtime it runs. */
const CONTAINERD_RUNC_SHIM = 'io.containerd.runc.v2';

/** `registry.example/shop/app:1` → `registry.example/shop/app` (a registry's port is not a tag). */
function repositoryOf(image: string): string {
  return image.replace(/@.*$/, '').replace(/:[^/:]+$/, '');
}

/** An RFC 3339 time as Unix nanoseconds, what CRI statuses count in. */
function unixNanos(rfc3339: string): number {
  return Date.parse(rfc3339) * 1e6;
}

export async function buildCheckpointArchive(spec: CheckpointArchiveSpec): Promise<BuiltCheckpointArchive> {
  const engine = spec.engine ?? 'cri-o';
  const pod = spec.pod ?? DEFAULT_POD;
  const containerName = spec.containerName ?? 'app';
  const image = spec.image ?? 'registry.example/shop/orders-api:1.4.2';
  const imageRef = spec.imageRef ?? (engine === 'containerd' ? `${repositoryOf(image)}@${IMAGE_DIGEST}` : IMAGE_DIGEST);
  const runtime = spec.runtime ?? (engine === 'containerd' ? CONTAINERD_RUNC_SHIM : 'crun');
  const criuVersion = spec.criuVersion === undefined ? '4.2' : spec.criuVersion;
  const checkpointedTime = spec.checkpointedTime ?? '2026-12-01T10:00:00.123456789Z';
  const createdTime = spec.createdTime ?? '2026-12-01T09:00:00.5Z';
  const volumeMounts = spec.volumeMounts ?? ['/data'];
  const stamp = checkpointedTime.replace(/\.\d+Z$/, 'Z');
  const fileName = spec.fileName ?? `checkpoint-${pod.name}_${pod.namespace}-${containerName}-${stamp}.tar`;
  const archivePath = path.join(spec.dir, fileName);
  const omit = new Set(spec.omit ?? []);
  const contents = spec.contents ?? {};

  const serviceAccountToken = spec.serviceAccountToken ?? true;
  const kubeLayout = { pod, containerName, image, imageRef, runtime, createdTime, checkpointedTime, volumeMounts, serviceAccountToken };
  const layout =
    engine === 'cri-o' ? { ...crioLayout(kubeLayout), status: undefined } : engine === 'containerd' ? containerdLayout(kubeLayout) : { ...podmanLayout({ containerName, image, imageRef, runtime, createdTime, volumeMounts }), status: undefined };

  const members: BuiltCheckpointArchive['members'] = {};
  const file = await open(archivePath, 'w', 0o600);
  try {
    const tar = new TarWriter(file);
    const put = async (name: string, content: string | Buffer) => {
      if (omit.has(name)) return;
      const data = Buffer.from(contents[name] ?? content);
      members[name] = { dataOffset: await tar.file(name, data, { mode: 0o600 }), size: data.length };
    };
    const pagesBytes = spec.pagesBytes ?? 64 * 1024;
    // Not real CRIU protobuf: the agent only checks that inventory.img and pstree.img exist.
    const criuImage: Record<string, () => Promise<void>> = {
      'inventory.img': () => put('checkpoint/inventory.img', Buffer.from('5443565419a0b3c2080210011a0a'.repeat(4), 'hex')),
      'pstree.img': () => put('checkpoint/pstree.img', Buffer.from('54435654d42a7c5f0a0808011001180120'.repeat(2), 'hex')),
      'core-1.img': () => put('checkpoint/core-1.img', Buffer.alloc(2304, 7)),
      'pages-1.img': async () => {
        if (omit.has('checkpoint/pages-1.img')) return;
        if (contents['checkpoint/pages-1.img'] !== undefined) await put('checkpoint/pages-1.img', contents['checkpoint/pages-1.img']);
        else members['checkpoint/pages-1.img'] = { dataOffset: await tar.randomFile('checkpoint/pages-1.img', pagesBytes, { mode: 0o600 }), size: pagesBytes };
      },
    };
    /** CRI-O and Podman tar CRIU's images in the order CRIU wrote them, containerd by name. */
    const criuImages = async (order = ['inventory.img', 'pstree.img', 'core-1.img', 'pages-1.img']) => {
      if (!omit.has('checkpoint/')) await tar.directory('checkpoint/', { mode: 0o700 });
      for (const name of order) await criuImage[name]();
    };
    const dumpLog = criuVersion === null ? undefined : `(00.000000) Version: ${criuVersion} (gitid v${criuVersion})\n(00.000050) Running on node-1 Linux 6.18.44 #1 SMP x86_64\n(00.000120) Dumping processes (pid: 4242 comm: app)\n(00.340000) Dumping finished successfully\n`;
    const statsDump = Buffer.from('40591055063309572300000a2108fd0710f7d60a18df0820ab022832300038224000480050085808600068007000', 'hex');

    if (engine === 'cri-o') {
      await put('stats-dump', statsDump);
      if (dumpLog !== undefined) await put('dump.log', dumpLog);
      await criuImages();
      await put('config.dump', JSON.stringify(layout.config, null, 2));
      await put('spec.dump', JSON.stringify(layout.spec, null, 2));
      if (layout.bindMounts.length > 0) await put('bind.mounts', JSON.stringify(layout.bindMounts, null, 2));
      await put('rootfs-diff.tar', tarOf({ 'tmp/warm.marker': 'warmed\n' }));
    } else if (engine === 'containerd') {
      await criuImages(Object.keys(criuImage).sort());
      // containerd marshals these with json.Marshal: no indentation.
      await put('config.dump', JSON.stringify(layout.config));
      await put('container.log', `${createdTime} stdout F started\n${createdTime} stdout F warmed\n`);
      if (dumpLog !== undefined) await put('dump.log', dumpLog);
      await put('rootfs-diff.tar', gzipSync(tarOf({ 'tmp/warm.marker': 'warmed\n' })));
      await put('spec.dump', JSON.stringify(layout.spec));
      await put('stats-dump', statsDump);
      await put('status', JSON.stringify({ Version: 'v1', Pid: 4242, CreatedAt: unixNanos(createdTime), StartedAt: unixNanos(createdTime), FinishedAt: 0, ExitCode: 0, Reason: '', Message: '', Resources: null, Restore: false }));
      await put('status.dump', JSON.stringify(layout.status));
    } else {
      if (!omit.has('artifacts/')) await tar.directory('artifacts/');
      await put('devshm-checkpoint.tar', tarOf({}));
      await put('config.dump', JSON.stringify(layout.config, null, 2));
      await put('spec.dump', JSON.stringify(layout.spec, null, 2));
      await put('network.status', 'null');
      await put('stats-dump', statsDump);
      if (dumpLog !== undefined) await put('dump.log', dumpLog);
      await put('ctr.log', '2026-12-01T10:00:00.000000000+00:00 stdout F count=1\n');
      await criuImages();
      await put('rootfs-diff.tar', tarOf({ 'count.txt': '5\n' }));
    }
    await tar.end();
  } finally {
    await file.close();
  }

  let sizeBytes = (await stat(archivePath)).size;
  if (spec.truncate !== undefined) {
    const pages = members['checkpoint/pages-1.img'];
    const cut =
      spec.truncate === 'inside-pages'
        ? pages.dataOffset + Math.floor(pages.size / 2)
        : spec.truncate === 'before-end-blocks'
          ? sizeBytes - 1024
          : spec.truncate.bytes;
    await truncate(archivePath, cut);
    sizeBytes = cut;
  }

  return {
    path: archivePath,
    sizeBytes,
    engine,
    containerName,
    pod: engine === 'podman' ? { name: '', namespace: '', uid: '' } : pod,
    image,
    imageRef,
    runtime,
    criuVersion: criuVersion ?? '',
    expectedMountDestinations: engine !== 'podman' && serviceAccountToken ? [...volumeMounts, SERVICE_ACCOUNT_PATH] : [...volumeMounts],
    members,
  };
}

interface OciMount {
  destination: string;
  type: string;
  source: string;
  options: string[];
}

const SYSTEM_MOUNTS: OciMount[] = [
  { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
  { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
  { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
  { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
  { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
  { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
];

/** CRI-O leaves these out of bind.mounts (its containerMounts list). */
const CRIO_BIND_MOUNTS_SKIPPED = new Set(['/dev', '/dev/shm', '/proc', '/run', '/run/.containerenv', '/run/secrets', '/sys']);

function bind(destination: string, source: string, readOnly = false): OciMount {
  return { destination, type: 'bind', source, options: ['rbind', 'rprivate', readOnly ? 'ro' : 'rw'] };
}

/** What the layouts of a pod's container (CRI-O's, containerd's) are made from. */
interface KubeLayoutInput {
  pod: { name: string; namespace: string; uid: string };
  containerName: string;
  image: string;
  imageRef: string;
  runtime: string;
  createdTime: string;
  checkpointedTime: string;
  volumeMounts: string[];
  serviceAccountToken: boolean;
}

function crioLayout(o: KubeLayoutInput) {
  const id = 'c0ffee'.padEnd(64, '0');
  const sandbox = `/run/containers/storage/overlay-containers/${'5a4d'.padEnd(64, '1')}/userdata`;
  const podDir = `/var/lib/kubelet/pods/${o.pod.uid}`;
  const mounts: OciMount[] = [
    ...SYSTEM_MOUNTS,
    bind('/dev/shm', `${sandbox}/shm`),
    bind('/etc/resolv.conf', `${sandbox}/resolv.conf`),
    bind('/etc/hostname', `${sandbox}/hostname`),
    bind('/run/.containerenv', `${sandbox}/.containerenv`),
    bind('/etc/hosts', `${podDir}/etc-hosts`),
    bind('/dev/termination-log', `${podDir}/containers/${o.containerName}/0c1d2e3f`),
    ...o.volumeMounts.map((destination, i) => bind(destination, `${podDir}/volumes/kubernetes.io~empty-dir/volume-${i}`)),
    ...(o.serviceAccountToken ? [bind(SERVICE_ACCOUNT_PATH, `${podDir}/volumes/kubernetes.io~projected/kube-api-access-x7k2p`, true)] : []),
  ];
  const annotations: Record<string, string> = {
    'io.container.manager': 'cri-o',
    'io.kubernetes.container.name': o.containerName,
    'io.kubernetes.container.hash': '8d3e2f1a',
    'io.kubernetes.container.restartCount': '0',
    'io.kubernetes.container.terminationMessagePath': '/dev/termination-log',
    'io.kubernetes.container.terminationMessagePolicy': 'File',
    'io.kubernetes.cri-o.ContainerID': id,
    'io.kubernetes.cri-o.ContainerType': 'container',
    'io.kubernetes.cri-o.Created': o.createdTime,
    'io.kubernetes.cri-o.ImageName': o.image,
    'io.kubernetes.cri-o.ImageRef': o.imageRef,
    'io.kubernetes.cri-o.Metadata': JSON.stringify({ name: o.containerName }),
    'io.kubernetes.cri-o.Annotations': JSON.stringify({ 'cryo.dev/hooks': 'enabled' }),
    'io.kubernetes.pod.name': o.pod.name,
    'io.kubernetes.pod.namespace': o.pod.namespace,
    'io.kubernetes.pod.uid': o.pod.uid,
    'io.kubernetes.pod.terminationGracePeriod': '30',
  };
  return {
    config: configDumpOf(o, id, `k8s_${o.containerName}_${o.pod.name}_${o.pod.namespace}_${o.pod.uid}_0`),
    spec: ociSpec(annotations, mounts),
    bindMounts: mounts
      .filter((m) => m.type === 'bind' && !CRIO_BIND_MOUNTS_SKIPPED.has(m.destination))
      .map((m) => ({ source: m.source, destination: m.destination, file_type: m.destination.startsWith('/etc/') || m.destination === '/dev/termination-log' ? 'file' : 'directory', permissions: 0o755 })),
  };
}

/** config.dump: the same fields from CRI-O and containerd (checkpointctl's ContainerConfig); only the name's form differs. */
function configDumpOf(o: KubeLayoutInput, id: string, name: string) {
  return {
    id,
    name,
    rootfsImage: o.image,
    rootfsImageRef: o.imageRef,
    rootfsImageName: o.image,
    runtime: o.runtime,
    createdTime: o.createdTime,
    checkpointedTime: o.checkpointedTime,
    restoredTime: '0001-01-01T00:00:00Z',
    restored: false,
  };
}

/** The CRI mount of a kubelet volume, as status.dump records it (Go's omitempty drops false). */
interface CriMount {
  container_path: string;
  host_path: string;
  readonly?: boolean;
}

function containerdLayout(o: KubeLayoutInput) {
  const id = 'c7d0'.padEnd(64, '2');
  const sandboxId = '5b0c'.padEnd(64, '3');
  const sandboxState = `/var/lib/containerd/io.containerd.grpc.v1.cri/sandboxes/${sandboxId}`;
  const podDir = `/var/lib/kubelet/pods/${o.pod.uid}`;
  // The kubelet's CRI mounts: the volumes (the token among them), then /etc/hosts and the termination log.
  const criMounts: CriMount[] = [
    ...o.volumeMounts.map((destination, i) => ({ container_path: destination, host_path: `${podDir}/volumes/kubernetes.io~empty-dir/volume-${i}` })),
    ...(o.serviceAccountToken ? [{ container_path: SERVICE_ACCOUNT_PATH, host_path: `${podDir}/volumes/kubernetes.io~projected/kube-api-access-x7k2p`, readonly: true }] : []),
    { container_path: '/etc/hosts', host_path: `${podDir}/etc-hosts` },
    { container_path: '/dev/termination-log', host_path: `${podDir}/containers/${o.containerName}/0c1d2e3f` },
  ];
  // containerd's own from the sandbox, then all of them ordered by depth (stable), as its withMounts does.
  const sandboxMounts: CriMount[] = [
    { container_path: '/etc/hostname', host_path: `${sandboxState}/hostname` },
    { container_path: '/etc/resolv.conf', host_path: `${sandboxState}/resolv.conf` },
    { container_path: '/dev/shm', host_path: `/run/containerd/io.containerd.grpc.v1.cri/sandboxes/${sandboxId}/shm` },
  ];
  const depth = (m: CriMount) => m.container_path.split('/').length;
  const mounts: OciMount[] = [...SYSTEM_MOUNTS, ...[...criMounts, ...sandboxMounts].sort((a, b) => depth(a) - depth(b)).map((m) => bind(m.container_path, m.host_path, m.readonly))];
  const created = unixNanos(o.createdTime);
  return {
    config: configDumpOf(o, id, `${o.containerName}_${o.pod.name}_${o.pod.namespace}_${o.pod.uid}_0`),
    spec: ociSpec(
      {
        'io.kubernetes.cri.container-type': 'container',
        'io.kubernetes.cri.container-name': o.containerName,
        'io.kubernetes.cri.image-name': o.image,
        'io.kubernetes.cri.sandbox-id': sandboxId,
        'io.kubernetes.cri.sandbox-name': o.pod.name,
        'io.kubernetes.cri.sandbox-namespace': o.pod.namespace,
        'io.kubernetes.cri.sandbox-uid': o.pod.uid,
      },
      mounts,
    ),
    bindMounts: [],
    // runtime.ContainerStatus; state 1 is CONTAINER_RUNNING, attempt 0 is left out as empty.
    status: {
      id,
      metadata: { name: o.containerName },
      state: 1,
      created_at: created,
      started_at: created,
      image: { image: o.image },
      image_ref: o.imageRef,
      labels: {
        'io.kubernetes.container.name': o.containerName,
        'io.kubernetes.pod.name': o.pod.name,
        'io.kubernetes.pod.namespace': o.pod.namespace,
        'io.kubernetes.pod.uid': o.pod.uid,
      },
      annotations: {
        'io.kubernetes.container.hash': '8d3e2f1a',
        'io.kubernetes.container.restartCount': '0',
        'io.kubernetes.container.terminationMessagePath': '/dev/termination-log',
        'io.kubernetes.container.terminationMessagePolicy': 'File',
        'io.kubernetes.pod.terminationGracePeriod': '30',
      },
      mounts: criMounts,
      log_path: `/var/log/pods/${o.pod.namespace}_${o.pod.name}_${o.pod.uid}/${o.containerName}/0.log`,
      resources: { linux: { cpu_period: 100000, cpu_shares: 2, oom_score_adj: 1000 } },
      user: { linux: { uid: 0, gid: 0, supplemental_groups: [0] } },
    },
  };
}

function podmanLayout(o: { containerName: string; image: string; imageRef: string; runtime: string; createdTime: string; volumeMounts: string[] }) {
  const userdata = `/run/containers/storage/overlay-containers/${'7789'.padEnd(64, 'c')}/userdata`;
  const mounts: OciMount[] = [
    ...SYSTEM_MOUNTS,
    bind('/etc/hosts', `${userdata}/hosts`),
    bind('/dev/shm', `${userdata}/shm`),
    bind('/run/.containerenv', `${userdata}/.containerenv`),
    bind('/etc/hostname', `${userdata}/hostname`),
    ...o.volumeMounts.map((destination, i) => bind(destination, `/srv/volume-${i}`)),
  ];
  return {
    config: {
      id: '7789'.padEnd(64, 'c'),
      name: o.containerName,
      rootfsImageID: o.imageRef.replace(/^sha256:/, ''),
      rootfsImageName: o.image,
      runtime: o.runtime,
      createdTime: o.createdTime,
    },
    spec: ociSpec({ 'io.container.manager': 'libpod', 'org.opencontainers.image.stopSignal': '15' }, mounts),
    bindMounts: [],
  };
}

function ociSpec(annotations: Record<string, string>, mounts: OciMount[]) {
  return {
    ociVersion: '1.2.0',
    process: { user: { uid: 0, gid: 0 }, args: ['/app/server'], env: ['PATH=/usr/local/bin:/usr/bin:/bin'], cwd: '/' },
    root: { path: 'rootfs' },
    hostname: 'node-1',
    mounts,
    annotations,
    linux: { namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }] },
  };
}
