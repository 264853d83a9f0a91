/**
 * The directory store: checkpoint archives as files under one root, a hostPath or a network
 * volume several nodes' agents share. The kubelet starts containers only from images, so each
 * archive is also kept as a checkpoint image: its manifest and config are fixed at store time in
 * the sidecar, and the node agent's registry view (directory-registry-view.ts) serves them and the
 * archive on the node's loopback. With a view, store() answers that image's digest-pinned
 * reference; without one, the archive's path (Podman restores from it; Kubernetes cannot).
 *
 * Layout (directory-layout.ts):
 *   <root>/<namespace>/<pod>/<container>/<checkpoint name>-<uid8>.tar          the archive (mode 0600)
 *   <root>/<namespace>/<pod>/<container>/<checkpoint name>-<uid8>.tar.sha256   `sha256sum -c` line
 *   <root>/<namespace>/<pod>/<container>/<checkpoint name>-<uid8>.tar.json     metadata sidecar
 *   <root>/<namespace>/<pod>/<checkpoint name>-<uid8>.pod.json                  the pod checkpoint, once all its archives are in
 *
 * A store is all-or-nothing, and the .tar's name appearing is its commit:
 *   1. the archive is copied to `.<name>.tar.tmp-<random>` beside its final place, hashed in the
 *      same pass, and fsynced;
 *   2. both sidecars are written to temp files the same way and renamed into place, then the
 *      directory is fsynced;
 *   3. the .tar is renamed into place and the directory fsynced again.
 * So whoever sees a .tar (a reader, `sha256sum -c`, CRI-O restoring from it) finds its digest and
 * metadata already there, and no complete-looking archive ever lacks them. A crash leaves only
 * temp files, or sidecars without their .tar; both are told apart from a store in progress by not
 * having been modified for `staleAfterMs` (another node may be storing into a shared root right
 * now), and are then removed by the sweep that runs at construction and on every list(). Removal
 * runs the other way: the .tar goes first (the entry is gone at once), then the sidecars.
 *
 * On failure (ENOSPC, EIO, abort) the temp files, any sidecars already renamed and the
 * directories this store() created are removed before the StoreError is thrown.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, rename, rmdir, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { parsePodCheckpoint, type CheckpointIdentity, type Logger } from '@cryo/common';
import {
  isOfCheckpoint,
  StoreError,
  type CheckpointStore,
  type PodCheckpointRequest,
  type RetentionPolicy,
  type RetentionResult,
  type RetentionScope,
  type StoreRequest,
  type StoredCheckpoint,
  type StoredEntry,
  type StoredPodCheckpoint,
} from '../checkpoint-store.ts';
import { selectForRemovalKeeping, validateRetentionPolicy } from '../retention.ts';
import {
  archivePaths,
  directoryImageName,
  parseSha256Line,
  parseSidecar,
  podCheckpointPath,
  POD_CHECKPOINT_SUFFIX,
  sha256Line,
  SIDECAR_SUFFIX,
  SHA256_SUFFIX,
  tempPathFor,
  TEMP_PATTERN,
  type ArchivePaths,
  type ArchiveSidecar,
} from './directory-layout.ts';
import { buildCheckpointImage, hostFacts } from '../checkpoint-image/checkpoint-image.ts';
import { copyHashed, hashFile, makeDirectories, syncDirectory, writeDurably } from './durable-files.ts';
import { FsStepError, fsStep, storeError } from './fs-step.ts';

export interface DirectoryStoreOptions {
  /** The store's root directory (created when missing). */
  root: string;
  logger: Logger;
  /**
   * Temp files and sidecars without their archive that nobody has modified for this long are a
   * crashed writer's and are removed (default 10 minutes: a store in progress touches its temp
   * file continuously, and its sidecars wait at most one rename for their archive).
   */
  staleAfterMs?: number;
  /** The clock retention ages entries by (tests). */
  now?: () => Date;
  /** Every node sees this root (a network mount): a restore may run on any node. */
  shared?: boolean;
  /**
   * The registry view serving `root` (or a directory above it) at `address` on every node that
   * mounts it: store() then answers image references. Absent: archive paths.
   */
  registryView?: { address: string; root: string };
}

export interface VerifyResult {
  ok: boolean;
  /** `sha256:<hex>` from the .sha256 file. */
  expected: string;
  /** `sha256:<hex>` of the archive as it is now. */
  actual: string;
}

const DEFAULT_STALE_AFTER_MS = 10 * 60 * 1000;

export class DirectoryStore implements CheckpointStore {
  readonly kind = 'directory' as const;
  readonly root: string;
  readonly shared: boolean;
  readonly #registryView: { address: string; root: string } | undefined;
  readonly #logger: Logger;
  readonly #staleAfterMs: number;
  readonly #now: () => Date;
  readonly #initialSweep: Promise<void>;

  constructor(options: DirectoryStoreOptions) {
    this.root = path.resolve(options.root);
    this.shared = options.shared ?? false;
    this.#registryView = options.registryView;
    this.#logger = options.logger.child({ store: 'directory', root: this.root });
    this.#staleAfterMs = options.staleAfterMs ?? DEFAULT_STALE_AFTER_MS;
    this.#now = options.now ?? (() => new Date());
    // What a crash left behind goes before this store is used; list() sweeps again later.
    this.#initialSweep = this.#scan().then(
      () => undefined,
      (err: unknown) => this.#logger.warn({ err }, 'could not sweep the directory store at start; list() will try again'),
    );
  }

  /** Resolves once the sweep started by the constructor is done. */
  ready(): Promise<void> {
    return this.#initialSweep;
  }

  async store(request: StoreRequest): Promise<StoredCheckpoint> {
    const started = performance.now();
    await this.#initialSweep;
    const { archive, checkpoint, pod, containerName, signal, onProgress } = request;
    let paths: ArchivePaths;
    try {
      paths = archivePaths(this.root, { namespace: pod.namespace, podName: pod.name, containerName, checkpointName: checkpoint.name, checkpointUid: checkpoint.uid });
    } catch (err) {
      throw new StoreError(`cannot store the checkpoint of ${pod.namespace}/${pod.name}/${containerName}: ${(err as Error).message}`, { retriable: false, cause: err });
    }

    const random = randomBytes(8).toString('hex');
    const temps = { archive: tempPathFor(paths.archive, random), sha256: tempPathFor(paths.sha256, random), sidecar: tempPathFor(paths.sidecar, random) };
    let createdDirs: string[] = [];
    let placed: 'nothing' | 'sidecars' | 'everything' = 'nothing';
    try {
      createdDirs = await makeDirectories(this.root, paths.dir);
      const copy = await copyHashed(archive.path, temps.archive, signal, onProgress);
      if (copy.bytes !== archive.sizeBytes) {
        throw new StoreError(
          `checkpoint archive ${archive.path} changed while it was stored (${copy.bytes} bytes read, ${archive.sizeBytes} when it was checked): take the checkpoint again`,
          { retriable: false },
        );
      }
      const digest = `sha256:${copy.sha256Hex}`;
      const createdAt = this.#now();
      const image = buildCheckpointImage(request, { digest, size: copy.bytes }, hostFacts(), createdAt);
      const sidecar: ArchiveSidecar = {
        version: 1,
        archive: paths.fileName,
        namespace: pod.namespace,
        podName: pod.name,
        podUid: pod.uid,
        containerName,
        checkpointName: checkpoint.name,
        checkpointUid: checkpoint.uid,
        createdAt: createdAt.toISOString(),
        checkpointedTime: archive.checkpointedTime,
        sizeBytes: copy.bytes,
        digest,
        engine: archive.engine,
        runtime: archive.runtime,
        criuVersion: archive.criuVersion,
        baseImage: archive.baseImage,
        baseImageId: archive.baseImageId,
        mountDestinations: archive.mountDestinations,
        image: { manifest: image.manifest.bytes.toString('utf8'), config: image.config.bytes.toString('utf8') },
      };
      await writeDurably(temps.sha256, sha256Line(copy.sha256Hex, paths.fileName));
      await writeDurably(temps.sidecar, `${JSON.stringify(sidecar, null, 2)}\n`);
      signal?.throwIfAborted();

      // An archive already at this name (the same Checkpoint stored again) is withdrawn first:
      // its sidecars are about to describe the new one.
      await this.#unlinkIfPresent(paths.archive);
      placed = 'sidecars';
      await fsStep('renaming', paths.sha256, () => rename(temps.sha256, paths.sha256));
      await fsStep('renaming', paths.sidecar, () => rename(temps.sidecar, paths.sidecar));
      await syncDirectory(paths.dir);
      signal?.throwIfAborted();
      await fsStep('renaming', paths.archive, () => rename(temps.archive, paths.archive));
      placed = 'everything';
      await syncDirectory(paths.dir);

      const durationMs = performance.now() - started;
      const manifest = { digest: image.manifest.digest, sizeBytes: image.manifest.bytes.length };
      const served = this.#imageName(paths.dir);
      const restoreReference = served === undefined ? paths.archive : `${served}@${manifest.digest}`;
      this.#logger.info({ archive: paths.archive, restoreReference, sizeBytes: copy.bytes, digest, durationMs: Math.round(durationMs) }, 'stored checkpoint archive');
      return { restoreReference, referenceType: served === undefined ? 'archive' : 'image', archivePath: paths.archive, sizeBytes: copy.bytes, digest, durationMs, manifest };
    } catch (err) {
      await this.#undo(temps, placed, paths, createdDirs);
      throw this.#failure(err, request, paths, temps);
    }
  }

  /** The image name the registry view serves `containerDir` as; undefined (and why, logged) when none. */
  #imageName(containerDir: string): string | undefined {
    if (this.#registryView === undefined) return undefined;
    const named = directoryImageName(this.#registryView.address, this.#registryView.root, containerDir);
    if ('name' in named) return named.name;
    this.#logger.warn({ dir: containerDir, problem: named.problem }, 'the registry view cannot serve this archive as an image; its Checkpoint names the archive path, which pods cannot restore from');
    return undefined;
  }

  /** Writes the pod checkpoint document beside its containers' directories: temp file, fsync, rename, fsync. */
  async storePodCheckpoint(request: PodCheckpointRequest): Promise<StoredPodCheckpoint> {
    await this.#initialSweep;
    const { document, signal } = request;
    const { namespace, name: podName } = document.pod;
    let target: string;
    try {
      target = podCheckpointPath(this.root, { namespace, podName, checkpointName: document.checkpoint.name, checkpointUid: document.checkpoint.uid });
    } catch (err) {
      throw new StoreError(`cannot store the pod checkpoint of ${namespace}/${podName}: ${(err as Error).message}`, { retriable: false, cause: err });
    }
    const content = `${JSON.stringify(document, null, 2)}\n`;
    const temp = tempPathFor(target, randomBytes(8).toString('hex'));
    let createdDirs: string[] = [];
    try {
      createdDirs = await makeDirectories(this.root, path.dirname(target));
      await writeDurably(temp, content);
      signal?.throwIfAborted();
      await fsStep('renaming', target, () => rename(temp, target));
      await syncDirectory(path.dirname(target));
    } catch (err) {
      await unlink(temp).catch(() => {});
      for (const dir of [...createdDirs].reverse()) await rmdir(dir).catch(() => {});
      if (err instanceof FsStepError) throw storeError(err, err.path === temp ? target : err.path);
      if (err instanceof StoreError) throw err;
      throw new StoreError(`storing the pod checkpoint ${target} failed: ${(err as Error)?.message ?? String(err)}`, { retriable: true, cause: err });
    }
    this.#logger.info({ podCheckpoint: target, containers: document.containers.map((c) => c.name) }, 'stored pod checkpoint');
    return { reference: target, referenceType: 'file', digest: `sha256:${createHash('sha256').update(content).digest('hex')}` };
  }

  async list(): Promise<StoredEntry[]> {
    await this.#initialSweep;
    const sidecars = await this.#scan();
    return sidecars.map(({ entry }) => entry);
  }

  async applyRetention(policy: RetentionPolicy, scope: RetentionScope = {}): Promise<RetentionResult> {
    validateRetentionPolicy(policy);
    await this.#initialSweep;
    const entries = await this.#scan();
    const doomed = new Set(await selectForRemovalKeeping(entries.map((e) => e.entry), policy, this.#now(), scope));
    return this.#remove(entries, doomed, `retention (${policy.scope})`);
  }

  async removeCheckpoint(checkpoint: CheckpointIdentity): Promise<StoredEntry[]> {
    await this.#initialSweep;
    const entries = await this.#scan();
    const doomed = new Set(entries.map((e) => e.entry).filter((entry) => isOfCheckpoint(entry, checkpoint)));
    const { kept, removed } = await this.#remove(entries, doomed, 'its Checkpoint was deleted');
    const left = kept.filter((entry) => doomed.has(entry));
    if (left.length > 0) throw new StoreError(`could not remove ${left.map((e) => e.restoreReference).join(', ')} (the log says why)`, { retriable: true });
    return removed;
  }

  async #remove(entries: readonly { entry: StoredEntry; sidecar: ArchiveSidecar }[], doomed: ReadonlySet<StoredEntry>, why: string): Promise<RetentionResult> {
    const removed: StoredEntry[] = [];
    const removedCheckpoints = new Set<string>();
    const kept: StoredEntry[] = [];
    for (const { entry, sidecar } of entries) {
      if (!doomed.has(entry)) {
        kept.push(entry);
        continue;
      }
      try {
        // The archive first: from that moment the entry is gone; sidecars left by a crash now are swept later.
        await this.#unlinkIfPresent(entry.restoreReference);
        await this.#unlinkIfPresent(entry.restoreReference + SIDECAR_SUFFIX);
        await this.#unlinkIfPresent(entry.restoreReference + SHA256_SUFFIX);
        await syncDirectory(path.dirname(entry.restoreReference));
        removed.push(entry);
        removedCheckpoints.add(`${sidecar.namespace}/${sidecar.checkpointName}/${sidecar.checkpointUid}`);
        this.#logger.info({ archive: entry.restoreReference, sizeBytes: entry.sizeBytes, createdAt: entry.createdAt.toISOString(), why }, 'removed checkpoint archive');
      } catch (err) {
        kept.push(entry);
        this.#logger.error({ err, archive: entry.restoreReference, why }, 'could not remove checkpoint archive; it stays');
      }
    }
    await this.#removePodCheckpointsOf(removed, removedCheckpoints);
    return { kept, removed };
  }

  /**
   * A pod checkpoint is whole or gone: the documents of the Checkpoints one of whose archives
   * were removed go too (matched by the Checkpoint's namespace, name and uid, whatever their
   * references name).
   */
  async #removePodCheckpointsOf(removed: readonly StoredEntry[], goneCheckpoints: ReadonlySet<string>): Promise<void> {
    for (const podDir of new Set(removed.map((e) => path.dirname(path.dirname(e.restoreReference))))) {
      for (const name of (await this.#readdir(podDir)).filter((n) => n.endsWith(POD_CHECKPOINT_SUFFIX) && !n.startsWith('.'))) {
        const file = path.join(podDir, name);
        const parsed = parsePodCheckpoint(await readFile(file, 'utf8').then((text) => JSON.parse(text) as unknown, () => undefined));
        if (typeof parsed === 'string' || !goneCheckpoints.has(`${parsed.checkpoint.namespace}/${parsed.checkpoint.name}/${parsed.checkpoint.uid}`)) continue;
        await this.#unlinkIfPresent(file).then(
          () => this.#logger.info({ podCheckpoint: file }, 'removed pod checkpoint with its container archives'),
          (err: unknown) => this.#logger.error({ err, podCheckpoint: file }, 'could not remove a pod checkpoint whose archives were removed'),
        );
      }
    }
  }

  /** Hashes the archive at `archivePath` again and compares it with its .sha256 file. */
  async verify(archivePath: string): Promise<VerifyResult> {
    const shaPath = archivePath + SHA256_SUFFIX;
    let line: string;
    try {
      line = await readFile(shaPath, 'utf8');
    } catch (err) {
      throw new StoreError(`cannot verify ${archivePath}: its digest file ${shaPath} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { retriable: false, cause: err });
    }
    const parsed = parseSha256Line(line);
    if (parsed === undefined) throw new StoreError(`cannot verify ${archivePath}: ${shaPath} is not a sha256sum line`, { retriable: false });
    try {
      const actual = await hashFile(archivePath);
      return { ok: actual === parsed.hex, expected: `sha256:${parsed.hex}`, actual: `sha256:${actual}` };
    } catch (err) {
      if (err instanceof FsStepError) throw storeError(err);
      throw err;
    }
  }

  /**
   * Every complete entry under the root, oldest first; removes stale temp files and stale
   * sidecars whose archive is missing on the way.
   */
  async #scan(): Promise<{ entry: StoredEntry; sidecar: ArchiveSidecar }[]> {
    const found: { entry: StoredEntry; sidecar: ArchiveSidecar }[] = [];
    for (const namespace of await this.#subdirectories(this.root)) {
      for (const pod of await this.#subdirectories(namespace)) {
        for (const name of (await this.#readdir(pod)).filter((n) => TEMP_PATTERN.test(n))) {
          await this.#removeIfStale(path.join(pod, name), 'temp file of a pod checkpoint that was not finished');
        }
        for (const container of await this.#subdirectories(pod)) {
          found.push(...(await this.#scanContainer(container)));
        }
      }
    }
    return found.sort((a, b) => a.entry.createdAt.getTime() - b.entry.createdAt.getTime());
  }

  async #scanContainer(dir: string): Promise<{ entry: StoredEntry; sidecar: ArchiveSidecar }[]> {
    const names = new Set(await this.#readdir(dir));
    const found: { entry: StoredEntry; sidecar: ArchiveSidecar }[] = [];
    for (const name of names) {
      const file = path.join(dir, name);
      if (TEMP_PATTERN.test(name)) {
        await this.#removeIfStale(file, 'temp file of a store that did not finish');
        continue;
      }
      if (name.endsWith('.tar') && !names.has(name + SIDECAR_SUFFIX)) {
        this.#logger.warn({ archive: file }, 'archive without its .json sidecar: not written by this store, so neither listed nor removed by retention');
        continue;
      }
      if (!name.endsWith(`.tar${SIDECAR_SUFFIX}`) && !name.endsWith(`.tar${SHA256_SUFFIX}`)) continue;
      const archive = name.endsWith(SIDECAR_SUFFIX) ? name.slice(0, -SIDECAR_SUFFIX.length) : name.slice(0, -SHA256_SUFFIX.length);
      if (!names.has(archive)) {
        await this.#removeIfStale(file, 'sidecar of an archive that was never committed or was being removed');
        continue;
      }
      if (!name.endsWith(SIDECAR_SUFFIX)) continue;
      const sidecar = parseSidecar(await readFile(file, 'utf8').catch(() => ''));
      if (typeof sidecar === 'string') {
        this.#logger.warn({ sidecar: file, problem: sidecar }, 'unreadable checkpoint sidecar: its archive is neither listed nor removed by retention');
        continue;
      }
      const size = await stat(path.join(dir, archive)).then((s) => s.size, () => undefined);
      if (size === undefined) continue; // removed since readdir
      found.push({
        sidecar,
        entry: {
          restoreReference: path.join(dir, archive),
          namespace: sidecar.namespace,
          podName: sidecar.podName,
          containerName: sidecar.containerName,
          checkpointName: sidecar.checkpointName,
          checkpointUid: sidecar.checkpointUid,
          sizeBytes: size,
          createdAt: new Date(sidecar.createdAt),
        },
      });
    }
    return found;
  }

  async #subdirectories(dir: string): Promise<string[]> {
    const entries = await fsStep('listing', dir, () => readdir(dir, { withFileTypes: true })).catch((err: unknown) => {
      if (err instanceof FsStepError && err.code === 'ENOENT') return [];
      throw err;
    });
    return entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => path.join(dir, e.name));
  }

  async #readdir(dir: string): Promise<string[]> {
    return fsStep('listing', dir, () => readdir(dir)).catch((err: unknown) => {
      if (err instanceof FsStepError && err.code === 'ENOENT') return [];
      throw err;
    });
  }

  async #removeIfStale(file: string, what: string): Promise<void> {
    const modified = await stat(file).then((s) => s.mtimeMs, () => undefined);
    if (modified === undefined || Date.now() - modified < this.#staleAfterMs) return;
    await unlink(file).then(
      () => this.#logger.warn({ file, modified: new Date(modified).toISOString() }, `removed a ${what}`),
      (err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') this.#logger.warn({ err, file }, `could not remove a ${what}`);
      },
    );
  }

  async #unlinkIfPresent(file: string): Promise<void> {
    await fsStep('removing', file, () => unlink(file)).catch((err: unknown) => {
      if (err instanceof FsStepError && err.code === 'ENOENT') return;
      throw err;
    });
  }

  /**
   * Removes what a failed store() left: temp files, what it already renamed into place (the
   * archive first, when even the last directory fsync failed), the directories it created.
   */
  async #undo(temps: Record<'archive' | 'sha256' | 'sidecar', string>, placed: 'nothing' | 'sidecars' | 'everything', paths: ArchivePaths, createdDirs: string[]): Promise<void> {
    const files = [
      ...(placed === 'everything' ? [paths.archive] : []),
      temps.archive,
      temps.sha256,
      temps.sidecar,
      ...(placed !== 'nothing' ? [paths.sidecar, paths.sha256] : []),
    ];
    for (const file of files) {
      await unlink(file).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') this.#logger.warn({ err, file }, 'could not remove a file of a failed store; the sweep will');
      });
    }
    for (const dir of [...createdDirs].reverse()) {
      // Only when empty: another store may have started writing into it meanwhile.
      await rmdir(dir).catch(() => {});
    }
  }

  #failure(err: unknown, request: StoreRequest, paths: ArchivePaths, temps: Record<'archive' | 'sha256' | 'sidecar', string>): StoreError {
    if (request.signal?.aborted) {
      return new StoreError(`storing checkpoint archive ${request.archive.path} as ${paths.archive} was aborted: ${String((request.signal.reason as Error | undefined)?.message ?? request.signal.reason)}`, {
        retriable: true,
        cause: err,
      });
    }
    if (err instanceof StoreError) return err;
    if (err instanceof FsStepError) {
      if (err.path === request.archive.path && err.code === 'ENOENT') {
        return new StoreError(`checkpoint archive ${err.path} disappeared before it was stored (ENOENT): take the checkpoint again`, { retriable: false, cause: err });
      }
      const finalOf: Record<string, string> = { [temps.archive]: paths.archive, [temps.sha256]: paths.sha256, [temps.sidecar]: paths.sidecar };
      return storeError(err, finalOf[err.path] ?? err.path);
    }
    return new StoreError(`storing checkpoint archive ${request.archive.path} as ${paths.archive} failed: ${(err as Error)?.message ?? String(err)}`, { retriable: true, cause: err });
  }
}
