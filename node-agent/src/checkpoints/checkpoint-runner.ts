/**
 * One Checkpoint, start to end, on the node its pod runs on: hooks prepare → the kubelet dumps each
 * container → hooks finish → each archive is read, stored and removed from the kubelet's
 * directory. Whatever fails, the app is resumed (finish is always called after a prepare) and the
 * result says why in words a user can act on.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { annotations, type Checkpoint, type CheckpointedContainer, type CheckpointIdentity, type CheckpointFailure, type CheckpointPodTemplate, type ContainerRuntime, type Logger, type PodCheckpointReference } from '@cryo/common';
import type { CheckpointArchiveInfo, CheckpointEngine } from '../archive/checkpoint-archive-info.ts';
import { StoreError, type CheckpointStore, type StoredCheckpoint } from '../storage/checkpoint-store.ts';
import { podCheckpointOf } from './pod-checkpoint-document.ts';
import { StoreProgressThrottle, type StoreProgress } from './store-progress.ts';
import type { PrepareOptions, PrepareResult, FinishOutcome } from '../hooks/hook-server.ts';

export interface HookCoordinator {
  /** Whether the pod has a hook socket on this node. */
  hasPod(uid: string): boolean;
  prepare(uid: string, options: PrepareOptions): Promise<PrepareResult>;
  finish(uid: string, checkpointId: string, outcome: FinishOutcome): Promise<void>;
}

export interface KubeletCheckpointer {
  checkpoint(namespace: string, pod: string, container: string, options: { timeoutSeconds: number; signal?: AbortSignal }): Promise<{ archivePath: string; durationMs: number }>;
}

export interface CheckpointRunnerDeps {
  hooks: HookCoordinator;
  kubelet: KubeletCheckpointer;
  readArchive(path: string): Promise<CheckpointArchiveInfo>;
  /** Deletes the kubelet's archive once stored (it fills node disks otherwise). */
  removeKubeletArchive(path: string): Promise<void>;
  /**
   * Checks a path the kubelet answered before the agent reads or deletes anything there: resolves
   * to the path to use from then on, or throws why it is refused (kubelet/kubelet-archives.ts: a
   * regular file in --kubelet-checkpoints-dir). A refused path is never read or deleted, and its
   * Checkpoint fails. The agent always sets it (node-agent.ts); only tests whose kubelet is a stub
   * answering made-up paths leave it out.
   */
  confineKubeletArchive?(path: string): Promise<string>;
  logger: Logger;
  hookTimeoutMs: number;
  kubeletTimeoutSeconds: number;
  /** Pause before asking the kubelet again after a transient runtime failure (default 1 s). */
  kubeletRetryDelayMs?: number;
  /** Store progress: at most this long between reports (store-progress.ts; default 10 s), and the clock it is measured on (tests). */
  storeProgressIntervalMs?: number;
  now?: () => number;
}

/**
 * Runtime failures that pass: runc gives up freezing a busy cgroup (cgroup v1 freezer) after a
 * short while and thaws it again ("OCI runtime pause failed: unable to freeze"), and a moment
 * later the same checkpoint goes through. Seen on the test cluster while other work kept both
 * cores busy. Asked again at most this many times; the app stays prepared meanwhile.
 */
const TRANSIENT_KUBELET_FAILURE = /unable to freeze/i;
const KUBELET_RETRIES = 2;

export type RunResult =
  | { phase: 'Succeeded'; message: string; containers: CheckpointedContainer[]; totalSizeBytes: number; podTemplate: CheckpointPodTemplate; podCheckpoint?: PodCheckpointReference }
  | ({ phase: 'Failed' } & CheckpointFailure);

export class CheckpointRunner {
  private readonly deps: CheckpointRunnerDeps;

  /** One container through the kubelet, asked again after a failure that passes (TRANSIENT_KUBELET_FAILURE). */
  private async checkpointContainer(namespace: string, podName: string, container: string, log: Logger): Promise<{ archivePath: string; durationMs: number }> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.deps.kubelet.checkpoint(namespace, podName, container, { timeoutSeconds: this.deps.kubeletTimeoutSeconds });
      } catch (error) {
        if (attempt >= KUBELET_RETRIES || !TRANSIENT_KUBELET_FAILURE.test((error as Error).message)) throw error;
        log.warn({ container, attempt: attempt + 1, err: (error as Error).message }, 'the runtime could not freeze the container; asking the kubelet again');
        await new Promise((resolve) => setTimeout(resolve, this.deps.kubeletRetryDelayMs ?? 1_000));
      }
    }
  }

  constructor(deps: CheckpointRunnerDeps) {
    this.deps = deps;
  }

  /** `onStoreProgress` hears, at a bounded rate, how far the store of each archive got. */
  async run(checkpoint: Checkpoint, pod: V1Pod, containers: readonly string[], store: CheckpointStore, onStoreProgress?: (progress: StoreProgress) => void): Promise<RunResult> {
    const namespace = checkpoint.metadata!.namespace!;
    const name = checkpoint.metadata!.name!;
    const checkpointId = `${namespace}/${name}`;
    const podName = pod.metadata!.name!;
    const podUid = pod.metadata!.uid!;
    const log = this.deps.logger.child({ checkpoint: checkpointId, pod: `${namespace}/${podName}`, podUid });
    const withHooks = pod.metadata?.annotations?.[annotations.HOOKS] === annotations.HOOKS_ENABLED && this.deps.hooks.hasPod(podUid);

    if (withHooks) {
      const prepared = await this.deps.hooks.prepare(podUid, {
        checkpointId,
        reason: checkpoint.spec.reason ?? '',
        timeoutMs: this.deps.hookTimeoutMs,
        containers,
        // A Migration ends superseded: the hook server refuses processes that would misread it.
        purpose: checkpoint.spec.purpose ?? 'Snapshot',
      });
      if (prepared.status === 'failed') {
        await this.deps.hooks.finish(podUid, checkpointId, 'aborted');
        return { phase: 'Failed', reason: 'HooksNotReady', error: `the app's pre-checkpoint hooks did not get ready, so nothing was dumped and the app resumed: ${prepared.reasons.join('; ')}` };
      }
    }

    const dumped: Array<{ container: string; archivePath: string; durationMs: number }> = [];
    let dumpFailure: CheckpointFailure | undefined;
    for (const container of containers) {
      let result: { archivePath: string; durationMs: number };
      try {
        result = await this.checkpointContainer(namespace, podName, container, log);
      } catch (error) {
        dumpFailure = { reason: 'DumpFailed', error: `the kubelet could not checkpoint container "${container}": ${(error as Error).message}` };
        break;
      }
      let archivePath = result.archivePath;
      if (this.deps.confineKubeletArchive !== undefined) {
        try {
          archivePath = await this.deps.confineKubeletArchive(result.archivePath);
        } catch (error) {
          // Not read, not deleted: whatever is at that path is none of the agent's business.
          log.warn({ container, archive: result.archivePath, err: (error as Error).message }, "refused the kubelet's archive path; nothing there is read or deleted");
          dumpFailure = { reason: 'ArchiveRefused', error: `the archive of container "${container}" was refused, so nothing was stored and the app resumed: ${(error as Error).message}` };
          break;
        }
      }
      dumped.push({ container, archivePath, durationMs: result.durationMs });
      log.info({ container, archive: archivePath, durationMs: Math.round(result.durationMs) }, 'container checkpointed');
    }
    // Resume the app before the slow part (storing), and whatever happened; after a Migration's
    // dump, tell it instead that a copy carries on from here (it stays quiet until stopped).
    const outcome = finishOutcome(checkpoint, dumpFailure === undefined);
    if (withHooks) await this.deps.hooks.finish(podUid, checkpointId, outcome);
    const appAfter = withHooks && outcome === 'superseded' ? 'its app was told "superseded" and stays quiet until the pod is stopped' : 'the app was resumed';
    if (dumpFailure !== undefined) {
      await this.discard(dumped.map((d) => d.archivePath), log);
      return { phase: 'Failed', ...dumpFailure };
    }

    const stored: CheckpointedContainer[] = [];
    const results: Array<{ name: string; stored: StoredCheckpoint; mountDestinations: string[] }> = [];
    let totalSizeBytes = 0;
    for (const [index, item] of dumped.entries()) {
      let archive: CheckpointArchiveInfo;
      let result: StoredCheckpoint;
      try {
        archive = await this.deps.readArchive(item.archivePath);
        const progress = onStoreProgress === undefined
          ? undefined
          : new StoreProgressThrottle({ container: item.container, totalBytes: archive.sizeBytes, report: onStoreProgress, intervalMs: this.deps.storeProgressIntervalMs, now: this.deps.now });
        result = await store.store({
          archive,
          checkpoint: { namespace, name, uid: checkpoint.metadata!.uid ?? '' },
          pod: { namespace, name: podName, uid: podUid },
          containerName: item.container,
          ...(progress === undefined ? {} : { onProgress: (storedBytes: number, totalBytes?: number) => progress.update(storedBytes, totalBytes) }),
        });
      } catch (error) {
        await this.discard(dumped.slice(index).map((d) => d.archivePath), log);
        // The containers stored before this one are complete in the store, yet a Failed Checkpoint
        // names none of them (and deleting it removes nothing): they go now, or they stay orphaned.
        const leftover = index === 0 ? '' : await this.removeStored(store, { namespace, name, uid: checkpoint.metadata!.uid ?? '' }, log);
        return { phase: 'Failed', ...storeFailure(error, `storing the checkpoint of container "${item.container}" failed (${appAfter}): ${(error as Error).message}${leftover}`) };
      }
      await this.discard([item.archivePath], log);
      totalSizeBytes += result.sizeBytes;
      results.push({ name: item.container, stored: result, mountDestinations: archive.mountDestinations });
      stored.push({
        name: item.container,
        restoreReference: result.restoreReference,
        referenceType: result.referenceType,
        sizeBytes: result.sizeBytes,
        baseImage: archive.baseImage,
        mountDestinations: archive.mountDestinations,
        ...runtimeOf(archive.engine),
        checkpointDurationSeconds: round(item.durationMs / 1000),
        storeDurationSeconds: round(result.durationMs / 1000),
      });
    }
    // The pod as a whole, once every container is in. Its containers' checkpoints stand without
    // it (each restores on its own), so a failure here is reported, not fatal.
    let podCheckpoint: PodCheckpointReference | undefined;
    let note = '';
    const document = podCheckpointOf({ checkpoint, pod, containers: results, createdAt: new Date() });
    // The same pod, readable with the Checkpoint itself (kubectl cryo restore, migrations).
    const podTemplate: CheckpointPodTemplate = { metadata: { labels: document.pod.labels, annotations: document.pod.annotations }, spec: document.pod.spec };
    try {
      const written = await store.storePodCheckpoint({ document, stored: results });
      podCheckpoint = { reference: written.reference, referenceType: written.referenceType };
    } catch (error) {
      log.warn({ err: (error as Error).message }, 'could not store the pod checkpoint document; the containers are stored');
      note = `; the pod checkpoint document could not be stored (${(error as Error).message}), each container's checkpoint is complete`;
    }
    return {
      phase: 'Succeeded',
      message: `checkpointed ${stored.length} container${stored.length === 1 ? '' : 's'} into the ${store.kind} store${note}`,
      containers: stored,
      totalSizeBytes,
      podTemplate,
      ...(podCheckpoint !== undefined ? { podCheckpoint } : {}),
    };
  }

  /** Removes what the store holds of a Checkpoint that failed; '' when done, else a note naming what stays. */
  private async removeStored(store: CheckpointStore, checkpoint: CheckpointIdentity, log: Logger): Promise<string> {
    try {
      const removed = await store.removeCheckpoint(checkpoint);
      log.info({ removed: removed.map((entry) => entry.restoreReference) }, 'removed the containers stored before the store failed');
      return '';
    } catch (error) {
      log.warn({ err: (error as Error).message }, 'could not remove the containers stored before the store failed');
      return `; the containers stored before it could not be removed (${(error as Error).message}): remove them by hand`;
    }
  }

  private async discard(paths: readonly string[], log: Logger): Promise<void> {
    for (const path of paths) {
      await this.deps.removeKubeletArchive(path).catch((error: unknown) => log.warn({ archive: path, err: (error as Error).message }, "could not remove the kubelet's archive"));
    }
  }
}

/**
 * A store's failure as the Checkpoint reports it: the reason says whether a new Checkpoint may
 * succeed as things are (StoreFailed) or only once someone has acted (credentials or permissions,
 * space, the store's set-up).
 */
export function storeFailure(error: unknown, message: string): CheckpointFailure {
  switch (error instanceof StoreError ? error.blocker : undefined) {
    case 'denied':
      return { reason: 'StoreDenied', error: message };
    case 'full':
      return { reason: 'StoreFull', error: message };
    case 'rejected':
      return { reason: 'StoreRejected', error: message };
    default:
      return { reason: 'StoreFailed', error: message };
  }
}

/** How the pod's processes learn the checkpoint ended: aborted if not dumped, else by its purpose. */
export function finishOutcome(checkpoint: Checkpoint, dumped: boolean): FinishOutcome {
  if (!dumped) return 'aborted';
  return checkpoint.spec.purpose === 'Migration' ? 'superseded' : 'done';
}

/**
 * The runtime that can restore an archive of this engine: the one that wrote it. A Podman archive
 * never comes from a kubelet, and no node restores it, so it records none.
 */
function runtimeOf(engine: CheckpointEngine): { runtime?: ContainerRuntime } {
  return engine === 'podman' ? {} : { runtime: engine };
}

function round(seconds: number): number {
  return Math.round(seconds * 1000) / 1000;
}
