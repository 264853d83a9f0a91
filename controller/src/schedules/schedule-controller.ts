/**
 * The CheckpointSchedule controller: watches CheckpointSchedules (all namespaces) and the
 * Checkpoints they created (label cryo.dev/schedule), and reconciles a schedule when it changes,
 * when one of its Checkpoints does (one that succeeds may let an older one be pruned), and when
 * its next run is due. Only while this replica leads; every replica keeps its watches warm.
 */
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import {
  CHECKPOINT_GROUP,
  CHECKPOINT_PLURAL,
  CHECKPOINT_SCHEDULE_PLURAL,
  CHECKPOINT_SCHEDULES_PATH,
  CHECKPOINT_VERSION,
  CHECKPOINTS_PATH,
  CheckpointUsers,
  EventRecorder,
  SCHEDULE_LABEL,
  WatchedCache,
  type Checkpoint,
  type CheckpointList,
  type CheckpointSchedule,
  type CheckpointScheduleList,
  type Logger,
} from '@cryo/common';
import type { ControllerMetrics } from '../controller-metrics.ts';
import { WorkQueue } from '../migrations/work-queue.ts';
import { ScheduleKube } from './schedule-kube.ts';
import { ScheduleReconciler } from './schedule-reconciler.ts';

export interface ScheduleControllerOptions {
  kubeConfig: KubeConfig;
  logger: Logger;
  metrics: ControllerMetrics;
  /** Who reports the Events (reportingInstance). */
  instance: string;
  isLeader: () => boolean;
  /** The time now; tests inject theirs and call resync() after moving it. */
  clock?: () => Date;
  /** Schedules reconciled at once (each is a few API calls). */
  concurrency?: number;
}

const keyOf = (namespace: string | undefined, name: string | undefined): string => `${namespace}/${name}`;

export class ScheduleController {
  private readonly schedules: WatchedCache<CheckpointSchedule>;
  private readonly checkpoints: WatchedCache<Checkpoint>;
  private readonly queue: WorkQueue;
  private readonly reconciler: ScheduleReconciler;
  private readonly metrics: ControllerMetrics;

  constructor(options: ScheduleControllerOptions) {
    const { kubeConfig, logger } = options;
    this.metrics = options.metrics;
    const api = kubeConfig.makeApiClient(CustomObjectsApi);
    const enqueue = (schedule: CheckpointSchedule) => this.queue.add(keyOf(schedule.metadata?.namespace, schedule.metadata?.name));
    this.schedules = new WatchedCache<CheckpointSchedule>({
      kubeConfig,
      path: CHECKPOINT_SCHEDULES_PATH,
      logger: logger.child({ part: 'schedule-watch' }),
      list: async () => (await api.listClusterCustomObject({ group: CHECKPOINT_GROUP, version: CHECKPOINT_VERSION, plural: CHECKPOINT_SCHEDULE_PLURAL })) as CheckpointScheduleList,
      onAdd: enqueue,
      onUpdate: enqueue,
      onDelete: (schedule) => this.reconciler.forget(schedule),
    });
    this.checkpoints = new WatchedCache<Checkpoint>({
      kubeConfig,
      path: CHECKPOINTS_PATH,
      labelSelector: SCHEDULE_LABEL,
      logger: logger.child({ part: 'scheduled-checkpoint-watch' }),
      list: async () => (await api.listClusterCustomObject({ group: CHECKPOINT_GROUP, version: CHECKPOINT_VERSION, plural: CHECKPOINT_PLURAL, labelSelector: SCHEDULE_LABEL })) as CheckpointList,
      onChange: (checkpoint) => this.queue.add(keyOf(checkpoint.metadata?.namespace, checkpoint.metadata?.labels?.[SCHEDULE_LABEL])),
    });
    this.reconciler = new ScheduleReconciler({
      kube: new ScheduleKube(kubeConfig),
      events: new EventRecorder(kubeConfig, { controller: 'cryo.dev/controller', instance: options.instance }, logger),
      checkpoints: this.checkpoints,
      users: new CheckpointUsers(kubeConfig, { reader: 'the controller', rbacManifest: 'manifests/operator-rbac.yaml' }),
      metrics: options.metrics,
      logger,
      clock: options.clock ?? (() => new Date()),
      isLeader: options.isLeader,
    });
    this.queue = new WorkQueue({ concurrency: options.concurrency ?? 4, logger, kind: 'CheckpointSchedule', worker: (key) => this.work(key) });
  }

  get hasSynced(): boolean {
    return this.schedules.hasSynced && this.checkpoints.hasSynced;
  }

  get synced(): Promise<void> {
    return Promise.all([this.schedules.synced, this.checkpoints.synced]).then(() => undefined);
  }

  async start(): Promise<void> {
    await Promise.all([this.schedules.start(), this.checkpoints.start()]);
  }

  async stop(): Promise<void> {
    this.queue.pause();
    await this.queue.idle();
    await Promise.all([this.schedules.stop(), this.checkpoints.stop()]);
  }

  /** This replica leads: look at every schedule once the watches have listed them (runs missed meanwhile are made up). */
  startLeading(): void {
    this.queue.resume();
    void this.synced.then(() => {
      if (!this.queue.isPaused) this.resync();
    });
  }

  stopLeading(): void {
    this.queue.pause();
    this.reconciler.stopLeading();
  }

  /** Looks at every schedule now (after a leadership change; tests, after moving their clock). */
  resync(): void {
    for (const schedule of this.schedules.list()) this.queue.add(keyOf(schedule.metadata?.namespace, schedule.metadata?.name));
  }

  /** Resolves when no reconcile is running (tests). */
  idle(): Promise<void> {
    return this.queue.idle();
  }

  private async work(key: string) {
    const slash = key.indexOf('/');
    const schedule = this.schedules.get(key.slice(0, slash), key.slice(slash + 1));
    if (schedule === undefined) return undefined;
    try {
      return await this.reconciler.reconcile(schedule);
    } catch (error) {
      this.metrics.scheduleReconcileErrors.inc();
      throw error;
    }
  }
}
