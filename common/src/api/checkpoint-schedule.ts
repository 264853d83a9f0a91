/**
 * The CheckpointSchedule API (`checkpointschedules.cryo.dev/v1alpha1`, namespaced): checkpoint
 * the running pods a selector picks on a cron schedule, and keep the last few of each pod's. The
 * Cryo controller carries it out (controller/src/schedules/). manifests/crd-checkpointschedules.yaml
 * mirrors these types (test/manifests checks both directions).
 */
import type { KubernetesObject, V1Condition, V1LabelSelector } from '@kubernetes/client-node';
import { ANNOTATION_PREFIX } from '../annotations.ts';
import { CHECKPOINT_GROUP, CHECKPOINT_VERSION, type CheckpointSpec } from './checkpoint.ts';

export const CHECKPOINT_SCHEDULE_PLURAL = 'checkpointschedules';
export const CHECKPOINT_SCHEDULE_KIND = 'CheckpointSchedule';

/**
 * On every Checkpoint a schedule created: the schedule's name (`-l cryo.dev/schedule=<name>`
 * lists them). Names of schedules longer than a label value allows (63) are refused by the CRD.
 */
export const SCHEDULE_LABEL = `${ANNOTATION_PREFIX}schedule`;

/** keepLast when the spec leaves it out (the CRD defaults it too). */
export const DEFAULT_KEEP_LAST = 3;

/** The Checkpoint spec fields a schedule sets on each Checkpoint it creates (podName is the selected pod's). */
export type CheckpointTemplate = Pick<CheckpointSpec, 'containers' | 'storageClassName' | 'storage' | 'reason'>;

export interface CheckpointScheduleSpec {
  /**
   * Five fields, minute hour day-of-month month day-of-week, each `*`, a number, a range `a-b`,
   * a step `*\/n` or `a-b/n`, or a comma list of those (no names, no `?`, `L`, `W` or `#`). A day
   * matches when day-of-month or day-of-week matches, if both are restricted (as cron does).
   */
  schedule: string;
  /** An IANA time zone (`Europe/Berlin`) the schedule is read in; UTC when absent. */
  timeZone?: string;
  /** The pods to checkpoint, in the schedule's namespace; only those Running at the time are. An empty selector selects every pod. */
  selector: V1LabelSelector;
  /**
   * How many Succeeded scheduled Checkpoints of each pod to keep (and as many Failed ones); older
   * ones are deleted, except while a pod or workload template restores from one. Default 3.
   */
  keepLast?: number;
  /** No runs while true; a run missed meanwhile is made up on resuming, as startingDeadlineSeconds allows. */
  suspend?: boolean;
  /** A run missed (the controller was down, or suspended) is made up only this many seconds late at most; absent, however late. */
  startingDeadlineSeconds?: number;
  /** What each Checkpoint it creates says besides its pod. */
  checkpointTemplate?: CheckpointTemplate;
}

/** A Checkpoint a run created. */
export interface ScheduledCheckpointReference {
  podName: string;
  checkpointName: string;
}

export interface CheckpointScheduleStatus {
  /** The scheduled time of the last run (not when it ran, which may be later). */
  lastScheduleTime?: string;
  /** When the next run is due (absent while suspended or when the schedule never matches). */
  nextScheduleTime?: string;
  /** The Checkpoints the last run created, one per pod it selected. */
  lastCheckpoints?: ScheduledCheckpointReference[];
  /** `Ready` (False with InvalidSchedule or Suspended) and `LastRunSucceeded` (False when the last run created no Checkpoint for some pod, or selected none). */
  conditions?: V1Condition[];
  observedGeneration?: number;
}

export interface CheckpointSchedule extends KubernetesObject {
  apiVersion?: `${typeof CHECKPOINT_GROUP}/${typeof CHECKPOINT_VERSION}`;
  kind?: typeof CHECKPOINT_SCHEDULE_KIND;
  spec: CheckpointScheduleSpec;
  status?: CheckpointScheduleStatus;
}

export interface CheckpointScheduleList {
  apiVersion?: string;
  kind?: string;
  metadata?: { resourceVersion?: string; continue?: string };
  items: CheckpointSchedule[];
}

/** The list/watch path of all CheckpointSchedules. */
export const CHECKPOINT_SCHEDULES_PATH = `/apis/${CHECKPOINT_GROUP}/${CHECKPOINT_VERSION}/${CHECKPOINT_SCHEDULE_PLURAL}`;
