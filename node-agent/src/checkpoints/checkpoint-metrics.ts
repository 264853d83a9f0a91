/**
 * What the agent counts and times about Checkpoints: everything a user waits on (how many, how
 * long each step, how many bytes at what rate, why they failed, what retention removed, how many
 * wait). Names carry the `cryo_` prefix from @cryo/common; docs/operations.md lists them and
 * docs/grafana-dashboard.json charts them.
 */
import type { CheckpointedContainer, Metrics } from '@cryo/common';

const SECONDS = [0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600];
/** Bytes per second, 1 MiB/s to 2 GiB/s. */
const RATES = [1, 4, 16, 64, 128, 256, 512, 1024, 2048].map((mib) => mib * 2 ** 20);

export type StoreKind = 'registry' | 'directory' | 'none';

export class CheckpointMetrics {
  readonly finished;
  readonly duration;
  readonly dumpDuration;
  readonly storeDuration;
  readonly storedBytes;
  readonly storeThroughput;
  readonly inProgress;
  readonly queued;
  readonly retentionRemoved;
  readonly retentionRemovedBytes;
  readonly retentionErrors;
  readonly retentionDeferred;
  readonly orphaned;
  readonly deletions;

  constructor(metrics: Metrics) {
    this.finished = metrics.counter('checkpoints_finished_total', 'Checkpoints this agent finished, by result (Succeeded, Failed), the reason of a failure (docs/operations.md) and the store', ['result', 'reason', 'store']);
    this.duration = metrics.histogram('checkpoint_duration_seconds', 'From claiming a Checkpoint to its final status (hooks, every dump, every store)', ['result'], SECONDS);
    this.dumpDuration = metrics.histogram('checkpoint_dump_duration_seconds', "One container's dump: the kubelet's checkpoint call (the runtime and CRIU)", [], SECONDS);
    this.storeDuration = metrics.histogram('checkpoint_store_duration_seconds', "One container's checkpoint written to its store (compression and upload included)", ['store'], SECONDS);
    this.storedBytes = metrics.counter('checkpoint_stored_bytes_total', 'Bytes written to stores (as stored: a zstd layer counts compressed)', ['store']);
    this.storeThroughput = metrics.histogram('checkpoint_store_throughput_bytes_per_second', "One container's stored bytes over its store duration", ['store'], RATES);
    this.inProgress = metrics.gauge('checkpoints_in_progress', 'Checkpoints this agent is working on now');
    this.queued = metrics.gauge('checkpoints_queued', 'Checkpoints claimed by nobody yet that wait for a free slot here (--max-concurrent-checkpoints) or for the same pod’s earlier one');
    this.retentionRemoved = metrics.counter('retention_removed_total', 'Stored checkpoints (one per container) retention removed', ['store']);
    this.retentionRemovedBytes = metrics.counter('retention_removed_bytes_total', 'Bytes of the stored checkpoints retention removed', ['store']);
    this.deletions = metrics.counter('checkpoint_deletions_total', "Deleted Checkpoints this agent stored, by what became of their data: removed, kept (cryo.dev/keep-data), failed (tried again later), store-unknown (left, with a Warning Event)", ['result']);
    this.retentionErrors = metrics.counter('retention_errors_total', 'Retention runs that failed (the log says why; the next run tries again)', ['store']);
    this.retentionDeferred = metrics.gauge('retention_deferred_checkpoints', 'Stored checkpoints (one per container) retention would remove but keeps, as its last run of each store found them: in use by a pod or a workload template (cause pod, workload), or unknown when that could not be read', ['store', 'cause']);
    this.orphaned = metrics.gauge('orphaned_checkpoints', 'Stored checkpoints (one per container) whose Checkpoint no longer exists, as the last retention run of each store found them (reported, never removed by the agent)', ['store']);
  }

  /** A Succeeded Checkpoint's per-container figures, as its status records them. */
  recordStored(store: StoreKind, containers: readonly CheckpointedContainer[]): void {
    for (const container of containers) {
      if (container.checkpointDurationSeconds !== undefined) this.dumpDuration.observe(container.checkpointDurationSeconds);
      const bytes = container.sizeBytes ?? 0;
      this.storedBytes.inc({ store }, bytes);
      if (container.storeDurationSeconds !== undefined) {
        this.storeDuration.observe({ store }, container.storeDurationSeconds);
        if (container.storeDurationSeconds > 0) this.storeThroughput.observe({ store }, bytes / container.storeDurationSeconds);
      }
    }
  }
}
