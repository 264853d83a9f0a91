/**
 * Assembles a running controller from its configuration: the leader election, the Migration and
 * CheckpointSchedule controllers it switches on and off, and /healthz, /readyz and /metrics. main.ts runs it as a
 * process; tests run several in one process against the fake kube-apiserver.
 */
import type { AddressInfo } from 'node:net';
import type { KubeConfig } from '@kubernetes/client-node';
import { createHealthServer, createLogger, loadKubeConfig, type Logger } from '@cryo/common';
import type { ControllerConfig } from './config.ts';
import { createControllerMetrics, type ControllerMetrics } from './controller-metrics.ts';
import { LeaderElector, leaderIdentity } from './leader/leader-election.ts';
import { MigrationController } from './migrations/migration-controller.ts';
import type { MigrationTiming } from './migrations/migration-reconciler.ts';
import { ScheduleController } from './schedules/schedule-controller.ts';

export interface RunningController {
  port: number;
  identity: string;
  metrics: ControllerMetrics;
  migrations: MigrationController;
  schedules: ScheduleController;
  readonly isLeader: boolean;
  /** Stops acting, releases the Lease (another replica takes over at once), closes everything. */
  stop(): Promise<void>;
}

export interface ControllerDeps {
  kubeConfig?: KubeConfig;
  logger?: Logger;
  /** Listen address; all interfaces when absent. */
  host?: string;
  /** Overrides of the timings (tests). */
  timing?: Partial<MigrationTiming>;
  /** The time CheckpointSchedules go by (tests inject theirs). */
  clock?: () => Date;
}

export async function startController(config: ControllerConfig, deps: ControllerDeps = {}): Promise<RunningController> {
  const logger = deps.logger ?? createLogger('cryo-controller');
  const kubeConfig = deps.kubeConfig ?? loadKubeConfig(config.kubeconfig);
  const metrics = createControllerMetrics();
  const identity = leaderIdentity(config.leaderElectionIdentity);
  const elector: { current?: LeaderElector } = {};
  const migrations = new MigrationController({
    kubeConfig,
    logger: logger.child({ part: 'migrations' }),
    metrics,
    concurrency: config.maxConcurrentMigrations,
    instance: `cryo-controller-${identity}`.slice(0, 128),
    isLeader: () => elector.current?.isLeader === true,
    timing: {
      pollIntervalMs: config.pollIntervalSeconds * 1000,
      checkpointTimeoutMs: config.checkpointTimeoutSeconds * 1000,
      evictionTimeoutMs: config.evictionTimeoutSeconds * 1000,
      restoreTimeoutMs: config.restoreTimeoutSeconds * 1000,
      nodeWaitTimeoutMs: config.nodeWaitTimeoutSeconds * 1000,
      ...deps.timing,
    },
  });
  const schedules = new ScheduleController({
    kubeConfig,
    logger: logger.child({ part: 'schedules' }),
    metrics,
    instance: `cryo-controller-${identity}`.slice(0, 128),
    isLeader: () => elector.current?.isLeader === true,
    ...(deps.clock === undefined ? {} : { clock: deps.clock }),
  });
  const leader = new LeaderElector({
    kubeConfig,
    namespace: config.namespace,
    leaseName: config.leaseName,
    identity,
    leaseDurationMs: config.leaseDurationSeconds * 1000,
    renewDeadlineMs: config.renewDeadlineSeconds * 1000,
    retryPeriodMs: config.retryPeriodSeconds * 1000,
    logger: logger.child({ part: 'leader-election' }),
    onStartedLeading: () => {
      metrics.leader.set(1);
      metrics.leadershipChanges.inc({ change: 'started' });
      migrations.startLeading();
      schedules.startLeading();
    },
    onStoppedLeading: () => {
      metrics.leader.set(0);
      metrics.leadershipChanges.inc({ change: 'stopped' });
      migrations.stopLeading();
      schedules.stopLeading();
    },
  });
  elector.current = leader;
  metrics.leader.set(0);

  // Ready once the watches have synced, on every replica, leader or not.
  const http = createHealthServer({ metrics: metrics.metrics, notReadyReason: () => (migrations.hasSynced && schedules.hasSynced ? undefined : 'Migration, CheckpointSchedule and Checkpoint watches not synced yet') });
  await new Promise<void>((resolve) => http.listen(config.port, deps.host, resolve));
  const port = (http.address() as AddressInfo).port;
  try {
    await Promise.all([migrations.start(), schedules.start()]);
  } catch (error) {
    http.closeAllConnections();
    await new Promise((resolve) => http.close(resolve));
    throw error;
  }
  leader.start();
  logger.info({ port, identity, lease: `${config.namespace}/${config.leaseName}` }, 'controller running; electing a leader');
  return {
    port,
    identity,
    metrics,
    migrations,
    schedules,
    get isLeader() {
      return leader.isLeader;
    },
    async stop() {
      await leader.stop();
      await Promise.all([migrations.stop(), schedules.stop()]);
      http.closeAllConnections();
      await new Promise((resolve) => http.close(resolve));
    },
  };
}
