/**
 * The OCI registry store: each container's checkpoint archive becomes a checkpoint image
 * (checkpoint-image.ts) pushed to one repository and named by digest in the Checkpoint.
 *
 * Order of a store, so that a failure never leaves a tag on a partial image: the layer (the
 * archive file, streamed once in chunks while its sha256 is computed), then the config blob,
 * and only when both are in the registry the manifest, PUT by tag. The tag is
 * `<namespace>_<checkpoint>_<container>_<uid8>` (image-reference.ts); restores use the digest.
 */
import { stat } from 'node:fs/promises';
import type { Logger } from '@cryo/common';
import type { CheckpointStore, RetentionPolicy, RetentionResult, StoredCheckpoint, StoredEntry, StoreRequest } from '../checkpoint-store.ts';
import { StoreError } from '../checkpoint-store.ts';
import { selectForRemoval, validateRetentionPolicy } from '../retention.ts';
import { uploadFileBlob } from './blob-upload.ts';
import type { HostFacts } from './checkpoint-annotations.ts';
import { CRYO_ANNOTATIONS } from './checkpoint-annotations.ts';
import { buildCheckpointImage, hostFacts, sha256Digest } from './checkpoint-image.ts';
import { credentialsFor } from './docker-config.ts';
import { HttpTransport } from './http-transport.ts';
import { checkpointTag, parseRepository } from './image-reference.ts';
import { RegistryAuth } from './registry-auth.ts';
import type { RetryPolicy } from './registry-client.ts';
import { OCI_MANIFEST, RegistryClient } from './registry-client.ts';

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
   * Bytes per PATCH of the layer upload (default 1 GiB); memory does not depend on it. Fewer,
   * larger PATCHes are faster: docker-registry fsyncs the upload at the end of each PATCH
   * before it answers, and the client waits (measured, 2 GiB: one PATCH 9.4-9.9 s, 1 GiB
   * chunks 10.9 s, 64 MiB chunks 11.5 s; a monolithic curl PUT 8.4-11.6 s). docker and
   * containerd send a blob in one PATCH, so every registry takes large ones. Smaller chunks
   * are for proxies that limit request bodies (often ~100 MB); they do not save much on a
   * failure, since distribution cancels a session a cut connection left half-written.
   */
  chunkSizeBytes?: number;
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

const DEFAULT_CHUNK = 1024 * 1024 * 1024;
const DEFAULT_RETRY: RetryPolicy = { attempts: 5, initialMs: 500, maxMs: 10_000 };
/** Digests of archives already hashed, so a retried store of the same file can skip its upload. */
const DIGEST_CACHE_SIZE = 64;

interface ManifestJson {
  layers?: { size?: unknown }[];
  annotations?: Record<string, unknown>;
}

export class RegistryStore implements CheckpointStore {
  readonly kind = 'registry' as const;
  readonly repository: string;
  private readonly client: RegistryClient;
  private readonly transport: HttpTransport;
  private readonly chunkSizeBytes: number;
  private readonly listConcurrency: number;
  private readonly logger: Logger | undefined;
  private readonly now: () => Date;
  private readonly host: HostFacts;
  private readonly digests = new Map<string, string>();

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
    this.chunkSizeBytes = options.chunkSizeBytes ?? DEFAULT_CHUNK;
    if (!Number.isInteger(this.chunkSizeBytes) || this.chunkSizeBytes < 64 * 1024) {
      throw new StoreError(`the registry store's chunkSizeBytes must be an integer of at least 65536, got ${options.chunkSizeBytes}`, { retriable: false });
    }
    this.transport = new HttpTransport({ ca: options.caBundle, timeoutMs: options.requestTimeoutMs ?? 120_000 });
    const auth = new RegistryAuth({ registry, credentials, transport: this.transport });
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
    const fileKey = await this.fileKey(archive.path);
    const layer = await uploadFileBlob(this.client, archive.path, { chunkSizeBytes: this.chunkSizeBytes, knownDigest: this.digests.get(fileKey), signal, logger: this.logger });
    this.remember(fileKey, layer.digest);
    if (layer.size !== archive.sizeBytes) {
      this.logger?.warn({ path: archive.path, expected: archive.sizeBytes, actual: layer.size }, 'the archive is not the size it had when it was read; stored what is there now');
    }
    const image = buildCheckpointImage(request, layer, this.host, this.now());
    await this.client.putSmallBlob(image.config.bytes, image.config.digest, signal);
    const registryDigest = await this.client.putManifest(tag, image.manifest.bytes, OCI_MANIFEST, signal);
    if (registryDigest !== undefined && registryDigest !== image.manifest.digest) {
      throw new StoreError(
        `push manifest ${tag}: ${this.client.where()}: the registry stored it as ${registryDigest}, not as the sha256 of what was sent (${image.manifest.digest}); it rewrites manifests, so a digest reference would not be what was pushed`,
        { retriable: false },
      );
    }
    const durationMs = performance.now() - started;
    const restoreReference = `${this.repository}@${image.manifest.digest}`;
    this.logger?.info({ tag, restoreReference, layerDigest: layer.digest, sizeBytes: layer.size, uploaded: layer.uploaded, durationMs: Math.round(durationMs) }, 'checkpoint image pushed');
    return { restoreReference, referenceType: 'image', sizeBytes: layer.size, digest: layer.digest, durationMs };
  }

  async list(): Promise<StoredEntry[]> {
    const tags = await this.client.listTags();
    const entries = new Map<string, StoredEntry>();
    let next = 0;
    const worker = async () => {
      while (next < tags.length) {
        const tag = tags[next++];
        const entry = await this.entryOf(tag);
        // Two tags on one manifest are one checkpoint.
        if (entry !== undefined) entries.set(entry.restoreReference, entry);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.listConcurrency, tags.length) }, worker));
    return [...entries.values()].sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
  }

  /** Deletes, oldest first, the manifests the shared retention rule (../retention.ts) selects; their blobs go at the registry's garbage collection. */
  async applyRetention(policy: RetentionPolicy): Promise<RetentionResult> {
    validateRetentionPolicy(policy);
    const entries = await this.list();
    const doomed = selectForRemoval(entries, policy, this.now());
    const removed: StoredEntry[] = [];
    const failures: StoreError[] = [];
    for (const entry of doomed) {
      const digest = entry.restoreReference.slice(entry.restoreReference.indexOf('@') + 1);
      try {
        await this.client.deleteManifest(digest);
        removed.push(entry);
        this.logger?.info({ restoreReference: entry.restoreReference, namespace: entry.namespace, checkpoint: entry.checkpointName, createdAt: entry.createdAt.toISOString() }, 'checkpoint image removed by retention');
      } catch (err) {
        failures.push(err as StoreError);
      }
    }
    if (failures.length > 0) {
      const first = failures[0];
      throw new StoreError(`retention removed ${removed.length} of ${doomed.length} checkpoint images; ${failures.length} failed: ${first.message}`, { retriable: failures.every((f) => f.retriable), cause: first });
    }
    const gone = new Set(doomed);
    return { kept: entries.filter((e) => !gone.has(e)), removed };
  }

  /** Closes the store's idle connections. */
  close(): void {
    this.transport.close();
  }

  private async entryOf(tag: string): Promise<StoredEntry | undefined> {
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
    return {
      restoreReference: `${this.repository}@${digest}`,
      namespace,
      podName: annotation(CRYO_ANNOTATIONS.podName),
      containerName: annotation(CRYO_ANNOTATIONS.containerName),
      checkpointName: annotation(CRYO_ANNOTATIONS.checkpointName),
      sizeBytes: (parsed.layers ?? []).reduce((sum, layer) => sum + (typeof layer.size === 'number' ? layer.size : 0), 0),
      createdAt,
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

  private remember(key: string, digest: string): void {
    this.digests.delete(key);
    this.digests.set(key, digest);
    if (this.digests.size > DIGEST_CACHE_SIZE) this.digests.delete(this.digests.keys().next().value!);
  }
}
