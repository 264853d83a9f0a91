/**
 * Test helper: checkpoint archives laid out as CRI-O writes them for the kubelet (or as Podman's
 * `--export --compress=none` does), with memory pages of any size from random bytes, so tests and
 * benchmarks get realistic archives without CRIU. It can also spoil them the ways real ones get
 * spoiled: cut short inside a member or before the end-of-archive blocks, a member missing, a
 * member's content replaced (bad JSON).
 *
 * Layout (CRI-O's member order: stats-dump, dump.log, checkpoint/, config.dump, spec.dump,
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
 */
import { open, stat, truncate } from 'node:fs/promises';
import path from 'node:path';
import { TarWriter, tarOf } from './tar-writer.ts';

export { TarWriter, tarOf } from './tar-writer.ts';
export type { TarEntryOptions } from './tar-writer.ts';

export interface CheckpointArchiveSpec {
  /** Directory to write into (must exist). */
  dir: string;
  /** Default: the kubelet's `checkpoint-<pod>_<namespace>-<container>-<time>.tar`. */
  fileName?: string;
  engine?: 'cri-o' | 'podman';
  pod?: { name: string; namespace: string; uid: string };
  containerName?: string;
  image?: string;
  imageRef?: string;
  runtime?: string;
  createdTime?: string;
  checkpointedTime?: string;
  /** The version dump.log names; null writes no dump.log. */
  criuVersion?: string | null;
  /** Destinations of the pod's volume mounts (bind mounts from the kubelet's volume directories). */
  volumeMounts?: string[];
  /** Mount the service account token at /var/run/secrets/kubernetes.io/serviceaccount (CRI-O only; default true). */
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

export interface BuiltCheckpointArchive {
  path: string;
  sizeBytes: number;
  engine: 'cri-o' | 'podman';
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

export async function buildCheckpointArchive(spec: CheckpointArchiveSpec): Promise<BuiltCheckpointArchive> {
  const engine = spec.engine ?? 'cri-o';
  const pod = spec.pod ?? DEFAULT_POD;
  const containerName = spec.containerName ?? 'app';
  const image = spec.image ?? 'registry.example/shop/orders-api:1.4.2';
  const imageRef = spec.imageRef ?? 'sha256:3f4e5d6c7b8a99887766554433221100ffeeddccbbaa99887766554433221100';
  const runtime = spec.runtime ?? 'crun';
  const criuVersion = spec.criuVersion === undefined ? '4.2' : spec.criuVersion;
  const checkpointedTime = spec.checkpointedTime ?? '2026-12-01T10:00:00.123456789Z';
  const createdTime = spec.createdTime ?? '2026-12-01T09:00:00.5Z';
  const volumeMounts = spec.volumeMounts ?? ['/data'];
  const stamp = checkpointedTime.replace(/\.\d+Z$/, 'Z');
  const fileName = spec.fileName ?? `checkpoint-${pod.name}_${pod.namespace}-${containerName}-${stamp}.tar`;
  const archivePath = path.join(spec.dir, fileName);
  const omit = new Set(spec.omit ?? []);
  const contents = spec.contents ?? {};

  const layout = engine === 'cri-o'
    ? crioLayout({ pod, containerName, image, imageRef, runtime, createdTime, checkpointedTime, volumeMounts, serviceAccountToken: spec.serviceAccountToken ?? true })
    : podmanLayout({ containerName, image, imageRef, runtime, createdTime, volumeMounts });

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
    const criuImages = async () => {
      if (!omit.has('checkpoint/')) await tar.directory('checkpoint/', { mode: 0o700 });
      // Not real CRIU protobuf: the agent only checks that these images exist.
      await put('checkpoint/inventory.img', Buffer.from('5443565419a0b3c2080210011a0a'.repeat(4), 'hex'));
      await put('checkpoint/pstree.img', Buffer.from('54435654d42a7c5f0a0808011001180120'.repeat(2), 'hex'));
      await put('checkpoint/core-1.img', Buffer.alloc(2304, 7));
      if (!omit.has('checkpoint/pages-1.img')) {
        if (contents['checkpoint/pages-1.img'] !== undefined) await put('checkpoint/pages-1.img', contents['checkpoint/pages-1.img']);
        else members['checkpoint/pages-1.img'] = { dataOffset: await tar.randomFile('checkpoint/pages-1.img', pagesBytes, { mode: 0o600 }), size: pagesBytes };
      }
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
    pod: engine === 'cri-o' ? pod : { name: '', namespace: '', uid: '' },
    image,
    imageRef,
    runtime,
    criuVersion: criuVersion ?? '',
    expectedMountDestinations: engine === 'cri-o' && (spec.serviceAccountToken ?? true) ? [...volumeMounts, SERVICE_ACCOUNT_PATH] : [...volumeMounts],
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

function crioLayout(o: {
  pod: { name: string; namespace: string; uid: string };
  containerName: string;
  image: string;
  imageRef: string;
  runtime: string;
  createdTime: string;
  checkpointedTime: string;
  volumeMounts: string[];
  serviceAccountToken: boolean;
}) {
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
    config: {
      id,
      name: `k8s_${o.containerName}_${o.pod.name}_${o.pod.namespace}_${o.pod.uid}_0`,
      rootfsImage: o.image,
      rootfsImageRef: o.imageRef,
      rootfsImageName: o.image,
      runtime: o.runtime,
      createdTime: o.createdTime,
      checkpointedTime: o.checkpointedTime,
      restoredTime: '0001-01-01T00:00:00Z',
      restored: false,
    },
    spec: ociSpec(annotations, mounts),
    bindMounts: mounts
      .filter((m) => m.type === 'bind' && !CRIO_BIND_MOUNTS_SKIPPED.has(m.destination))
      .map((m) => ({ source: m.source, destination: m.destination, file_type: m.destination.startsWith('/etc/') || m.destination === '/dev/termination-log' ? 'file' : 'directory', permissions: 0o755 })),
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
