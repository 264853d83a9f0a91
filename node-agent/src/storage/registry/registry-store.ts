/**
 * The OCI registry store: each container's checkpoint archive becomes a checkpoint image
 * (checkpoint-image.ts) pushed to one repository and named by digest in the Checkpoint.
 *
 * Order of a store, so that a failure never leaves a tag on a partial image: the layer (the
 * archive file, streamed once in chunks while its sha256 is computed), then the config blob,
 * and only when both are in the registry the manifest, PUT by tag. The tag is
 * `<namespace>_<checkpoint>_<container>_<uid8>` (image-reference.ts); restores use the digest.
 *
 * A zstd layer (layer-compression.ts) is compressed into a file first, in an agent-only scratch
 * directory beside the archive (the kubelet's checkpoints directory: the node's disk, where the
 * archive already fits; the agent's own /tmp is a small emptyDir), and that file is uploaded as
 * any layer. Why not stream the compressor's output: the upload resumes a cut PATCH from the
 * offset the registry holds and restarts a lost session from byte 0, which needs the compressed
 * bytes at any offset again; a stream would have to be compressed again from the start, and zstd
 * does not promise the same bytes twice across versions or buffer sizes. The file costs one write
 * of the compressed bytes (a fifth of the archive for a Node heap) and goes in every outcome; one
 * an agent killed mid-way left is removed by the next compressed store beside it.
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { CheckpointIdentity, Logger } from '@cryo/common';
import type { CheckpointStore, PodCheckpointRequest, RetentionPolicy, RetentionResult, RetentionScope, StoredCheckpoint, StoredEntry, StoredPodCheckpoint, StoreRequest } from '../checkpoint-store.ts';
import { blockerOfErrno, isOfCheckpoint, StoreError } from '../checkpoint-store.ts';
import { selectForRemovalKeeping, validateRetentionPolicy } from '../retention.ts';
import { createScratchDir, isScratchName } from '../../host-files/agent-scratch.ts';
import { drainScratchDir, removeOwnScratchDir } from '../../host-files/untrusted-tree.ts';
import { uploadFileBlob } from './blob-upload.ts';
import type { HostFacts } from '../checkpoint-image/checkpoint-annotations.ts';
import { CRYO_ANNOTATIONS } from '../checkpoint-image/checkpoint-annotations.ts';
import type { CheckpointLayer } from '../checkpoint-image/checkpoint-image.ts';
import { buildCheckpointImage, buildPodCheckpointIndex, hostFacts, OCI_LAYER_TAR, OCI_LAYER_TAR_ZSTD, sha256Digest } from '../checkpoint-image/checkpoint-image.ts';
import { type CompressedFile, DEFAULT_LAYER_COMPRESSION, LAYER_COMPRESSIONS, type LayerCompression, ZSTD_LEVEL, zstdCompressFile } from './layer-compression.ts';
import { credentialsFor } from './docker-config.ts';
import { HttpTransport } from './http-transport.ts';
import { checkpointTag, parseRepository } from './image-reference.ts';
import { RegistryAuth } from './registry-auth.ts';
import type { RetryPolicy } from './registry-client.ts';
import { OCI_INDEX, OCI_MANIFEST } from '../checkpoint-image/checkpoint-image.ts';
import { RegistryClient } from './registry-client.ts';

export interface RegistryStoreOptions {
  /** `host[:port]/path`: a Checkpoint's spec.storage.registry.repository (or the cluster default). */
  repository: string;
  /**
   * The push secret: the `.dockerconfigjson` of a kubernetes.io/dockerconfigjson Secret, as
   * JSON text or parsed. Its entry for the repository's host gives Basic credentials, also
   * used to get Bearer tokens. Absent: anonymous.
   */
  dockerConfigJson?: string | object;
  /** Plain http instead of https; only for registries on a trusted network (tests: 127.0.0.1). */
  insecure?: boolean;
  /** PEM CA certificates trusted besides the system's (a registry with a private CA). */
  caBundle?: string | Buffer;
  /**
   * Bytes per PATCH of the layer upload. Default: the whole layer in one PATCH, as docker and
   * containerd send a blob, so every registry takes it; memory does not depend on it. Fewer,
   * larger PATCHes are faster: docker-registry fsyncs the upload at the end of each PATCH before
   * it answers, and the client waits (npm run bench:agent, 2 GiB: one PATCH and 1 GiB chunks
   * within noise of each other, 64 MiB chunks 2-3 s slower). Set it for proxies that
   * limit request bodies (often ~100 MB). A cut PATCH resumes from the offset the registry
   * reports, whatever the chunk size, when the registry kept the session.
   */
  chunkSizeBytes?: number;
  /** The layer as the archive is (`none`) or zstd-compressed (default: layer-compression.ts). */
  layerCompression?: LayerCompression;
  /** Attempts and backoff for network errors, 5xx and 429 (default 5 attempts, 500 ms doubling to 10 s). */
  retry?: Partial<RetryPolicy>;
  /** A request that makes no progress this long fails (default 120 s). */
  requestTimeoutMs?: number;
  /** Manifests list() reads at once (default 4). */
  listConcurrency?: number;
  logger?: Logger;
  /** The clock (tests). */
  now?: () => Date;
  /** Host facts recorded in the annotations (default: this host's). */
  host?: HostFacts;
}

/** The smallest chunk a store takes: smaller PATCHes only multiply round trips. */
export const MIN_CHUNK_SIZE_BYTES = 64 * 1024;
/** No limit: one PATCH carries the whole layer. */
const WHOLE_LAYER = Number.MAX_SAFE_INTEGER;
const DEFAULT_RETRY: RetryPolicy = { attempts: 5, initialMs: 500, maxMs: 10_000 };
/** Layers of archives already pushed, so a retried store of the same file can skip compressing and uploading it. */
const LAYER_CACHE_SIZE = 64;
/** Name of the compressed layer in its scratch directory. */
const COMPRESSED_LAYER_FILE = 'layer.tar.zst';

/** A layer in the registry: what the image names, and the archive's size it came from. */
interface PushedLayer extends Required<CheckpointLayer> {
  archiveBytes: number;
}

interface ManifestJson {
  mediaType?: unknown;
  layers?: { size?: unknown }[];
  /** An index's. */
  manifests?: { digest?: unknown }[];
  annotations?: Record<string, unknown>;
}

/** What a tag names: a container's checkpoint image (a retention entry), or a pod checkpoint's index. */
type TagContent = { image: StoredEntry } | { podIndex: { digest: string; images: string[] } };

/** The images among `contents`, oldest first; two tags on one manifest are one checkpoint. */
function entriesOf(contents: readonly TagContent[]): StoredEntry[] {
  const entries = new Map(contents.flatMap((c) => ('image' in c ? [[c.image.restoreReference, c.image] as const] : [])));
  return [...entries.values()].sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
}

export class RegistryStore implements CheckpointStore {
  readonly kind = 'registry' as const;
  readonly repository: string;
  private readonly client: RegistryClient;
  private readonly transport: HttpTransport;
  private readonly chunkSizeBytes: number;
  readonly layerCompression: LayerCompression;
  private readonly listConcurrency: number;
  private readonly logger: Logger | undefined;
  private readonly now: () => Date;
  private readonly host: HostFacts;
  private readonly layers = new Map<string, PushedLayer>();

  /** Throws a StoreError (not retriable) when the repository, the push secret or an option is unusable. */
  constructor(options: RegistryStoreOptions) {
    let registry: string;
    let name: string;
    let credentials;
    try {
      ({ registry, name } = parseRepository(options.repository));
      credentials = options.dockerConfigJson === undefined ? undefined : credentialsFor(options.dockerConfigJson, registry, 'the push secret');
    } catch (err) {
      throw new StoreError((err as Error).message, { retriable: false, cause: err });
    }
    this.repository = `${registry}/${name}`;
    this.chunkSizeBytes = options.chunkSizeBytes ?? WHOLE_LAYER;
    if (!Number.isInteger(this.chunkSizeBytes) || this.chunkSizeBytes < MIN_CHUNK_SIZE_BYTES) {
      throw new StoreError(`the registry store's chunkSizeBytes must be an integer of at least ${MIN_CHUNK_SIZE_BYTES}, got ${options.chunkSizeBytes}`, { retriable: false });
    }
    this.layerCompression = options.layerCompression ?? DEFAULT_LAYER_COMPRESSION;
    if (!LAYER_COMPRESSIONS.includes(this.layerCompression)) {
      throw new StoreError(`the registry store's layerCompression must be one of ${LAYER_COMPRESSIONS.join(', ')}, got ${String(options.layerCompression)}`, { retriable: false });
    }
    this.transport = new HttpTransport({ ca: options.caBundle, timeoutMs: options.requestTimeoutMs ?? 120_000 });
    const auth = new RegistryAuth({ registry, credentials, transport: this.transport, allowPlainHttpRealm: options.insecure === true });
    const retry = { ...DEFAULT_RETRY, ...options.retry };
    this.client = new RegistryClient({ registry, name, insecure: options.insecure === true, transport: this.transport, auth, retry, logger: options.logger });
    this.listConcurrency = Math.max(1, options.listConcurrency ?? 4);
    this.logger = options.logger?.child({ store: 'registry', repository: this.repository });
    this.now = options.now ?? (() => new Date());
    this.host = options.host ?? hostFacts();
  }

  async store(request: StoreRequest): Promise<StoredCheckpoint> {
    const started = performance.now();
    const { signal, archive } = request;
    if (signal?.aborted) throw this.client.aborted(`store ${archive.path}`, signal);
    const tag = checkpointTag({ namespace: request.checkpoint.namespace, checkpointName: request.checkpoint.name, checkpointUid: request.checkpoint.uid, containerName: request.containerName });
    const { layer, uploaded } = await this.pushLayer(archive.path, signal, request.onProgress);
    if (layer.archiveBytes !== archive.sizeBytes) {
      this.logger?.warn({ path: archive.path, expected: archive.sizeBytes, actual: layer.archiveBytes }, 'the archive is not the size it had when it was read; stored what is there now');
    }
    const image = buildCheckpointImage(request, layer, this.host, this.now());
    await this.client.putSmallBlob(image.config.bytes, image.config.digest, signal);
    await this.pushManifest(tag, image.manifest, OCI_MANIFEST, signal);
    const durationMs = performance.now() - started;
    const restoreReference = `${this.repository}@${image.manifest.digest}`;
    this.logger?.info(
      { tag, restoreReference, layerDigest: layer.digest, layerCompression: this.layerCompression, sizeBytes: layer.size, archiveBytes: layer.archiveBytes, uploaded, durationMs: Math.round(durationMs) },
      'checkpoint image pushed',
    );
    // sizeBytes is what the registry holds (the compressed layer): what retention's byte limits
    // weigh, as list() reads the layer sizes back from the manifests.
    return { restoreReference, referenceType: 'image', sizeBytes: layer.size, digest: layer.digest, durationMs, manifest: { digest: image.manifest.digest, sizeBytes: image.manifest.bytes.length } };
  }

  /** The archive's layer in the registry: pushed now, or found there from an earlier store of the same file. */
  private async pushLayer(archivePath: string, signal: AbortSignal | undefined, onProgress: StoreRequest['onProgress']): Promise<{ layer: PushedLayer; uploaded: boolean }> {
    const key = `${await this.fileKey(archivePath)} ${this.layerCompression}`;
    const known = this.layers.get(key);
    if (known !== undefined && (await this.client.blobExists(known.digest, signal))) return { layer: known, uploaded: false };
    const layer = this.layerCompression === 'zstd' ? await this.pushZstdLayer(archivePath, signal, onProgress) : await this.pushTarLayer(archivePath, signal, onProgress);
    this.remember(key, layer);
    return { layer, uploaded: true };
  }

  private async pushTarLayer(archivePath: string, signal: AbortSignal | undefined, onProgress: StoreRequest['onProgress']): Promise<PushedLayer> {
    const blob = await uploadFileBlob(this.client, archivePath, { chunkSizeBytes: this.chunkSizeBytes, signal, logger: this.logger, onProgress });
    return { mediaType: OCI_LAYER_TAR, digest: blob.digest, size: blob.size, diffId: blob.digest, archiveBytes: blob.size };
  }

  /** Compresses the archive into a scratch directory beside it and uploads that file (see the file comment for why). */
  private async pushZstdLayer(archivePath: string, signal: AbortSignal | undefined, onProgress: StoreRequest['onProgress']): Promise<PushedLayer> {
    const dir = path.dirname(archivePath);
    await this.removeLeftoverScratchDirs(dir);
    let scratch: string;
    try {
      scratch = await createScratchDir(dir);
    } catch (err) {
      throw new StoreError(
        `cannot make a scratch directory in ${dir} to compress the checkpoint layer into: ${(err as Error).message}; the agent writes the compressed layer beside the archive, so it needs write access there (or store layers uncompressed: layer compression none)`,
        { retriable: false, blocker: blockerOfErrno((err as NodeJS.ErrnoException).code), cause: err },
      );
    }
    try {
      const blobPath = path.join(scratch, COMPRESSED_LAYER_FILE);
      const compressed = await this.compress(archivePath, blobPath, signal);
      // Progress in the compressed layer's bytes, which is what goes to the registry.
      const layerBytes = compressed.compressed.size;
      const blob = await uploadFileBlob(this.client, blobPath, { chunkSizeBytes: this.chunkSizeBytes, signal, logger: this.logger, onProgress: onProgress && ((bytes) => onProgress(bytes, layerBytes)) });
      if (blob.digest !== compressed.compressed.digest) {
        throw new StoreError(`the compressed layer ${blobPath} changed between compressing and uploading it (${compressed.compressed.digest}, then ${blob.digest}); store it again`, { retriable: true });
      }
      return { mediaType: OCI_LAYER_TAR_ZSTD, digest: blob.digest, size: blob.size, diffId: compressed.source.digest, archiveBytes: compressed.source.size };
    } finally {
      const removal = await removeOwnScratchDir(scratch);
      if (!removal.removed) this.logger?.warn({ leftIn: removal.leftIn, reason: removal.reason }, 'could not remove the compressed layer after its upload; the next compressed store in that directory removes it');
    }
  }

  private async compress(archivePath: string, blobPath: string, signal: AbortSignal | undefined): Promise<CompressedFile> {
    try {
      return await zstdCompressFile(archivePath, blobPath, { level: ZSTD_LEVEL, signal });
    } catch (err) {
      if (signal?.aborted) throw this.client.aborted(`compress ${archivePath}`, signal);
      if ((err as NodeJS.ErrnoException).path === archivePath) {
        throw new StoreError(`cannot read the checkpoint archive ${archivePath}: ${(err as Error).message}`, { retriable: false, cause: err });
      }
      // Most likely the disk is full: worth trying again once space is freed.
      throw new StoreError(
        `cannot write the compressed checkpoint layer ${blobPath}: ${(err as Error).message}; it needs up to the archive's size free beside it: free space there, or store layers uncompressed (layer compression none)`,
        { retriable: true, blocker: blockerOfErrno((err as NodeJS.ErrnoException).code), cause: err },
      );
    }
  }

  /** Scratch directories beside `dir`'s archives that an agent killed mid-compression left (ones this process uses are skipped). */
  private async removeLeftoverScratchDirs(dir: string): Promise<void> {
    for (const entry of await readdir(dir).catch(() => [])) {
      if (!isScratchName(entry)) continue;
      const removal = await drainScratchDir(path.join(dir, entry));
      if (removal.inUse !== true) this.logger?.info({ leftover: path.join(dir, entry), removed: removal.removed, reason: removal.reason }, 'removed a compressed layer an earlier store left');
    }
  }

  /** Pushes the pod checkpoint as an OCI index of its containers' images (which must all be in this repository). */
  async storePodCheckpoint(request: PodCheckpointRequest): Promise<StoredPodCheckpoint> {
    const { document, stored, signal } = request;
    const images = document.containers.map(({ name }) => {
      const s = stored.find((c) => c.name === name)?.stored;
      if (s?.manifest === undefined || !s.restoreReference.startsWith(`${this.repository}@`)) {
        throw new StoreError(`the pod checkpoint of ${document.pod.namespace}/${document.pod.name} can only index images in ${this.repository}; container "${name}" is at ${s?.restoreReference ?? 'no image'}`, { retriable: false });
      }
      return { name, digest: s.manifest.digest, sizeBytes: s.manifest.sizeBytes };
    });
    const index = buildPodCheckpointIndex({ document, images });
    const tag = checkpointTag({ namespace: document.checkpoint.namespace, checkpointName: document.checkpoint.name, checkpointUid: document.checkpoint.uid });
    await this.pushManifest(tag, index, OCI_INDEX, signal);
    const reference = `${this.repository}@${index.digest}`;
    this.logger?.info({ tag, podCheckpoint: reference, containers: images.map((i) => i.name) }, 'pod checkpoint index pushed');
    return { reference, referenceType: 'image-index', digest: index.digest };
  }

  /** PUT by tag, insisting the registry stores exactly these bytes: a digest reference must name what was pushed. */
  private async pushManifest(tag: string, manifest: { bytes: Buffer; digest: string }, mediaType: string, signal?: AbortSignal): Promise<void> {
    const registryDigest = await this.client.putManifest(tag, manifest.bytes, mediaType, signal);
    if (registryDigest !== undefined && registryDigest !== manifest.digest) {
      throw new StoreError(
        `push manifest ${tag}: ${this.client.where()}: the registry stored it as ${registryDigest}, not as the sha256 of what was sent (${manifest.digest}); it rewrites manifests, so a digest reference would not be what was pushed`,
        { retriable: false },
      );
    }
  }

  async list(): Promise<StoredEntry[]> {
    return entriesOf(await this.scanTags());
  }

  /** What every tag of the repository names, read `listConcurrency` manifests at a time. */
  private async scanTags(): Promise<TagContent[]> {
    const tags = await this.client.listTags();
    const found: TagContent[] = [];
    let next = 0;
    const worker = async () => {
      while (next < tags.length) {
        const content = await this.contentOf(tags[next++]);
        if (content !== undefined) found.push(content);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.listConcurrency, tags.length) }, worker));
    return found;
  }

  /** Deletes, oldest first, the manifests the shared retention rule (../retention.ts) selects; their blobs go at the registry's garbage collection. */
  async applyRetention(policy: RetentionPolicy, scope: RetentionScope = {}): Promise<RetentionResult> {
    validateRetentionPolicy(policy);
    // One scan serves both: the images retention weighs, and the pod indexes that go with them.
    const contents = await this.scanTags();
    const entries = entriesOf(contents);
    const doomed = await selectForRemovalKeeping(entries, policy, this.now(), scope);
    const removed = await this.deleteImages(contents, doomed, `retention (${policy.scope})`);
    const gone = new Set(doomed);
    return { kept: entries.filter((e) => !gone.has(e)), removed };
  }

  async removeCheckpoint(checkpoint: CheckpointIdentity): Promise<StoredEntry[]> {
    const contents = await this.scanTags();
    return this.deleteImages(contents, entriesOf(contents).filter((entry) => isOfCheckpoint(entry, checkpoint)), 'its Checkpoint was deleted');
  }

  /** Deletes the images' manifests, then the pod indexes naming one of them; throws if any image stays. */
  private async deleteImages(contents: readonly TagContent[], doomed: readonly StoredEntry[], why: string): Promise<StoredEntry[]> {
    const removed: StoredEntry[] = [];
    const failures: StoreError[] = [];
    for (const entry of doomed) {
      const digest = entry.restoreReference.slice(entry.restoreReference.indexOf('@') + 1);
      try {
        await this.client.deleteManifest(digest);
        removed.push(entry);
        this.logger?.info({ restoreReference: entry.restoreReference, namespace: entry.namespace, checkpoint: entry.checkpointName, createdAt: entry.createdAt.toISOString(), why }, 'checkpoint image removed');
      } catch (err) {
        failures.push(err as StoreError);
      }
    }
    await this.removePodIndexesOf(contents, removed);
    if (failures.length > 0) {
      const first = failures[0];
      throw new StoreError(`removed ${removed.length} of ${doomed.length} checkpoint images (${why}); ${failures.length} failed: ${first.message}`, { retriable: failures.every((f) => f.retriable), cause: first });
    }
    return removed;
  }

  /** A pod checkpoint is whole or gone: the indexes naming an image that was removed go too. */
  private async removePodIndexesOf(contents: readonly TagContent[], removed: readonly StoredEntry[]): Promise<void> {
    if (removed.length === 0) return;
    const gone = new Set(removed.map((e) => e.restoreReference.slice(e.restoreReference.indexOf('@') + 1)));
    for (const content of contents) {
      if (!('podIndex' in content) || !content.podIndex.images.some((d) => gone.has(d))) continue;
      await this.client.deleteManifest(content.podIndex.digest).then(
        () => this.logger?.info({ podCheckpoint: `${this.repository}@${content.podIndex.digest}` }, 'pod checkpoint index removed with its container images'),
        (err: unknown) => this.logger?.error({ err: (err as Error).message, podCheckpoint: content.podIndex.digest }, 'could not remove a pod checkpoint index whose images were removed'),
      );
    }
  }

  /** Closes the store's idle connections. */
  close(): void {
    this.transport.close();
  }

  private async contentOf(tag: string): Promise<TagContent | undefined> {
    const manifest = await this.client.getManifest(tag);
    if (manifest === undefined) return undefined; // deleted meanwhile
    let parsed: ManifestJson;
    try {
      parsed = JSON.parse(manifest.bytes.toString('utf8')) as ManifestJson;
    } catch {
      this.logger?.warn({ tag }, 'the manifest of this tag is not JSON; not a Cryo checkpoint');
      return undefined;
    }
    const annotation = (key: string): string => {
      const value = parsed.annotations?.[key];
      return typeof value === 'string' ? value : '';
    };
    const namespace = annotation(CRYO_ANNOTATIONS.namespace);
    const createdAt = new Date(annotation(CRYO_ANNOTATIONS.created));
    // Images that are not Cryo's (or from a future format) are not ours to count or delete.
    if (namespace === '' || Number.isNaN(createdAt.getTime())) return undefined;
    const digest = sha256Digest(manifest.bytes);
    if (parsed.mediaType === OCI_INDEX) {
      const images = (parsed.manifests ?? []).flatMap((m) => (typeof m.digest === 'string' ? [m.digest] : []));
      return { podIndex: { digest, images } };
    }
    return {
      image: {
        restoreReference: `${this.repository}@${digest}`,
        namespace,
        podName: annotation(CRYO_ANNOTATIONS.podName),
        containerName: annotation(CRYO_ANNOTATIONS.containerName),
        checkpointName: annotation(CRYO_ANNOTATIONS.checkpointName),
        checkpointUid: annotation(CRYO_ANNOTATIONS.checkpointUid),
        sizeBytes: (parsed.layers ?? []).reduce((sum, layer) => sum + (typeof layer.size === 'number' ? layer.size : 0), 0),
        createdAt,
      },
    };
  }

  /** Identifies the archive file as it is now: a changed file gets another key. */
  private async fileKey(path: string): Promise<string> {
    try {
      const s = await stat(path);
      return `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}`;
    } catch (err) {
      throw new StoreError(`cannot read the checkpoint archive ${path}: ${(err as Error).message}`, { retriable: false, cause: err });
    }
  }

  private remember(key: string, layer: PushedLayer): void {
    this.layers.delete(key);
    this.layers.set(key, layer);
    if (this.layers.size > LAYER_CACHE_SIZE) this.layers.delete(this.layers.keys().next().value!);
  }
}
