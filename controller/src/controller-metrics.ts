/** The controller's Prometheus metrics (`/metrics`, the `cryo_` prefix and process metrics from common). */
import { Metrics } from '@cryo/common';

export function createControllerMetrics(metrics = new Metrics()) {
  return {
    metrics,
    leader: metrics.gauge('controller_leader', '1 while this replica holds the leader-election Lease and acts, else 0'),
    leadershipChanges: metrics.counter('controller_leadership_changes_total', 'Times this replica started or stopped leading', ['change']),
    phaseTransitions: metrics.counter('migration_phase_transitions_total', 'Migrations that entered each phase', ['phase']),
    finished: metrics.counter('migrations_finished_total', 'Migrations finished, by result (Succeeded, Failed) and the reason of a failure', ['result', 'reason']),
    downtime: metrics.histogram('migration_downtime_seconds', 'From the source stopping (eviction) to the pod that carries on running Ready', [], [0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600]),
    duration: metrics.histogram('migration_duration_seconds', 'From a Migration starting to it finishing, either way', ['result'], [1, 5, 10, 30, 60, 120, 300, 600, 1800]),
    reconcileErrors: metrics.counter('migration_reconcile_errors_total', 'Reconciles that failed with an unexpected error (retried with backoff)'),
    scheduleRuns: metrics.counter('schedule_runs_total', 'CheckpointSchedule runs, by result: created (a Checkpoint of every selected pod), failed (some could not be created), no_pods (none selected)', ['result']),
    scheduleRunDelay: metrics.histogram('schedule_run_delay_seconds', 'From the time a CheckpointSchedule run was due to the controller making it (missed runs made up late count here)', [], [0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800, 3600]),
    scheduledCheckpointsCreated: metrics.counter('schedule_checkpoints_created_total', 'Checkpoints created by CheckpointSchedules'),
    scheduledCheckpointsPruned: metrics.counter('schedule_checkpoints_pruned_total', "Scheduled Checkpoints deleted because a pod had more than its schedule's keepLast"),
    schedulePruneDeferred: metrics.gauge('schedule_prune_deferred_checkpoints', "Scheduled Checkpoints beyond their schedule's keepLast that pruning keeps, as its last look at each schedule found them: a pod (cause pod) or a workload template (workload) restores from them, or that could not be read (unknown)", ['cause']),
    scheduleReconcileErrors: metrics.counter('schedule_reconcile_errors_total', 'CheckpointSchedule reconciles that failed with an unexpected error (retried with backoff)'),
  };
}

export type ControllerMetrics = ReturnType<typeof createControllerMetrics>;
