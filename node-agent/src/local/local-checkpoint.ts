/**
 * The node agent's local mode: one Podman container checkpointed into a Cryo store, outside
 * Kubernetes. The same steps as the CheckpointRunner, with Podman in the kubelet's place:
 * (hooks prepare →) `podman container checkpoint --export` (→ hooks finish) → read the archive →
 * store it → remove the export. The result's restoreReference is what `podman container restore`
 * takes: `--import <archive>` for the directory store, `<image>` (after `podman pull`) for the
 * registry store.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '@cryo/common';
import type { CheckpointArchiveInfo } from '../archive/checkpoint-archive-info.ts';
import type { HookCoordinator } from '../checkpoints/checkpoint-runner.ts';
import type { PrepareResult } from '../hooks/hook-server.ts';
import type { CheckpointStore, StoredCheckpoint } from '../storage/checkpoint-store.ts';
import { DEFAULT_PODMAN_ARGV, podmanOk } from './podman-command.ts';
import { checkpointPodmanContainer } from './podman-checkpointer.ts';

/** The app's hooks, run around the dump when the container's processes use the hook SDK. */
export interface LocalHooks {
  coordinator: Pick<HookCoordinator, 'prepare' | 'finish'>;
  /** The hook pod the container's socket directory belongs to. */
  podUid: string;
  /** How long the processes may take to prepare; default 30 s. */
  timeoutMs?: number;
  reason?: string;
  /** Ask only processes that said this CRYO_CONTAINER_NAME (the rest always are asked). */
  containerName?: string;
}

export interface LocalCheckpointOptions {
  /** Podman container name or id. */
  container: string;
  store: CheckpointStore;
  readArchive(path: string): Promise<CheckpointArchiveInfo>;
  /** Where Podman writes the export before it is stored; default a new directory under the temp dir. */
  exportDir?: string;
  /** Keep the container running after the dump; default true (as CRI-O does). */
  leaveRunning?: boolean;
  /** How Podman is run; default `['podman']`. */
  podmanArgv?: readonly string[];
  /** The path Podman sees for a path of this process (default: the same). */
  podmanPath?: (path: string) => string;
  /** Names the checkpoint in the store; default `<container>-<UTC timestamp>`. */
  checkpointName?: string;
  /** The namespace recorded in the store; default `podman`. */
  namespace?: string;
  hooks?: LocalHooks;
  /** Podman's checkpoint may take this long; default 120 s. */
  timeoutMs?: number;
  signal?: AbortSignal;
  logger?: Logger;
}

export interface LocalCheckpointResult extends StoredCheckpoint {
  checkpointName: string;
  /** The archive as read before it was stored (its path no longer exists). */
  archive: CheckpointArchiveInfo;
  /** Podman's checkpoint alone. */
  checkpointDurationMs: number;
  /** The hooks' prepare, when hooks were given. */
  prepared?: PrepareResult;
}

export interface PodmanContainerIdentity {
  id: string;
  name: string;
  /** The Podman pod's id and name; '' when the container is in none. */
  podId: string;
  podName: string;
}

export async function inspectPodmanContainer(container: string, podmanArgv: readonly string[] = DEFAULT_PODMAN_ARGV, signal?: AbortSignal): Promise<PodmanContainerIdentity> {
  const inspected = await podmanOk(podmanArgv, ['container', 'inspect', '--format', '{{.Id}} {{.Name}} {{.Pod}}', container], { timeoutMs: 30_000, signal, what: `podman container inspect of "${container}"` });
  const [id = '', name = '', podId = ''] = inspected.stdout.trim().split(/\s+/);
  let podName = '';
  if (podId !== '') {
    const pod = await podmanOk(podmanArgv, ['pod', 'inspect', '--format', '{{.Name}}', podId], { timeoutMs: 30_000, signal, what: `podman pod inspect of "${podId}"` });
    podName = pod.stdout.trim();
  }
  return { id, name, podId, podName };
}

/**
 * A Podman name as the stores take names: lowercase RFC 1123 (Podman allows capitals and
 * underscores). Only the store's bookkeeping uses it; the archive keeps the container's own name.
 */
export function storeName(name: string): string {
  const cleaned = name.toLowerCase().replace(/[^a-z0-9.-]+/g, '-').replace(/^[^a-z0-9]+/, '').slice(0, 63).replace(/[^a-z0-9]+$/, '');
  return cleaned === '' ? 'container' : cleaned;
}

function timestamp(date = new Date()): string {
  return date.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'z').replace('T', '-').toLowerCase();
}

export async function localCheckpoint(options: LocalCheckpointOptions): Promise<LocalCheckpointResult> {
  const { container, store, hooks, signal, logger } = options;
  const podmanArgv = options.podmanArgv ?? DEFAULT_PODMAN_ARGV;
  const namespace = options.namespace ?? 'podman';
  const identity = await inspectPodmanContainer(container, podmanArgv, signal);
  const checkpointName = options.checkpointName ?? `${storeName(identity.name)}-${timestamp()}`;
  const checkpointId = `${namespace}/${checkpointName}`;
  const log = logger?.child({ container: identity.name, checkpoint: checkpointId });

  const ownExportDir = options.exportDir === undefined;
  const exportDir = options.exportDir ?? (await mkdtemp(join(tmpdir(), 'cryo-local-')));
  try {
    let prepared: PrepareResult | undefined;
    if (hooks !== undefined) {
      prepared = await hooks.coordinator.prepare(hooks.podUid, {
        checkpointId,
        reason: hooks.reason ?? 'local checkpoint',
        timeoutMs: hooks.timeoutMs ?? 30_000,
        ...(hooks.containerName !== undefined ? { containers: [hooks.containerName] } : {}),
      });
      if (prepared.status === 'failed') {
        await hooks.coordinator.finish(hooks.podUid, checkpointId, 'aborted');
        throw new Error(`the app's pre-checkpoint hooks did not get ready, so nothing was dumped and the app resumed: ${prepared.reasons.join('; ')}`);
      }
      log?.info({ sessions: prepared.sessions.length, durationMs: Math.round(prepared.durationMs) }, 'hooks prepared');
    }

    let dumped: { archivePath: string; durationMs: number } | undefined;
    let dumpError: unknown;
    try {
      dumped = await checkpointPodmanContainer(identity.name, {
        exportDir,
        leaveRunning: options.leaveRunning ?? true,
        podmanArgv,
        podmanPath: options.podmanPath,
        timeoutMs: options.timeoutMs,
        signal,
      });
    } catch (error) {
      dumpError = error;
    }
    // Resume the app before the slow part (storing), whatever the dump did.
    if (hooks !== undefined) await hooks.coordinator.finish(hooks.podUid, checkpointId, dumped === undefined ? 'aborted' : 'done');
    if (dumped === undefined) throw dumpError;
    log?.info({ archive: dumped.archivePath, durationMs: Math.round(dumped.durationMs) }, 'container checkpointed');

    try {
      const archive = await options.readArchive(dumped.archivePath);
      const stored = await store.store({
        archive,
        checkpoint: { namespace, name: checkpointName, uid: randomUUID() },
        pod: identity.podId !== '' ? { namespace, name: storeName(identity.podName), uid: identity.podId } : { namespace, name: storeName(identity.name), uid: identity.id },
        containerName: storeName(archive.containerName || identity.name),
        signal,
      });
      log?.info({ restoreReference: stored.restoreReference, sizeBytes: stored.sizeBytes, durationMs: Math.round(stored.durationMs) }, `stored in the ${store.kind} store`);
      return { ...stored, checkpointName, archive, checkpointDurationMs: dumped.durationMs, ...(prepared !== undefined ? { prepared } : {}) };
    } finally {
      await rm(dumped.archivePath, { force: true });
    }
  } finally {
    if (ownExportDir) await rm(exportDir, { recursive: true, force: true });
  }
}
