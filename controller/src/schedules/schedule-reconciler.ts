/**
 * One CheckpointSchedule at a time: is a run due (the latest scheduled time since the last run,
 * within startingDeadlineSeconds; missed runs are made up once, as a CronJob's are), then one
 * Checkpoint per Running pod the selector picks, then each pod's scheduled Checkpoints pruned to
 * keepLast (never one a pod or workload restores from), then status. A run's Checkpoint names are
 * fixed by the schedule, pod and time, so a run repeated (a restart, a new leader, a stale cache)
 * creates nothing twice.
 */
import { createHash } from 'node:crypto';
import type { V1Condition, V1Pod } from '@kubernetes/client-node';
import {
  annotations,
  apiStatusCode,
  CHECKPOINT_API_VERSION,
  CHECKPOINT_KIND,
  CHECKPOINT_SCHEDULE_KIND,
  DEFAULT_KEEP_LAST,
  describeApiError,
  SCHEDULE_LABEL,
  setCondition,
  type Checkpoint,
  type CheckpointSchedule,
  type CheckpointScheduleStatus,
  type CheckpointUse,
  type CheckpointUsers,
  type EventRecorder,
  type Logger,
  type ScheduledCheckpointReference,
} from '@cryo/common';
import type { ControllerMetrics } from '../controller-metrics.ts';
import { CronScheduleError, parseCronSchedule, type CronSchedule } from './cron-schedule.ts';
import { LabelSelectorError, labelSelectorString } from './label-selector.ts';
import type { ScheduleKube } from './schedule-kube.ts';

/** The Events on a CheckpointSchedule, by reason (docs/operations.md#checkpoint-schedules lists them). */
export const SCHEDULE_EVENT_REASONS = {
  CheckpointCreated: 'A run created a Checkpoint of a selected pod',
  CheckpointCreateFailed: 'A run could not create the Checkpoint of some pod (the note says which and why); the next run tries again',
  NoPodsSelected: 'A run found no Running pod matching the selector',
  Pruned: "A pod's scheduled Checkpoint beyond keepLast was deleted (with its data, through the node agent)",
  PruneDeferred: 'A scheduled Checkpoint beyond keepLast is kept: a pod or workload template restores from it, or whether one does could not be read (the note says which); a later look prunes it once nothing does',
  InvalidSchedule: 'spec.schedule, spec.timeZone or spec.selector cannot be used (the note says what is wrong); nothing runs until it is fixed',
} as const;
type ScheduleEventReason = keyof typeof SCHEDULE_EVENT_REASONS;

/** Status condition types and their reasons. */
export const READY = 'Ready';
export const LAST_RUN_SUCCEEDED = 'LastRunSucceeded';

/** Longest wait between looks, so a wall clock that jumps is noticed within it. */
const MAX_WAIT_MS = 5 * 60_000;

export interface ScheduleReconcilerOptions {
  kube: ScheduleKube;
  events: EventRecorder;
  /** The Checkpoints carrying SCHEDULE_LABEL (watched). */
  checkpoints: { list(namespace: string): readonly Checkpoint[] };
  /** Who restores from a Checkpoint: pruning never deletes one in use. */
  users: Pick<CheckpointUsers, 'inUse'>;
  metrics: ControllerMetrics;
  logger: Logger;
  /** The time now (tests inject theirs). */
  clock: () => Date;
  /** The leader election's answer, asked before every write. */
  isLeader: () => boolean;
}

export class NotLeader extends Error {}

export class ScheduleReconciler {
  private readonly options: ScheduleReconcilerOptions;
  /** The last run per schedule uid: a status write lost to a conflict, or a cache behind, must not lose or repeat it. */
  private readonly ran = new Map<string, RunRecord>();
  /**
   * Per schedule uid, the Checkpoints beyond keepLast its last pruning kept because they are in use
   * (by Checkpoint uid): an Event and a log line only when what keeps one changes, and the gauge.
   */
  private readonly deferred = new Map<string, Map<string, CheckpointUse>>();

  constructor(options: ScheduleReconcilerOptions) {
    this.options = options;
  }

  forget(schedule: CheckpointSchedule): void {
    this.ran.delete(schedule.metadata?.uid ?? '');
    this.deferred.delete(schedule.metadata?.uid ?? '');
    this.updateDeferredGauge();
  }

  /** Another replica prunes now and reports what it keeps: this one's findings go (a new leadership reports afresh). */
  stopLeading(): void {
    this.deferred.clear();
    this.updateDeferredGauge();
  }

  /** Runs what is due and prunes; answers when to look again (undefined: when something changes). */
  async reconcile(schedule: CheckpointSchedule, retried = false): Promise<{ requeueAfterMs?: number }> {
    if (schedule.metadata?.deletionTimestamp !== undefined) return {};
    const now = this.options.clock();
    const old = schedule.status ?? {};
    const status: CheckpointScheduleStatus = { ...old, observedGeneration: schedule.metadata?.generation ?? 1 };
    this.carryOverRun(schedule, status);
    let requeueAfterMs: number | undefined;
    try {
      let cron: CronSchedule;
      let selector: string;
      try {
        cron = parseCronSchedule(schedule.spec.schedule, schedule.spec.timeZone);
        selector = labelSelectorString(schedule.spec.selector);
      } catch (error) {
        if (!(error instanceof CronScheduleError || error instanceof LabelSelectorError)) throw error;
        await this.notReady(schedule, status, 'InvalidSchedule', error.message, now);
        return {};
      }
      if (schedule.spec.suspend === true) {
        await this.notReady(schedule, status, 'Suspended', 'spec.suspend is true: no runs until it is false', now);
        return {};
      }
      const due = cron.latestDue(now, this.notBefore(schedule, status, now));
      if (due !== undefined) await this.run(schedule, status, selector, due, now);
      await this.prune(schedule);
      const next = cron.next(now);
      if (next === undefined) {
        await this.notReady(schedule, status, 'InvalidSchedule', `schedule "${schedule.spec.schedule}" matches no date from now on`, now);
        return {};
      }
      status.nextScheduleTime = next.toISOString();
      status.conditions = setCondition(status.conditions, { type: READY, status: 'True', reason: 'Scheduled', message: `next run at ${status.nextScheduleTime}` }, now);
      requeueAfterMs = Math.min(Math.max(next.getTime() - now.getTime(), 1), MAX_WAIT_MS);
      await this.writeIfChanged(schedule, old, status);
      return { requeueAfterMs };
    } catch (error) {
      if (error instanceof NotLeader) return {};
      if (apiStatusCode(error) === 409 && !retried) {
        // The schedule changed since the cache showed it: start over from what the API has now.
        return this.reconcile(await this.options.kube.getSchedule(schedule.metadata!.namespace!, schedule.metadata!.name!), true);
      }
      throw error;
    }
  }

  /**
   * Puts the last run this replica made into status when the schedule read does not show it yet
   * (a cache behind, a write lost to a conflict). Kept while the schedule lives: a cache may lag
   * behind a read that already showed it.
   */
  private carryOverRun(schedule: CheckpointSchedule, status: CheckpointScheduleStatus): void {
    const run = this.ran.get(schedule.metadata?.uid ?? '');
    if (run === undefined) return;
    if (status.lastScheduleTime !== undefined && Date.parse(status.lastScheduleTime) >= Date.parse(run.lastScheduleTime)) return;
    status.lastScheduleTime = run.lastScheduleTime;
    status.lastCheckpoints = run.lastCheckpoints;
    status.conditions = setCondition(status.conditions, run.condition, run.at);
  }

  /** Runs at or before this are done: the last run (or the schedule's creation), or, with a deadline, anything older than it. */
  private notBefore(schedule: CheckpointSchedule, status: CheckpointScheduleStatus, now: Date): Date {
    let notBefore = status.lastScheduleTime !== undefined ? Date.parse(status.lastScheduleTime) : timestampOf(schedule.metadata?.creationTimestamp);
    const deadline = schedule.spec.startingDeadlineSeconds;
    // latestDue excludes notBefore itself; a run exactly `deadline` late still counts.
    if (deadline !== undefined) notBefore = Math.max(notBefore, now.getTime() - deadline * 1000 - 1);
    return new Date(notBefore);
  }

  /** One Checkpoint per Running selected pod, for the run due at `due`. */
  private async run(schedule: CheckpointSchedule, status: CheckpointScheduleStatus, selector: string, due: Date, now: Date): Promise<void> {
    const { metrics } = this.options;
    const namespace = schedule.metadata!.namespace!;
    const pods = (await this.options.kube.listPods(namespace, selector)).filter(isRunning);
    const created: ScheduledCheckpointReference[] = [];
    const failures: string[] = [];
    for (const pod of pods.sort((a, b) => a.metadata!.name!.localeCompare(b.metadata!.name!))) {
      const podName = pod.metadata!.name!;
      const checkpoint = this.checkpointFor(schedule, podName, due);
      const checkpointName = checkpoint.metadata!.name!;
      try {
        this.checkLeader();
        await this.options.kube.createCheckpoint(checkpoint);
        created.push({ podName, checkpointName });
        metrics.scheduledCheckpointsCreated.inc();
        await this.event(schedule, 'Normal', 'CheckpointCreated', `created Checkpoint ${checkpointName} of pod ${podName} for the run due at ${due.toISOString()}`, checkpointName);
      } catch (error) {
        if (error instanceof NotLeader) throw error;
        if (apiStatusCode(error) !== 409) {
          failures.push(`pod ${podName}: ${describeApiError(error)}`);
          continue;
        }
        // AlreadyExists: this run was made before (its status not yet seen), or the name is taken.
        const existing = await this.options.kube.getCheckpoint(namespace, checkpointName);
        if (isOwnedBy(existing, schedule)) created.push({ podName, checkpointName });
        else failures.push(`pod ${podName}: a Checkpoint named ${checkpointName} exists that this schedule did not create; delete or rename it`);
      }
    }
    metrics.scheduleRunDelay.observe(Math.max(0, (now.getTime() - due.getTime()) / 1000));
    status.lastScheduleTime = due.toISOString();
    status.lastCheckpoints = created;
    let condition: Omit<V1Condition, 'lastTransitionTime'>;
    if (pods.length === 0) {
      const message = `no Running pod in namespace ${namespace} matches the selector${selector === '' ? '' : ` ${selector}`} (run due at ${due.toISOString()})`;
      condition = { type: LAST_RUN_SUCCEEDED, status: 'False', reason: 'NoPodsSelected', message };
      metrics.scheduleRuns.inc({ result: 'no_pods' });
      await this.event(schedule, 'Warning', 'NoPodsSelected', message);
    } else if (failures.length > 0) {
      const message = `run due at ${due.toISOString()}: created ${created.length} of ${pods.length} Checkpoints; ${failures.join('; ')}`;
      condition = { type: LAST_RUN_SUCCEEDED, status: 'False', reason: 'CheckpointCreateFailed', message };
      metrics.scheduleRuns.inc({ result: 'failed' });
      await this.event(schedule, 'Warning', 'CheckpointCreateFailed', message);
    } else {
      condition = { type: LAST_RUN_SUCCEEDED, status: 'True', reason: 'CheckpointsCreated', message: `run due at ${due.toISOString()}: created a Checkpoint of each of ${pods.length} pod${pods.length === 1 ? '' : 's'}` };
      metrics.scheduleRuns.inc({ result: 'created' });
    }
    status.conditions = setCondition(status.conditions, condition, now);
    this.ran.set(schedule.metadata!.uid!, { lastScheduleTime: status.lastScheduleTime, lastCheckpoints: created, condition, at: now });
  }

  /**
   * Per pod, keeps the keepLast newest Succeeded scheduled Checkpoints and the keepLast newest
   * Failed or Expired ones, and deletes the older ones. One still in progress is never deleted,
   * so a pod's last good checkpoint goes only once a newer one has succeeded. Nor is one in use
   * (a pod that has not finished or a workload's pod template restores from it, or that could not
   * be read: CheckpointUsers): deleting it would delete its data under a running restore. It stays
   * beyond keepLast, said by an Event, and goes at a later look once nothing uses it.
   */
  private async prune(schedule: CheckpointSchedule): Promise<void> {
    const keepLast = schedule.spec.keepLast ?? DEFAULT_KEEP_LAST;
    const mine = this.options.checkpoints.list(schedule.metadata!.namespace!).filter((c) => isOwnedBy(c, schedule) && c.metadata?.deletionTimestamp === undefined);
    const beyond = [...Map.groupBy(mine, (c) => c.spec.podName).values()].flatMap((checkpoints) =>
      [['Succeeded'], ['Failed', 'Expired']].flatMap((phases) => checkpoints.filter((c) => phases.includes(c.status?.phase ?? '')).sort(newestFirst).slice(keepLast)),
    );
    let inUse = new Map<Checkpoint, CheckpointUse>();
    if (beyond.length > 0) {
      this.checkLeader();
      const identities = beyond.map((checkpoint) => ({ namespace: checkpoint.metadata!.namespace!, name: checkpoint.metadata!.name!, uid: checkpoint.metadata!.uid!, checkpoint }));
      inUse = new Map([...(await this.options.users.inUse(identities))].map(([{ checkpoint }, use]) => [checkpoint, use]));
    }
    for (const checkpoint of beyond) {
      if (inUse.has(checkpoint)) continue;
      this.checkLeader();
      const { name, namespace, uid } = checkpoint.metadata!;
      if (!(await this.options.kube.deleteCheckpoint(namespace!, name!, uid!))) continue;
      this.options.metrics.scheduledCheckpointsPruned.inc();
      await this.event(schedule, 'Normal', 'Pruned', `deleted ${checkpoint.status?.phase} Checkpoint ${name} of pod ${checkpoint.spec.podName}: keeping the last ${keepLast}`, name);
    }
    await this.reportDeferred(schedule, inUse, keepLast);
  }

  /** Says why pruning kept Checkpoints in use: an Event and a log line once per Checkpoint and reason, and the gauge. */
  private async reportDeferred(schedule: CheckpointSchedule, inUse: ReadonlyMap<Checkpoint, CheckpointUse>, keepLast: number): Promise<void> {
    this.checkLeader();
    const scheduleUid = schedule.metadata!.uid!;
    const before = this.deferred.get(scheduleUid);
    const kept = new Map<string, CheckpointUse>();
    for (const [checkpoint, use] of inUse) {
      const { name, uid } = checkpoint.metadata!;
      kept.set(uid!, use);
      if (before?.get(uid!)?.why === use.why) continue;
      this.options.logger.info(
        { schedule: `${schedule.metadata!.namespace}/${schedule.metadata!.name}`, checkpoint: name, cause: use.cause, why: use.why },
        'schedule pruning keeps a Checkpoint in use',
      );
      await this.event(schedule, 'Normal', 'PruneDeferred', `keeps ${checkpoint.status?.phase} Checkpoint ${name} of pod ${checkpoint.spec.podName} beyond the last ${keepLast}: ${use.why}`, name);
    }
    if (kept.size === 0) this.deferred.delete(scheduleUid);
    else this.deferred.set(scheduleUid, kept);
    this.updateDeferredGauge();
  }

  private updateDeferredGauge(): void {
    const byCause: Record<CheckpointUse['cause'], number> = { pod: 0, workload: 0, unknown: 0 };
    for (const ofSchedule of this.deferred.values()) for (const use of ofSchedule.values()) byCause[use.cause]++;
    for (const [cause, count] of Object.entries(byCause)) this.options.metrics.schedulePruneDeferred.set({ cause }, count);
  }

  private async notReady(schedule: CheckpointSchedule, status: CheckpointScheduleStatus, reason: 'InvalidSchedule' | 'Suspended', message: string, now: Date): Promise<void> {
    const old = schedule.status ?? {};
    const before = old.conditions?.find((c) => c.type === READY);
    delete status.nextScheduleTime;
    status.conditions = setCondition(status.conditions, { type: READY, status: 'False', reason, message }, now);
    await this.prune(schedule);
    await this.writeIfChanged(schedule, old, status);
    if (reason === 'InvalidSchedule' && (before?.reason !== reason || before.message !== message)) await this.event(schedule, 'Warning', 'InvalidSchedule', message);
  }

  private async writeIfChanged(schedule: CheckpointSchedule, old: CheckpointScheduleStatus, status: CheckpointScheduleStatus): Promise<void> {
    if (JSON.stringify(old) === JSON.stringify(status)) return;
    this.checkLeader();
    await this.options.kube.writeStatus(schedule, status);
  }

  private checkpointFor(schedule: CheckpointSchedule, podName: string, due: Date): Checkpoint {
    const { name, namespace, uid } = schedule.metadata!;
    const template = schedule.spec.checkpointTemplate ?? {};
    return {
      apiVersion: CHECKPOINT_API_VERSION,
      kind: CHECKPOINT_KIND,
      metadata: {
        name: scheduledCheckpointName(name!, podName, due),
        namespace,
        labels: { [SCHEDULE_LABEL]: name! },
        annotations: { [annotations.SCHEDULED_TIME]: due.toISOString() },
        // Deleting the schedule deletes its Checkpoints (and their data, through the node agent's finalizer).
        ownerReferences: [{ apiVersion: CHECKPOINT_API_VERSION, kind: CHECKPOINT_SCHEDULE_KIND, name: name!, uid: uid!, controller: true }],
      },
      spec: { ...template, podName, reason: template.reason ?? `scheduled by CheckpointSchedule ${name}` },
    };
  }

  private checkLeader(): void {
    if (!this.options.isLeader()) throw new NotLeader();
  }

  private event(schedule: CheckpointSchedule, type: 'Normal' | 'Warning', reason: ScheduleEventReason, note: string, checkpointName?: string): Promise<void> {
    const namespace = schedule.metadata!.namespace!;
    return this.options.events.record({
      regarding: { apiVersion: CHECKPOINT_API_VERSION, kind: CHECKPOINT_SCHEDULE_KIND, namespace, name: schedule.metadata!.name!, uid: schedule.metadata!.uid },
      ...(checkpointName === undefined ? {} : { related: { apiVersion: CHECKPOINT_API_VERSION, kind: CHECKPOINT_KIND, namespace, name: checkpointName } }),
      type,
      reason,
      action: 'Schedule',
      note,
    });
  }
}

interface RunRecord {
  lastScheduleTime: string;
  lastCheckpoints: ScheduledCheckpointReference[];
  condition: Omit<V1Condition, 'lastTransitionTime'>;
  at: Date;
}

const MAX_NAME = 253;
/** `YYYYMMDDHHMM` in UTC: names sort by time. */
const TIME_LENGTH = 12;

/**
 * `<schedule>-<pod>-<YYYYMMDDHHMM>` (the due time in UTC). Over the 253 characters a name may
 * have, the schedule-and-pod part is cut and a hash of it added, so names stay distinct.
 */
export function scheduledCheckpointName(scheduleName: string, podName: string, due: Date): string {
  const time = due.toISOString().slice(0, 16).replace(/[-T:]/g, '');
  const base = `${scheduleName}-${podName}`;
  if (base.length + 1 + TIME_LENGTH <= MAX_NAME) return `${base}-${time}`;
  const hash = createHash('sha256').update(base).digest('hex').slice(0, 8);
  const cut = base.slice(0, MAX_NAME - TIME_LENGTH - hash.length - 2).replace(/[-.]+$/, '');
  return `${cut}-${hash}-${time}`;
}

function isRunning(pod: V1Pod): boolean {
  return pod.status?.phase === 'Running' && pod.metadata?.deletionTimestamp === undefined;
}

/** Created by this schedule: its label, and an owner reference to it (what manifests/operator-checkpoint-policy.yaml lets the controller delete). */
function isOwnedBy(checkpoint: Checkpoint, schedule: CheckpointSchedule): boolean {
  const { name, uid } = schedule.metadata ?? {};
  return checkpoint.metadata?.labels?.[SCHEDULE_LABEL] === name
    && (checkpoint.metadata?.ownerReferences ?? []).some((ref) => ref.uid === uid && ref.kind === CHECKPOINT_SCHEDULE_KIND && ref.name === name);
}

/** A timestamp as the API gives it: a string from the watch, a Date from client-node's typed reads. */
function timestampOf(value: Date | string | undefined): number {
  return value === undefined ? 0 : new Date(value).getTime();
}

/** The run a scheduled Checkpoint belongs to; its creation when the annotation is missing or unreadable. */
function scheduledTimeOf(checkpoint: Checkpoint): number {
  const scheduled = Date.parse(checkpoint.metadata?.annotations?.[annotations.SCHEDULED_TIME] ?? '');
  return Number.isNaN(scheduled) ? timestampOf(checkpoint.metadata?.creationTimestamp) : scheduled;
}

function newestFirst(a: Checkpoint, b: Checkpoint): number {
  return scheduledTimeOf(b) - scheduledTimeOf(a) || b.metadata!.name!.localeCompare(a.metadata!.name!);
}
