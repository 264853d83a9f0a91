/**
 * readCheckpointArchive(): what a checkpoint archive holds and whether it is whole, read in one
 * front-to-back pass over its tar headers (tar-reader.ts) without extracting anything. Only
 * config.dump, spec.dump, status.dump and bind.mounts (each refused beyond a size no real one
 * reaches) and the head of dump.log are read into memory; the memory pages, the rootfs diff and
 * the rest are skipped by offset, so a multi-GiB archive costs milliseconds and no memory.
 *
 * Accepted: the uncompressed tars CRI-O and containerd write for the kubelet's checkpoint API, and
 * what `podman container checkpoint --export` writes with `--compress=none` (compressed ones are
 * refused with the command that unpacks them). The engine is told from what the archive holds
 * (engineOf()); containerd's differs from CRI-O's by a status.dump, a gzip-compressed
 * rootfs-diff.tar (never opened here) and no bind.mounts. Required: config.dump and spec.dump as
 * JSON objects and the CRIU images checkpoint/inventory.img and checkpoint/pstree.img, which no
 * engine can restore without; and for containerd status.dump, the CRI container status its
 * restore reads the container's metadata, labels and annotations from.
 */
import { open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { CheckpointArchiveInfo, CheckpointEngine } from './checkpoint-archive-info.ts';
import { mountDestinations } from './mount-destinations.ts';
import { readTarMemberHead, TarError, tarMembers, type TarMember } from './tar-reader.ts';

/** The archive cannot be used: the message names the archive, what is wrong and what to do. */
export class ArchiveError extends Error {
  override name = 'ArchiveError';
  readonly archivePath: string;
  constructor(archivePath: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.archivePath = archivePath;
  }
}

const MiB = 1024 * 1024;
/** Podman's config.dump is ~25 KB, a spec.dump with a large environment a few hundred KB; status.dump holds the CRI labels, annotations and mounts. */
const JSON_LIMITS = { 'config.dump': 8 * MiB, 'spec.dump': 8 * MiB, 'status.dump': 8 * MiB, 'bind.mounts': 1 * MiB } as const;
type JsonMemberName = keyof typeof JSON_LIMITS;
/** CRIU prints its version in the first lines of dump.log. */
const DUMP_LOG_HEAD_BYTES = 64 * 1024;
/** CRI-O puts dump.log beside config.dump; a runtime run with its work path in the image directory puts it in checkpoint/. */
const DUMP_LOG_NAMES = ['dump.log', 'checkpoint/dump.log'];
const REQUIRED_CRIU_IMAGES = ['checkpoint/inventory.img', 'checkpoint/pstree.img'];
/** Go's zero time.Time: CRI-O writes it for times it does not know. */
const GO_ZERO_TIME = /^0001-01-01T00:00:00/;

export async function readCheckpointArchive(archivePath: string): Promise<CheckpointArchiveInfo> {
  const absolute = path.resolve(archivePath);
  const fail = (problem: string, cause?: unknown): never => {
    throw new ArchiveError(absolute, `checkpoint archive ${absolute} ${problem}`, { cause });
  };

  let file: FileHandle;
  try {
    file = await open(absolute, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return fail('does not exist: was it removed, or is this path on another node?', err);
    if (code === 'EACCES' || code === 'EPERM') return fail(`cannot be read (${code}): the agent needs read access to it (CRI-O writes archives mode 0600, owned by root)`, err);
    return fail(`cannot be opened: ${(err as Error).message}`, err);
  }
  try {
    const stats = await file.stat();
    if (!stats.isFile()) return fail('is not a regular file: give the path of the .tar the kubelet or Podman wrote');

    const json = new Map<JsonMemberName, TarMember>();
    const files = new Set<string>();
    let dumpLog: TarMember | undefined;
    const buffered = new Map<TarMember, Buffer>();
    try {
      for await (const member of tarMembers(file, stats.size)) {
        if (member.type !== 'file') continue;
        files.add(member.name);
        if (Object.hasOwn(JSON_LIMITS, member.name)) {
          const name = member.name as JsonMemberName;
          if (member.size > JSON_LIMITS[name]) fail(`has a ${name} of ${member.size} bytes, more than the ${JSON_LIMITS[name]} any container's can be: the archive is not a checkpoint or is damaged`);
          json.set(name, member);
          buffered.set(member, await readTarMemberHead(file, member, member.size));
        } else if (DUMP_LOG_NAMES.includes(member.name) && dumpLog === undefined) {
          dumpLog = member;
          buffered.set(member, await readTarMemberHead(file, member, DUMP_LOG_HEAD_BYTES));
        }
      }
    } catch (err) {
      if (!(err instanceof TarError)) throw err;
      if (err.reason === 'not-tar') return fail(`is not a tar archive: ${err.message}`, err);
      if (err.reason === 'truncated') return fail(`is truncated: ${err.message}; the copy or the checkpoint was cut short, take the checkpoint again`, err);
      return fail(`is damaged: ${err.message}`, err);
    }

    const configMember = json.get('config.dump');
    if (configMember === undefined) return fail('has no config.dump: not a CRI-O, containerd or Podman checkpoint archive');
    for (const image of REQUIRED_CRIU_IMAGES) {
      if (!files.has(image)) fail(`has no ${image}: its CRIU images (checkpoint/) are missing or incomplete, so there is nothing to restore`);
    }
    const specMember = json.get('spec.dump');
    if (specMember === undefined) return fail('has no spec.dump: no engine can restore a container without its OCI spec');

    const parse = (name: JsonMemberName, member: TarMember): unknown => {
      try {
        return JSON.parse(buffered.get(member)!.toString('utf8'));
      } catch (err) {
        return fail(`has an invalid ${name}: ${(err as Error).message}`, err);
      }
    };
    const config = parse('config.dump', configMember);
    if (!isObject(config)) return fail('has a config.dump that is not a JSON object');
    const spec = parse('spec.dump', specMember);
    if (!isObject(spec)) return fail('has a spec.dump that is not a JSON object (an OCI runtime spec)');
    const bindMember = json.get('bind.mounts');
    const bindMounts = bindMember === undefined ? undefined : parse('bind.mounts', bindMember);
    if (bindMounts !== undefined && !Array.isArray(bindMounts)) return fail('has a bind.mounts that is not a JSON array');

    const annotations = stringRecord(spec.annotations);
    const statusMember = json.get('status.dump');
    const { engine, evidence } = engineOf(text(config.runtime), annotations, statusMember !== undefined);
    let status: Record<string, unknown> = {};
    if (engine === 'containerd') {
      if (statusMember === undefined) return fail(`has no status.dump, which containerd's restore needs (the container's CRI status: metadata, labels, annotations): containerd wrote this archive (${evidence}) but it is incomplete; take the checkpoint again`);
      const parsed = parse('status.dump', statusMember);
      if (!isObject(parsed)) return fail('has a status.dump that is not a JSON object (a CRI ContainerStatus)');
      status = parsed;
    }
    const statusImage = isObject(status.image) ? status.image : {};
    const identity = identityOf(engine, config, annotations, status);
    return {
      path: absolute,
      sizeBytes: stats.size,
      containerName: identity.containerName,
      baseImage: text(config.rootfsImageName) || text(config.rootfsImage) || text(statusImage.image),
      baseImageId: text(config.rootfsImageRef) || text(config.rootfsImageID) || text(status.image_ref),
      runtime: text(config.runtime),
      engine,
      checkpointedTime: time(config.checkpointedTime) || time(config.createdTime),
      pod: identity.pod,
      mountDestinations: mountDestinations({
        specMounts: Array.isArray(spec.mounts) ? spec.mounts : undefined,
        bindMounts,
        // containerd keeps the kubelet's container annotations (the termination message path) in status.dump, not in the spec.
        annotations: { ...stringRecord(status.annotations), ...annotations },
      }),
      criuVersion: dumpLog === undefined ? '' : criuVersion(buffered.get(dumpLog)!.toString('utf8')),
    };
  } finally {
    await file.close();
  }
}

/** CRIU logs `(00.000010) Version: 4.2 (gitid ...)` near the top of every log. */
export function criuVersion(log: string): string {
  return /^(?:\([\d.\s]+\)\s*)?Version:\s*(\S+)/m.exec(log)?.[1] ?? '';
}

/**
 * Which engine wrote the archive, and what says so. spec.dump's io.container.manager settles it
 * when present (CRI-O and Podman set it, containerd does not); then containerd's marks: the
 * status.dump only it writes, its shim as config.dump's runtime (io.containerd.runc.v2), or its
 * io.kubernetes.cri.* spec annotations; then CRI-O's io.kubernetes.pod.* annotations; else Podman.
 */
function engineOf(runtime: string, annotations: Record<string, string>, hasStatusDump: boolean): { engine: CheckpointEngine; evidence: string } {
  const manager = annotations['io.container.manager'];
  if (manager === 'cri-o') return { engine: 'cri-o', evidence: 'its spec.dump says io.container.manager=cri-o' };
  if (manager === 'libpod') return { engine: 'podman', evidence: 'its spec.dump says io.container.manager=libpod' };
  if (hasStatusDump) return { engine: 'containerd', evidence: 'it has a status.dump' };
  if (runtime.startsWith('io.containerd.')) return { engine: 'containerd', evidence: `its config.dump names the runtime ${runtime}` };
  const keys = Object.keys(annotations);
  if (keys.some((key) => key.startsWith('io.kubernetes.cri.'))) return { engine: 'containerd', evidence: 'its spec.dump has io.kubernetes.cri.* annotations' };
  if (keys.some((key) => key.startsWith('io.kubernetes.pod.'))) return { engine: 'cri-o', evidence: 'its spec.dump has io.kubernetes.pod.* annotations' };
  return { engine: 'podman', evidence: 'it has no Kubernetes annotations' };
}

/** The container's name and its pod, where each engine records them (spec.dump annotations first, as checkpointctl reads them). */
function identityOf(engine: CheckpointEngine, config: Record<string, unknown>, annotations: Record<string, string>, status: Record<string, unknown>): Pick<CheckpointArchiveInfo, 'containerName' | 'pod'> {
  if (engine === 'cri-o') {
    return {
      containerName: annotations['io.kubernetes.container.name'] || crioMetadataName(annotations) || text(config.name),
      pod: { name: annotations['io.kubernetes.pod.name'] ?? '', namespace: annotations['io.kubernetes.pod.namespace'] ?? '', uid: annotations['io.kubernetes.pod.uid'] ?? '' },
    };
  }
  if (engine === 'containerd') {
    // status.dump's labels are the kubelet's own (io.kubernetes.pod.*), the spec's annotations containerd's.
    const labels = stringRecord(status.labels);
    const metadata = isObject(status.metadata) ? status.metadata : {};
    return {
      containerName: annotations['io.kubernetes.cri.container-name'] || text(metadata.name) || labels['io.kubernetes.container.name'] || text(config.name),
      pod: {
        name: annotations['io.kubernetes.cri.sandbox-name'] || labels['io.kubernetes.pod.name'] || '',
        namespace: annotations['io.kubernetes.cri.sandbox-namespace'] || labels['io.kubernetes.pod.namespace'] || '',
        uid: annotations['io.kubernetes.cri.sandbox-uid'] || labels['io.kubernetes.pod.uid'] || '',
      },
    };
  }
  return { containerName: text(config.name), pod: { name: '', namespace: '', uid: '' } };
}

/** io.kubernetes.cri-o.Metadata is `{"name":"<container>","attempt":N}`, what checkpointctl shows as the name. */
function crioMetadataName(annotations: Record<string, string>): string {
  try {
    const metadata: unknown = JSON.parse(annotations['io.kubernetes.cri-o.Metadata'] ?? '');
    return isObject(metadata) ? text(metadata.name) : '';
  } catch {
    return '';
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function text(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

function time(value: unknown): string {
  const t = text(value);
  return GO_ZERO_TIME.test(t) ? '' : t;
}

function stringRecord(value: unknown): Record<string, string> {
  if (!isObject(value)) return {};
  const result: Record<string, string> = {};
  for (const [key, v] of Object.entries(value)) if (typeof v === 'string') result[key] = v;
  return result;
}
