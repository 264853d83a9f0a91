/**
 * Where the directory store puts things, and the two sidecars beside each archive:
 *
 *   <root>/<namespace>/<pod>/<container>/<checkpoint name>-<uid8>.tar          the archive, as the kubelet wrote it
 *   <root>/<namespace>/<pod>/<container>/<checkpoint name>-<uid8>.tar.sha256   `<hex>  <file name>\n`: `sha256sum -c` checks it
 *   <root>/<namespace>/<pod>/<container>/<checkpoint name>-<uid8>.tar.json     ArchiveSidecar: who, when, what, digest
 *   <root>/<namespace>/<pod>/<checkpoint name>-<uid8>.pod.json                  the pod checkpoint (@cryo/common PodCheckpoint)
 *   <root>/.../.<final name>.tmp-<16 hex>                                       a file being written (or left by a crash)
 *
 * The registry view names a container's directory as the repository
 *   cryo-directory/<path of the directory below the view's root>, e.g. cryo-directory/<namespace>/<pod>/<container>
 * (directoryImageName), so an image reference names whose checkpoint it is.
 *
 * <uid8> is the first 8 characters of the Checkpoint's uid, so a Checkpoint deleted and created
 * again under the same name gets a new file instead of overwriting the archive a pod may be
 * restoring from. Every path component is a Kubernetes name (validated), so none can climb out
 * of the root.
 */
import path from 'node:path';
import { CHECKPOINT_ENGINES, type CheckpointEngine } from '../../archive/checkpoint-archive-info.ts';

export const SHA256_SUFFIX = '.sha256';
export const SIDECAR_SUFFIX = '.json';
export const POD_CHECKPOINT_SUFFIX = '.pod.json';
export const TEMP_PATTERN = /^\..+\.tmp-[0-9a-f]{16}$/;

/** Lowercase RFC 1123 names with dots (a DNS subdomain covers namespaces, pods, containers, Checkpoints). */
const KUBERNETES_NAME = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;
const UID = /^[0-9a-zA-Z-]{8,}$/;

export interface ArchivePaths {
  dir: string;
  /** `<checkpoint name>-<uid8>.tar` */
  fileName: string;
  archive: string;
  sha256: string;
  sidecar: string;
}

export interface ArchiveIdentity {
  namespace: string;
  podName: string;
  containerName: string;
  checkpointName: string;
  checkpointUid: string;
}

/** Throws a TypeError naming the first component that is no Kubernetes name (or uid). */
function checkNames(names: ReadonlyArray<readonly [string, string]>, checkpointUid: string): void {
  for (const [what, value] of names) {
    if (!KUBERNETES_NAME.test(value)) throw new TypeError(`${what} ${JSON.stringify(value)} is not a Kubernetes name (lowercase letters, digits, '-' and '.')`);
  }
  if (!UID.test(checkpointUid)) throw new TypeError(`checkpoint uid ${JSON.stringify(checkpointUid)} is not a Kubernetes uid`);
}

const baseName = (checkpointName: string, checkpointUid: string) => `${checkpointName}-${checkpointUid.slice(0, 8).toLowerCase()}`;

/** The paths of one container's archive; throws a TypeError naming the component that is no Kubernetes name. */
export function archivePaths(root: string, id: ArchiveIdentity): ArchivePaths {
  checkNames([['namespace', id.namespace], ['pod name', id.podName], ['container name', id.containerName], ['checkpoint name', id.checkpointName]], id.checkpointUid);
  const dir = path.join(root, id.namespace, id.podName, id.containerName);
  const fileName = `${baseName(id.checkpointName, id.checkpointUid)}.tar`;
  const archive = path.join(dir, fileName);
  return { dir, fileName, archive, sha256: archive + SHA256_SUFFIX, sidecar: archive + SIDECAR_SUFFIX };
}

/** Where a Checkpoint's pod checkpoint document goes: in the pod's directory, beside its containers' directories. */
export function podCheckpointPath(root: string, id: Omit<ArchiveIdentity, 'containerName'>): string {
  checkNames([['namespace', id.namespace], ['pod name', id.podName], ['checkpoint name', id.checkpointName]], id.checkpointUid);
  return path.join(root, id.namespace, id.podName, `${baseName(id.checkpointName, id.checkpointUid)}${POD_CHECKPOINT_SUFFIX}`);
}

/** A fresh temp name beside `finalPath`, hidden and recognisable by TEMP_PATTERN. */
export function tempPathFor(finalPath: string, random: string): string {
  return path.join(path.dirname(finalPath), `.${path.basename(finalPath)}.tmp-${random}`);
}

/** The `sha256sum` line: two spaces (text mode) and the name relative to the line's own directory. */
export function sha256Line(hex: string, fileName: string): string {
  return `${hex}  ${fileName}\n`;
}

export function parseSha256Line(text: string): { hex: string; fileName: string } | undefined {
  const match = /^([0-9a-f]{64}) [ *](.+)\n?$/.exec(text);
  return match ? { hex: match[1], fileName: match[2] } : undefined;
}

/** The .tar.json sidecar. */
export interface ArchiveSidecar {
  version: 1;
  /** The archive's file name (beside this sidecar). */
  archive: string;
  namespace: string;
  podName: string;
  podUid: string;
  containerName: string;
  checkpointName: string;
  checkpointUid: string;
  /** When the store stored it (ISO 8601); retention ages entries by this. */
  createdAt: string;
  /** config.dump's checkpointedTime (or createdTime), as written. */
  checkpointedTime: string;
  sizeBytes: number;
  /** `sha256:<hex>`, the same digest as the .sha256 file. */
  digest: string;
  /** Which engine wrote the archive (CheckpointArchiveInfo.engine). */
  engine: CheckpointEngine;
  runtime: string;
  criuVersion: string;
  baseImage: string;
  baseImageId: string;
  /** Mounts the restored container must have again (CheckpointArchiveInfo.mountDestinations). */
  mountDestinations: string[];
  /**
   * The checkpoint image around this archive (checkpoint-image.ts), fixed when it was stored so
   * its digest never changes: the manifest's and the config's exact text. The registry view
   * (directory-registry-view.ts) serves them, and the archive as the one layer. Absent in
   * sidecars written before the view existed: those archives are not served.
   */
  image?: { manifest: string; config: string };
}

const STRING_FIELDS = [
  'archive', 'namespace', 'podName', 'podUid', 'containerName', 'checkpointName', 'checkpointUid',
  'createdAt', 'checkpointedTime', 'digest', 'runtime', 'criuVersion', 'baseImage', 'baseImageId',
] as const;

/** The sidecar in `text`, or a reason it is not one. */
export function parseSidecar(text: string): ArchiveSidecar | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return `not JSON: ${(err as Error).message}`;
  }
  if (typeof value !== 'object' || value === null) return 'not a JSON object';
  const v = value as Record<string, unknown>;
  if (v.version !== 1) return `version ${JSON.stringify(v.version)} is not 1`;
  for (const field of STRING_FIELDS) if (typeof v[field] !== 'string') return `${field} is not a string`;
  if (typeof v.sizeBytes !== 'number' || !Number.isSafeInteger(v.sizeBytes)) return 'sizeBytes is not a whole number';
  if (Number.isNaN(Date.parse(v.createdAt as string))) return 'createdAt is not a time';
  if (!(CHECKPOINT_ENGINES as readonly unknown[]).includes(v.engine)) return `engine is not one of ${CHECKPOINT_ENGINES.join(', ')}`;
  if (!Array.isArray(v.mountDestinations) || !v.mountDestinations.every((m) => typeof m === 'string')) return 'mountDestinations is not a list of paths';
  if (v.image !== undefined) {
    const image = v.image as Record<string, unknown> | null;
    if (typeof image !== 'object' || image === null || typeof image.manifest !== 'string' || typeof image.config !== 'string') return 'image is not {manifest, config} texts';
  }
  return v as unknown as ArchiveSidecar;
}

/** The first path component of every repository the registry view serves. */
export const VIEW_REPOSITORY_PREFIX = 'cryo-directory';

/** A repository path component as the distribution spec has it; Kubernetes names are all such. */
export const REPOSITORY_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*$/;

/** Image names (registry host included) longer than this are refused by the runtimes' reference parsers. */
const MAX_IMAGE_NAME = 255;

/**
 * The image name (`<view address>/cryo-directory/<path>`) under which the registry view at
 * `address` serves `containerDir`, or a reason it cannot: a directory outside the view's root,
 * or one whose path has a component no image name may contain.
 */
export function directoryImageName(address: string, viewRoot: string, containerDir: string): { name: string } | { problem: string } {
  const relative = path.relative(path.resolve(viewRoot), path.resolve(containerDir));
  if (relative === '' || relative.startsWith('..') || path.isAbsolute(relative)) return { problem: `${containerDir} is not below the registry view's root ${viewRoot}` };
  const components = relative.split(path.sep);
  const bad = components.find((c) => !REPOSITORY_COMPONENT.test(c));
  if (bad !== undefined) return { problem: `path component ${JSON.stringify(bad)} of ${containerDir} cannot be part of an image name (lowercase letters and digits separated by '.', '_' or '-')` };
  const name = [address, VIEW_REPOSITORY_PREFIX, ...components].join('/');
  if (name.length > MAX_IMAGE_NAME) return { problem: `image name ${name} is longer than ${MAX_IMAGE_NAME} characters` };
  return { name };
}
