/**
 * The Migration controller: watches Migrations (all namespaces) and the Checkpoints they created
 * (label cryo.dev/migration-uid), and runs each active Migration's next step through the work
 * queue, only while this replica leads. Every replica keeps its watches warm, so a new leader
 * starts at once from what it already sees.
 */
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import {
  CHECKPOINT_GROUP,
  CHECKPOINT_PLURAL,
  CHECKPOINT_VERSION,
  CHECKPOINTS_PATH,
  EventRecorder,
  isMigrationFinished,
  MIGRATION_KIND,
  MIGRATION_PLURAL,
  MIGRATIONS_PATH,
  WatchedCache,
  type Checkpoint,
  type CheckpointList,
  type Logger,
  type Migration,
  type MigrationList,
} from '@cryo/common';
import type { ControllerMetrics } from '../controller-metrics.ts';
import { MigrationKube } from './migration-kube.ts';
import { keyOf, MIGRATION_UID_LABEL, MigrationReconciler, type MigrationTiming } from './migration-reconciler.ts';
import { WorkQueue } from './work-queue.ts';

export interface MigrationControllerOptions {
  kubeConfig: KubeConfig;
  logger: Logger;
  metrics: ControllerMetrics;
  timing: MigrationTiming;
  concurrency: number;
  /** Who reports the Events (reportingInstance). */
  instance: string;
  /** The leader election's answer, asked before every write. */
  isLeader: () => boolean;
}

export class MigrationController {
  private readonly migrations: WatchedCache<Migration>;
  private readonly checkpoints: WatchedCache<Checkpoint>;
  private readonly queue: WorkQueue;
  private readonly reconciler: MigrationReconciler;
  private readonly metrics: ControllerMetrics;
  /** What this replica last wrote, per key, until the watch shows it (or something newer). */
  private readonly latest = new Map<string, Migration>();

  constructor(options: MigrationControllerOptions) {
    const { kubeConfig, logger } = options;
    this.metrics = options.metrics;
    const api = kubeConfig.makeApiClient(CustomObjectsApi);
    const enqueue = (migration: Migration) => this.queue.add(keyOf(migration));
    this.migrations = new WatchedCache<Migration>({
      kubeConfig,
      path: MIGRATIONS_PATH,
      logger: logger.child({ part: 'migration-watch' }),
      list: async () => (await api.listClusterCustomObject({ group: CHECKPOINT_GROUP, version: CHECKPOINT_VERSION, plural: MIGRATION_PLURAL })) as MigrationList,
      onAdd: enqueue,
      onUpdate: enqueue,
      onDelete: (migration) => this.latest.delete(keyOf(migration)),
    });
    this.checkpoints = new WatchedCache<Checkpoint>({
      kubeConfig,
      path: CHECKPOINTS_PATH,
      labelSelector: MIGRATION_UID_LABEL,
      logger: logger.child({ part: 'checkpoint-watch' }),
      list: async () => (await api.listClusterCustomObject({ group: CHECKPOINT_GROUP, version: CHECKPOINT_VERSION, plural: CHECKPOINT_PLURAL, labelSelector: MIGRATION_UID_LABEL })) as CheckpointList,
      onChange: (checkpoint) => {
        const owner = checkpoint.metadata?.ownerReferences?.find((ref) => ref.kind === MIGRATION_KIND);
        if (owner !== undefined) this.queue.add(`${checkpoint.metadata?.namespace}/${owner.name}`);
      },
    });
    this.reconciler = new MigrationReconciler({
      kube: new MigrationKube(kubeConfig),
      events: new EventRecorder(kubeConfig, { controller: 'cryo.dev/controller', instance: options.instance }, logger),
      checkpoints: this.checkpoints,
      migrations: { list: (namespace) => this.migrations.list(namespace).map((m) => this.newest(keyOf(m), m)!) },
      metrics: options.metrics,
      logger,
      timing: options.timing,
      isLeader: options.isLeader,
    });
    this.queue = new WorkQueue({
      concurrency: options.concurrency,
      logger,
      worker: (key) => this.work(key),
    });
  }

  get hasSynced(): boolean {
    return this.migrations.hasSynced && this.checkpoints.hasSynced;
  }

  get synced(): Promise<void> {
    return Promise.all([this.migrations.synced, this.checkpoints.synced]).then(() => undefined);
  }

  async start(): Promise<void> {
    await Promise.all([this.migrations.start(), this.checkpoints.start()]);
  }

  async stop(): Promise<void> {
    this.queue.pause();
    await this.queue.idle();
    await Promise.all([this.migrations.stop(), this.checkpoints.stop()]);
  }

  /** This replica leads: work on every active Migration, once the watches have listed them. */
  startLeading(): void {
    this.queue.resume();
    void this.synced.then(() => {
      if (this.queue.isPaused) return;
      for (const migration of this.migrations.list()) if (!isMigrationFinished(migration.status?.phase)) this.queue.add(keyOf(migration));
    });
  }

  /** Another replica leads (or none): start nothing more; what runs stops at its next write. */
  stopLeading(): void {
    this.queue.pause();
    this.latest.clear();
  }

  /** Resolves when no step is running (tests). */
  idle(): Promise<void> {
    return this.queue.idle();
  }

  private async work(key: string) {
    const [namespace, name] = splitKey(key);
    const migration = this.newest(key, this.migrations.get(namespace, name));
    if (migration === undefined || isMigrationFinished(migration.status?.phase)) return undefined;
    const result = await this.reconciler.reconcile(migration).catch((error: unknown) => {
      // Unexpected (conflicts and lost leadership are handled inside): the work queue logs it and
      // retries with backoff; the count is what an alert sees.
      this.metrics.reconcileErrors.inc();
      throw error;
    });
    if (result.latest !== undefined) this.latest.set(key, result.latest);
    return result.requeueAfterMs === undefined ? undefined : { requeueAfterMs: result.requeueAfterMs };
  }

  /** The cached Migration, or what this replica wrote when the watch has not shown that yet. */
  private newest(key: string, cached: Migration | undefined): Migration | undefined {
    const written = this.latest.get(key);
    if (written === undefined) return cached;
    if (cached === undefined || cached.metadata?.uid !== written.metadata?.uid) {
      this.latest.delete(key);
      return cached;
    }
    if (newer(written, cached)) return written;
    this.latest.delete(key);
    return cached;
  }
}

function splitKey(key: string): [string, string] {
  const slash = key.indexOf('/');
  return [key.slice(0, slash), key.slice(slash + 1)];
}

/** resourceVersions are opaque, but etcd's are increasing integers; anything else counts as not newer. */
function newer(a: Migration, b: Migration): boolean {
  const ra = a.metadata?.resourceVersion ?? '';
  const rb = b.metadata?.resourceVersion ?? '';
  if (!/^\d+$/.test(ra) || !/^\d+$/.test(rb)) return false;
  return BigInt(ra) > BigInt(rb);
}
