/**
 * One Migration, one step at a time. Status is the source of truth: every step reads where the
 * Migration is from status.phase (and its conditions), does what that phase needs, and records
 * the next phase with a resourceVersion-checked write of /status before the next side effect, so
 * a controller restarted anywhere (or a new leader) carries on from the recorded phase, and two
 * writers can never both move a Migration on. Each phase entered is an Event on the Migration.
 *
 *   Pending → validate (validate-migration.ts)
 *   Checkpointing → create `<migration>-<uid>` (purpose Migration), wait until it Succeeded
 *   StoppingSource → record the source's owner, evict it (policy/v1; a budget's 429 is retried)
 *   WaitingForNode (restartInPlace) → wait until the source node is Ready and schedulable again
 *   Restoring → a bare pod: re-create it from the checkpoint (same name, on the target); a
 *     ReplicaSet's or StatefulSet's: its owner creates the replacement, which the webhook
 *     restores (webhook/src/admission/migration-replacement.ts); wait until it runs Ready
 *   Succeeded / Failed → nothing more.
 */
import type { V1Condition, V1NodeSelectorRequirement, V1Pod } from '@kubernetes/client-node';
import {
  annotations,
  apiStatusCode,
  Backoff,
  CHECKPOINT_API_VERSION,
  CHECKPOINT_KIND,
  describeApiError,
  isMigrationFinished,
  MIGRATION_KIND,
  podFromCheckpoint,
  setCondition,
  type Checkpoint,
  type EventRecorder,
  type Logger,
  type Migration,
  type MigrationPhase,
  type MigrationStatus,
} from '@cryo/common';
import type { ControllerMetrics } from '../controller-metrics.ts';
import type { MigrationKube } from './migration-kube.ts';
import { compareMigrations, controllerOf, validateMigration, type ClusterReads } from './validate-migration.ts';
import { nodeUnavailable } from './node-fit.ts';

/** On each Checkpoint a Migration creates: its uid, so the controller watches only those. */
export const MIGRATION_UID_LABEL = 'cryo.dev/migration-uid';

/** True while active: reason is the phase, lastTransitionTime when the Migration entered it. */
export const PROGRESSING = 'Progressing';
/** True once the source was evicted (or found gone): lastTransitionTime is when, which downtime counts from. */
export const SOURCE_STOPPED = 'SourceStopped';

export interface MigrationTiming {
  pollIntervalMs: number;
  checkpointTimeoutMs: number;
  evictionTimeoutMs: number;
  restoreTimeoutMs: number;
  /** 0: no limit. */
  nodeWaitTimeoutMs: number;
  /** A ReplicaSet's fresh (not restored) pod seen this long with no restored one: the webhook missed it. */
  freshReplacementGraceMs?: number;
}

export interface MigrationReconcilerOptions {
  kube: MigrationKube;
  events: EventRecorder;
  /** The watched Checkpoints (those Migrations created). */
  checkpoints: { get(namespace: string, name: string): Checkpoint | undefined };
  /** The watched Migrations. */
  migrations: { list(namespace: string): readonly Migration[] };
  metrics: ControllerMetrics;
  logger: Logger;
  timing: MigrationTiming;
  /** Asked before every write: a replica that stopped leading does nothing more. */
  isLeader: () => boolean;
}

export class NotLeader extends Error {
  override name = 'NotLeader';
}

interface EventNote {
  type?: 'Normal' | 'Warning';
  reason: string;
  note: string;
}

/** What one step decided. */
type Step =
  /** Nothing to record yet: look again later (the watches also wake it). A changed message is written. */
  | { kind: 'wait'; afterMs?: number; message?: string; event?: EventNote }
  /** Record this (the same phase or the next) and go on. */
  | { kind: 'advance'; phase: MigrationPhase; status?: Partial<MigrationStatus>; message: string; event?: EventNote; warnings?: string[]; conditions?: Omit<V1Condition, 'lastTransitionTime'>[] }
  | { kind: 'fail'; reason: string; message: string };

export class MigrationReconciler {
  private readonly options: MigrationReconcilerOptions;
  private readonly evictionBackoffs = new Map<string, Backoff>();
  private readonly freshSeen = new Map<string, number>();

  constructor(options: MigrationReconcilerOptions) {
    this.options = options;
  }

  /**
   * Runs steps until one waits; returns when to look again and the Migration as last written
   * (the cache may not show it yet).
   */
  async reconcile(migration: Migration): Promise<{ requeueAfterMs?: number; latest?: Migration }> {
    let current = migration;
    let latest: Migration | undefined;
    try {
      for (let steps = 0; steps < 10; steps++) {
        if (isMigrationFinished(current.status?.phase)) {
          this.forget(current);
          return { ...(latest === undefined ? {} : { latest }) };
        }
        const step = await this.step(current);
        if (step.kind === 'wait') {
          if (step.message !== undefined && step.message !== current.status?.message) {
            latest = await this.write(current, { ...current.status, message: step.message });
            if (step.event !== undefined) await this.event(latest, step.event);
          }
          return { requeueAfterMs: step.afterMs ?? this.options.timing.pollIntervalMs, ...(latest === undefined ? {} : { latest }) };
        }
        current = latest = await this.apply(current, step);
      }
      return { requeueAfterMs: 0, latest: current };
    } catch (error) {
      if (error instanceof NotLeader) return {};
      if (apiStatusCode(error) === 409) {
        // Someone wrote it since it was read: read it again and start over.
        const fresh = await this.options.kube.getMigration(current.metadata!.namespace!, current.metadata!.name!);
        return { requeueAfterMs: 0, ...(fresh === undefined ? {} : { latest: fresh }) };
      }
      throw error;
    }
  }

  private step(migration: Migration): Promise<Step> {
    switch (migration.status?.phase ?? 'Pending') {
      case 'Pending':
        return this.pending(migration);
      case 'Checkpointing':
        return this.checkpointing(migration);
      case 'StoppingSource':
        return this.stoppingSource(migration);
      case 'WaitingForNode':
        return this.waitingForNode(migration);
      case 'Restoring':
        return this.restoring(migration);
      default:
        return Promise.resolve({ kind: 'wait' });
    }
  }

  // --- Pending: decide whether it can work at all.

  private async pending(migration: Migration): Promise<Step> {
    const namespace = migration.metadata!.namespace!;
    const { kube } = this.options;
    const reads: ClusterReads = {
      pod: (ns, name) => kube.getPod(ns, name),
      node: (name) => kube.getNode(name),
      nodes: () => kube.listNodes(),
      pvc: (ns, name) => kube.getClaim(ns, name),
      pv: (name) => kube.getVolume(name),
    };
    const validation = await validateMigration(migration, reads, this.options.migrations.list(namespace));
    if (!validation.ok) return { kind: 'fail', reason: 'Refused', message: `${validation.message}; nothing was done` };
    const { plan } = validation;
    const checkpointName = checkpointNameOf(migration);
    const where = plan.targetNodeName === undefined ? 'another node' : plan.targetNodeName === plan.sourceNodeName ? `its own node ${plan.sourceNodeName}` : `node ${plan.targetNodeName}`;
    return {
      kind: 'advance',
      phase: 'Checkpointing',
      status: {
        sourceNodeName: plan.sourceNodeName,
        sourcePodUID: plan.pod.metadata?.uid,
        checkpointName,
        ...(plan.targetNodeName === undefined ? {} : { targetNodeName: plan.targetNodeName }),
        startTime: new Date().toISOString(),
      },
      message: `checkpointing pod ${migration.spec.podName} on node ${plan.sourceNodeName} (Checkpoint ${checkpointName}) to move it to ${where}`,
      event: { reason: 'Checkpointing', note: `checkpointing pod ${migration.spec.podName} on node ${plan.sourceNodeName} into Checkpoint ${checkpointName}; it goes to ${where}` },
      warnings: plan.warnings,
    };
  }

  // --- Checkpointing: the Checkpoint, until it succeeded.

  private async checkpointing(migration: Migration): Promise<Step> {
    const namespace = migration.metadata!.namespace!;
    const status = migration.status!;
    const name = status.checkpointName ?? checkpointNameOf(migration);
    let checkpoint = await this.checkpoint(namespace, name);
    if (checkpoint === undefined) {
      try {
        checkpoint = await this.options.kube.createCheckpoint(this.checkpointFor(migration, name));
        this.options.logger.info({ migration: keyOf(migration), checkpoint: name }, 'created the Checkpoint');
      } catch (error) {
        if (apiStatusCode(error) !== 409) {
          // Refused (RBAC, an admission policy, a quota): say so, retry, and give up with the checkpoint timeout.
          const since = phaseEnteredAt(migration) ?? Date.now();
          const why = `creating Checkpoint ${name} failed: ${describeApiError(error)}`;
          if (Date.now() - since >= this.options.timing.checkpointTimeoutMs) return { kind: 'fail', reason: 'CheckpointNotCreated', message: `${why}; the source pod keeps running` };
          return { kind: 'wait', afterMs: Math.max(this.options.timing.pollIntervalMs, 5000), message: `${why}; retrying` };
        }
        checkpoint = await this.options.kube.getCheckpoint(namespace, name);
        if (checkpoint === undefined) return { kind: 'wait', afterMs: 0 };
      }
    }
    if (!(checkpoint.metadata?.ownerReferences ?? []).some((ref) => ref.uid === migration.metadata?.uid)) {
      return { kind: 'fail', reason: 'CheckpointNameTaken', message: `a Checkpoint named ${name} exists that this Migration did not create; delete it or create the Migration under another name; the source pod keeps running` };
    }
    const phase = checkpoint.status?.phase;
    if (phase === 'Failed' || phase === 'Expired') {
      return { kind: 'fail', reason: 'CheckpointFailed', message: `Checkpoint ${name} ${phase === 'Failed' ? 'failed' : 'expired'}: ${checkpoint.status?.message ?? 'no message'}; the source pod keeps running` };
    }
    if (phase !== 'Succeeded') {
      const createdAt = Date.parse(String(checkpoint.metadata?.creationTimestamp ?? '')) || Date.now();
      const left = createdAt + this.options.timing.checkpointTimeoutMs - Date.now();
      if (left <= 0) {
        const node = checkpoint.status?.nodeName ?? status.sourceNodeName;
        return {
          kind: 'fail',
          reason: 'CheckpointTimedOut',
          message: `Checkpoint ${name} did not succeed within ${seconds(this.options.timing.checkpointTimeoutMs)} (it is ${phase ?? 'not yet claimed'}${checkpoint.status?.message ? `: ${checkpoint.status.message}` : ''}); is the node agent running on node ${node}? The source pod keeps running`,
        };
      }
      // The Checkpoint watch wakes it; the timer only catches the timeout.
      return { kind: 'wait', afterMs: left, message: `waiting for Checkpoint ${name} (${phase ?? 'not yet claimed by a node agent'})` };
    }
    return this.afterCheckpoint(migration, checkpoint);
  }

  /** The Checkpoint succeeded: make sure the rest can work before the source is stopped. */
  private async afterCheckpoint(migration: Migration, checkpoint: Checkpoint): Promise<Step> {
    const namespace = migration.metadata!.namespace!;
    const status = migration.status!;
    const name = checkpoint.metadata!.name!;
    const keeps = 'the source pod keeps running';
    const storage = checkpoint.status?.storage;
    const heldBy = storage?.type === 'directory' && storage.shared !== true ? checkpoint.status?.nodeName : undefined;
    const target = targetNodeOf(migration);
    if (heldBy !== undefined && target !== heldBy) {
      return {
        kind: 'fail',
        reason: 'CheckpointNotPortable',
        message: `Checkpoint ${name} is in the own directory store of node ${heldBy}, which only that node serves, so it cannot be restored on ${target === undefined ? 'another node' : `node ${target}`}; use a storage class with a registry or a shared directory (spec.storageClassName); ${keeps}`,
      };
    }
    const pod = await this.options.kube.getPod(namespace, migration.spec.podName);
    if (pod === undefined || pod.metadata?.uid !== status.sourcePodUID || pod.metadata?.deletionTimestamp !== undefined) {
      return { kind: 'fail', reason: 'SourceGone', message: `pod ${migration.spec.podName} went away while it was checkpointed; nothing was stopped or restored (Checkpoint ${name} is kept)` };
    }
    const owner = controllerOf(pod);
    const sourceOwner = owner === undefined ? undefined : { kind: owner.kind, name: owner.name, uid: owner.uid };
    if (sourceOwner === undefined) {
      // A bare pod is re-created from the checkpoint's pod template: it must be there before the source goes.
      try {
        podFromCheckpoint(checkpoint, { name: migration.spec.podName });
      } catch (error) {
        return { kind: 'fail', reason: 'CheckpointNotRestorable', message: `${(error as Error).message}; ${keeps}` };
      }
    }
    return {
      kind: 'advance',
      phase: 'StoppingSource',
      status: sourceOwner === undefined ? {} : { sourceOwner },
      message: `Checkpoint ${name} succeeded; evicting pod ${migration.spec.podName} from node ${status.sourceNodeName}`,
      event: { reason: 'CheckpointSucceeded', note: `Checkpoint ${name} succeeded (${checkpoint.status?.totalSize ?? 'size unknown'}); evicting pod ${migration.spec.podName}${sourceOwner === undefined ? '' : `, whose ${sourceOwner.kind} ${sourceOwner.name} creates the replacement the webhook restores`}` },
    };
  }

  private checkpointFor(migration: Migration, name: string): Checkpoint {
    const { spec } = migration;
    return {
      apiVersion: CHECKPOINT_API_VERSION,
      kind: CHECKPOINT_KIND,
      metadata: {
        name,
        namespace: migration.metadata!.namespace!,
        labels: { [MIGRATION_UID_LABEL]: migration.metadata!.uid! },
        // Deleting the Migration deletes its Checkpoint (and the data, through the node agent's retention).
        ownerReferences: [{ apiVersion: CHECKPOINT_API_VERSION, kind: MIGRATION_KIND, name: migration.metadata!.name!, uid: migration.metadata!.uid!, controller: true }],
      },
      spec: {
        podName: spec.podName,
        purpose: 'Migration',
        ...(spec.storageClassName === undefined ? {} : { storageClassName: spec.storageClassName }),
        ...(spec.reason === undefined ? {} : { reason: spec.reason }),
      },
    };
  }

  // --- StoppingSource: evict the source, which a PodDisruptionBudget may hold up.

  private async stoppingSource(migration: Migration): Promise<Step> {
    const namespace = migration.metadata!.namespace!;
    const status = migration.status!;
    const uid = migration.metadata!.uid!;
    if (status.sourceOwner !== undefined) {
      const ahead = this.migrationAhead(migration);
      if (ahead !== undefined) {
        return { kind: 'wait', message: `waiting for Migration ${ahead} of the same ${status.sourceOwner.kind} ${status.sourceOwner.name} to get its pod back first (the webhook tells their replacements apart by order)` };
      }
    }
    let eviction: Awaited<ReturnType<MigrationKube['evict']>>;
    try {
      eviction = await this.options.kube.evict(namespace, migration.spec.podName, status.sourcePodUID);
    } catch (error) {
      // Anything but a budget (RBAC, the apiserver away): said in status, retried like a budget's refusal.
      eviction = { outcome: 'blocked', message: describeApiError(error) };
    }
    if (eviction.outcome === 'blocked') {
      const since = phaseEnteredAt(migration) ?? Date.now();
      if (Date.now() - since >= this.options.timing.evictionTimeoutMs) {
        return { kind: 'fail', reason: 'EvictionBlocked', message: `evicting pod ${migration.spec.podName} was refused for ${seconds(this.options.timing.evictionTimeoutMs)} (${eviction.message}); the source pod keeps running (Checkpoint ${status.checkpointName} is kept)` };
      }
      let backoff = this.evictionBackoffs.get(uid);
      if (backoff === undefined) this.evictionBackoffs.set(uid, (backoff = new Backoff({ initialMs: 1000, maxMs: 30_000 })));
      const byBudget = eviction.budget === true ? ', most likely by a PodDisruptionBudget' : '';
      const message = `evicting pod ${migration.spec.podName}: refused (${eviction.message})${byBudget}; retrying with backoff for up to ${seconds(this.options.timing.evictionTimeoutMs)}`;
      return { kind: 'wait', afterMs: backoff.next(), message, event: { type: 'Warning', reason: 'EvictionBlocked', note: message } };
    }
    this.evictionBackoffs.delete(uid);
    const restartInPlace = migration.spec.restartInPlace === true;
    const how = eviction.outcome === 'evicted' ? `evicted pod ${migration.spec.podName} from node ${status.sourceNodeName}` : `pod ${migration.spec.podName} was already gone`;
    const next = restartInPlace
      ? `waiting for node ${status.sourceNodeName} to be Ready and schedulable again (kubectl cryo uncordon ${status.sourceNodeName})`
      : status.sourceOwner === undefined
        ? `re-creating it from Checkpoint ${status.checkpointName}`
        : `waiting for ${status.sourceOwner.kind} ${status.sourceOwner.name} to create its replacement, which the webhook restores from Checkpoint ${status.checkpointName}`;
    return {
      kind: 'advance',
      phase: restartInPlace ? 'WaitingForNode' : 'Restoring',
      message: `${how}; ${next}`,
      event: { reason: eviction.outcome === 'evicted' ? 'SourceEvicted' : 'SourceGone', note: `${how}; ${next}` },
      conditions: [{ type: SOURCE_STOPPED, status: 'True', reason: eviction.outcome === 'evicted' ? 'Evicted' : 'AlreadyGone', message: how }],
    };
  }

  /** Another Migration of the same owner that must get its replacement first, by name. */
  private migrationAhead(migration: Migration): string | undefined {
    const ownerUid = migration.status?.sourceOwner?.uid;
    const others = this.options.migrations.list(migration.metadata!.namespace!).filter((other) =>
      other.metadata?.uid !== migration.metadata?.uid && other.status?.sourceOwner?.uid === ownerUid && !isMigrationFinished(other.status?.phase));
    // Evicted and its replacement not found yet: the next pod the owner creates is taken for that one's.
    const unmatched = others.find((other) => (other.status?.phase === 'WaitingForNode' || other.status?.phase === 'Restoring') && !other.status?.targetPodName);
    if (unmatched !== undefined) return unmatched.metadata?.name;
    const older = others.find((other) => other.status?.phase === 'StoppingSource' && compareMigrations(other, migration) < 0);
    return older?.metadata?.name;
  }

  // --- WaitingForNode (restartInPlace): the source node back, Ready and schedulable.

  private async waitingForNode(migration: Migration): Promise<Step> {
    const nodeName = migration.status!.sourceNodeName!;
    const node = await this.options.kube.getNode(nodeName);
    const problem = node === undefined ? `node ${nodeName} does not exist (yet)` : nodeUnavailable(node);
    if (problem === undefined) {
      return {
        kind: 'advance',
        phase: 'Restoring',
        message: `node ${nodeName} is Ready and schedulable again; restoring pod ${migration.spec.podName} there`,
        event: { reason: 'NodeReady', note: `node ${nodeName} is Ready and schedulable again; restoring pod ${migration.spec.podName} there from Checkpoint ${migration.status!.checkpointName}` },
      };
    }
    const { nodeWaitTimeoutMs } = this.options.timing;
    const since = phaseEnteredAt(migration) ?? Date.now();
    if (nodeWaitTimeoutMs > 0 && Date.now() - since >= nodeWaitTimeoutMs) {
      return { kind: 'fail', reason: 'NodeNotBack', message: `${problem} after ${seconds(nodeWaitTimeoutMs)}; the pod was not restored: restore it from Checkpoint ${migration.status!.checkpointName} by hand (cryo.dev/restore-from)` };
    }
    return { kind: 'wait', message: `waiting for node ${nodeName} to be Ready and schedulable again (kubectl cryo uncordon ${nodeName}): ${problem}` };
  }

  // --- Restoring: the pod that carries on, until it runs Ready.

  private async restoring(migration: Migration): Promise<Step> {
    const namespace = migration.metadata!.namespace!;
    const status = migration.status!;
    const checkpoint = await this.checkpoint(namespace, status.checkpointName!);
    if (checkpoint === undefined) {
      return { kind: 'fail', reason: 'CheckpointGone', message: `Checkpoint ${status.checkpointName} was deleted before pod ${migration.spec.podName} was restored from it; the pod is gone` };
    }
    const pod = status.sourceOwner === undefined ? await this.recreatedPod(migration, checkpoint) : await this.replacementPod(migration, checkpoint);
    if ('kind' in pod) return pod;
    return this.untilReady(migration, pod.pod);
  }

  /** A bare pod: the same name, once the source is gone, from the checkpoint's pod template. */
  private async recreatedPod(migration: Migration, checkpoint: Checkpoint): Promise<Step | { pod: V1Pod }> {
    const namespace = migration.metadata!.namespace!;
    const status = migration.status!;
    const name = migration.spec.podName;
    const existing = await this.options.kube.getPod(namespace, name);
    if (existing !== undefined) {
      if (existing.metadata?.uid === status.sourcePodUID) {
        // Every moment here is downtime: look again sooner than the poll interval (one GET).
        const step = this.orTimeout(migration, `waiting for the source pod ${name} to be gone before re-creating it`);
        return step.kind === 'wait' ? { ...step, afterMs: Math.min(this.options.timing.pollIntervalMs, 200) } : step;
      }
      if (existing.metadata?.annotations?.[annotations.RESTORED_CHECKPOINT_UID] !== checkpoint.metadata?.uid) {
        return { kind: 'fail', reason: 'NameTaken', message: `a pod named ${name} was created meanwhile that is not the one restored from Checkpoint ${checkpoint.metadata?.name}; restore by hand from that Checkpoint under another name` };
      }
      if (status.targetPodName !== name) {
        return { kind: 'advance', phase: 'Restoring', status: { targetPodName: name }, message: `pod ${name} was re-created from Checkpoint ${checkpoint.metadata?.name}; waiting for it to run Ready` };
      }
      return { pod: existing };
    }
    const target = targetNodeOf(migration);
    const pod = podFromCheckpoint(checkpoint, { name, ...(target === undefined ? {} : { nodeName: target }) });
    if (target === undefined) avoidNode(pod, status.sourceNodeName!);
    try {
      const created = await this.options.kube.createPod(namespace, pod);
      if (created.metadata?.annotations?.[annotations.RESTORED_CHECKPOINT_UID] !== checkpoint.metadata?.uid) {
        // Only the webhook restores, at admission: what was admitted without it starts fresh.
        return {
          kind: 'fail',
          reason: 'NotRestored',
          message: `pod ${name} was created but not restored from Checkpoint ${checkpoint.metadata?.name}: the webhook did not mutate it (is the MutatingWebhookConfiguration cryo-webhook installed?), so it starts fresh`,
        };
      }
      const where = target === undefined ? `any node but ${status.sourceNodeName}` : `node ${target}`;
      this.options.logger.info({ migration: keyOf(migration), pod: name, node: target }, 'created the pod from the checkpoint');
      return {
        kind: 'advance',
        phase: 'Restoring',
        status: { targetPodName: name },
        message: `re-created pod ${name} from Checkpoint ${checkpoint.metadata?.name}, pinned to ${where}; waiting for it to run Ready`,
        event: { reason: 'PodRecreated', note: `re-created pod ${name} (uid ${created.metadata?.uid}) from Checkpoint ${checkpoint.metadata?.name}, pinned to ${where}` },
      };
    } catch (error) {
      if (apiStatusCode(error) === 409) return { kind: 'wait', afterMs: 0 };
      // The webhook refused it, say (a checkpoint it cannot restore): that is worth reading in status; it is retried.
      return this.orTimeout(migration, `creating pod ${name} from Checkpoint ${checkpoint.metadata?.name} failed: ${describeApiError(error)}; retrying`);
    }
  }

  /** A ReplicaSet's or StatefulSet's pod: its owner's replacement, restored by the webhook. */
  private async replacementPod(migration: Migration, checkpoint: Checkpoint): Promise<Step | { pod: V1Pod }> {
    const namespace = migration.metadata!.namespace!;
    const status = migration.status!;
    const owner = status.sourceOwner!;
    const uid = migration.metadata!.uid!;
    const statefulSet = owner.kind === 'StatefulSet';
    // A StatefulSet's replacement has the source's name; a ReplicaSet's has the source's labels
    // (pod-template-hash among them), so only those pods are listed, however big the namespace.
    const candidates = statefulSet
      ? [await this.options.kube.getPod(namespace, migration.spec.podName)].filter((pod) => pod !== undefined)
      : await this.options.kube.listPods(namespace, labelSelectorOf(checkpoint.status?.podTemplate?.metadata?.labels));
    const pods = candidates.filter((pod) => controllerOf(pod)?.uid === owner.uid && pod.metadata?.uid !== status.sourcePodUID);
    const restored = pods.filter((pod) => pod.metadata?.annotations?.[annotations.RESTORED_CHECKPOINT_UID] === checkpoint.metadata?.uid);
    const mine = restored.find((pod) => pod.metadata?.name === status.targetPodName) ?? restored[0];
    if (mine !== undefined) {
      this.freshSeen.delete(uid);
      if (status.targetPodName !== mine.metadata?.name) {
        const name = mine.metadata!.name!;
        return {
          kind: 'advance',
          phase: 'Restoring',
          status: { targetPodName: name },
          message: `${owner.kind} ${owner.name} created pod ${name}, which the webhook restores from Checkpoint ${checkpoint.metadata?.name}; waiting for it to run Ready`,
          event: { reason: 'ReplacementRestoring', note: `${owner.kind} ${owner.name} created pod ${name}; the webhook restores it from Checkpoint ${checkpoint.metadata?.name}` },
        };
      }
      return { pod: mine };
    }
    const stoppedAt = conditionTime(migration, SOURCE_STOPPED) ?? 0;
    // Created after the source stopped (a second's leeway: pods' timestamps are whole seconds).
    const fresh = pods.filter((pod) => (Date.parse(String(pod.metadata?.creationTimestamp ?? '')) || 0) >= stoppedAt - 1000 && !pod.metadata?.annotations?.[annotations.RESTORED_CHECKPOINT_UID]);
    if (fresh.length > 0) {
      const firstSeen = this.freshSeen.get(uid) ?? Date.now();
      this.freshSeen.set(uid, firstSeen);
      const grace = this.options.timing.freshReplacementGraceMs ?? 5000;
      // A StatefulSet makes exactly this one; a ReplicaSet may be scaling up too, so give its replacement a moment.
      if (statefulSet || Date.now() - firstSeen >= grace) {
        const names = fresh.map((pod) => pod.metadata?.name).join(', ');
        return {
          kind: 'fail',
          reason: 'ReplacementStartedFresh',
          message: `${owner.kind} ${owner.name} replaced the pod with ${names}, which started fresh, not from Checkpoint ${checkpoint.metadata?.name}: ` +
            'the webhook (migrate.cryo.dev, failurePolicy Ignore so that workloads never wait on it) was unavailable or did not see this Migration; ' +
            `the app's state is not carried over. Checkpoint ${checkpoint.metadata?.name} is kept: a pod annotated cryo.dev/restore-from: ${checkpoint.metadata?.name} restores it`,
        };
      }
      return { kind: 'wait', afterMs: Math.min(this.options.timing.pollIntervalMs, grace) };
    }
    return this.orTimeout(migration, `waiting for ${owner.kind} ${owner.name} to create the replacement of pod ${migration.spec.podName}`, `no replacement appeared: was ${owner.kind} ${owner.name} scaled down, deleted, or replaced by a rollout?`);
  }

  /** Succeeded once the pod runs Ready; what holds it up goes into the message. */
  private untilReady(migration: Migration, pod: V1Pod): Step {
    const status = migration.status!;
    const name = pod.metadata!.name!;
    const ready = pod.status?.conditions?.find((c) => c.type === 'Ready');
    if (pod.status?.phase === 'Running' && ready?.status === 'True') {
      const stoppedAt = conditionTime(migration, SOURCE_STOPPED);
      // The kubelet writes whole seconds: the pod became Ready within the second after its
      // condition's time, and not after now. Counted to the end of that second, so a downtime is
      // never understated (by more than the clocks of node and controller differ).
      const readySecond = Date.parse(String(ready.lastTransitionTime ?? ''));
      const readyAt = Number.isNaN(readySecond) ? Date.now() : Math.min(Date.now(), readySecond + 999);
      const downtime = stoppedAt === undefined ? undefined : Math.max(0, readyAt - stoppedAt) / 1000;
      const node = pod.spec?.nodeName ?? 'its node';
      const took = downtime === undefined ? '' : `; downtime ${downtime.toFixed(1)} s`;
      return {
        kind: 'advance',
        phase: 'Succeeded',
        status: { targetPodName: name, targetNodeName: node, ...(downtime === undefined ? {} : { downtimeSeconds: Math.round(downtime * 1000) / 1000 }) },
        message: `pod ${name} runs Ready on node ${node}, restored from Checkpoint ${status.checkpointName}${took}`,
        event: { reason: 'Succeeded', note: `pod ${name} runs Ready on node ${node}, restored from Checkpoint ${status.checkpointName}${took}` },
      };
    }
    if (pod.status?.phase === 'Failed') {
      return { kind: 'fail', reason: 'RestoreFailed', message: `pod ${name} failed: ${pod.status.reason ?? ''} ${pod.status.message ?? ''}`.trimEnd() + ` (Checkpoint ${status.checkpointName} is kept)` };
    }
    return this.orTimeout(migration, `waiting for pod ${name} to run Ready: ${holdUp(pod)}`);
  }

  /** Wait and poll, until the restore has taken longer than --restore-timeout. */
  private orTimeout(migration: Migration, waiting: string, timedOut = waiting): Step {
    const since = phaseEnteredAt(migration) ?? Date.now();
    if (Date.now() - since >= this.options.timing.restoreTimeoutMs) {
      return { kind: 'fail', reason: 'RestoreTimedOut', message: `not restored within ${seconds(this.options.timing.restoreTimeoutMs)}: ${timedOut}; Checkpoint ${migration.status?.checkpointName} is kept` };
    }
    return { kind: 'wait', message: waiting };
  }

  // --- Writing.

  private async apply(migration: Migration, step: Exclude<Step, { kind: 'wait' }>): Promise<Migration> {
    const now = new Date();
    const previous = migration.status ?? {};
    const phase: MigrationPhase = step.kind === 'fail' ? 'Failed' : step.phase;
    const message = step.message;
    const finished = isMigrationFinished(phase);
    let conditions = setCondition(previous.conditions, {
      type: PROGRESSING,
      status: finished ? 'False' : 'True',
      reason: step.kind === 'fail' ? step.reason : phase,
      message,
    }, now);
    for (const condition of step.kind === 'advance' ? step.conditions ?? [] : []) conditions = setCondition(conditions, condition, now);
    const status: MigrationStatus = {
      ...previous,
      ...(step.kind === 'advance' ? step.status : {}),
      phase,
      message,
      conditions,
      ...(finished ? { completionTime: now.toISOString() } : {}),
    };
    const written = await this.write(migration, status);
    const key = keyOf(migration);
    if (phase !== previous.phase) {
      this.options.metrics.phaseTransitions.inc({ phase });
      this.options.logger.info({ migration: key, phase, message }, `Migration ${phase}`);
    }
    if (finished) this.finished(written, step.kind === 'fail' ? step.reason : '');
    if (step.kind === 'fail') {
      await this.event(written, { type: 'Warning', reason: step.reason === 'Refused' ? 'MigrationRefused' : 'MigrationFailed', note: message });
    } else {
      for (const warning of step.warnings ?? []) await this.event(written, { type: 'Warning', reason: 'VolumeContentsNotCarried', note: warning });
      if (step.event !== undefined) await this.event(written, step.event);
    }
    return written;
  }

  private async write(migration: Migration, status: MigrationStatus): Promise<Migration> {
    if (!this.options.isLeader()) throw new NotLeader();
    return this.options.kube.writeStatus(migration, { ...status, observedGeneration: migration.metadata?.generation ?? 1 });
  }

  private finished(migration: Migration, reason: string): void {
    const status = migration.status!;
    const result = status.phase!;
    this.options.metrics.finished.inc({ result, reason });
    const started = Date.parse(status.startTime ?? '');
    if (!Number.isNaN(started)) this.options.metrics.duration.observe({ result }, (Date.now() - started) / 1000);
    if (status.downtimeSeconds !== undefined) this.options.metrics.downtime.observe(status.downtimeSeconds);
    this.forget(migration);
  }

  private forget(migration: Migration): void {
    const uid = migration.metadata?.uid ?? '';
    this.evictionBackoffs.delete(uid);
    this.freshSeen.delete(uid);
  }

  private event(migration: Migration, event: EventNote): Promise<void> {
    const namespace = migration.metadata!.namespace!;
    return this.options.events.record({
      regarding: { apiVersion: CHECKPOINT_API_VERSION, kind: MIGRATION_KIND, namespace, name: migration.metadata!.name!, uid: migration.metadata!.uid },
      related: { apiVersion: 'v1', kind: 'Pod', namespace, name: migration.status?.targetPodName ?? migration.spec.podName },
      type: event.type ?? 'Normal',
      reason: event.reason,
      action: 'Migrate',
      note: event.note,
    });
  }

  private async checkpoint(namespace: string, name: string): Promise<Checkpoint | undefined> {
    return this.options.checkpoints.get(namespace, name) ?? (await this.options.kube.getCheckpoint(namespace, name));
  }
}

/** `<migration>-<first 5 hex digits of its uid>`: the same after a restart, another for a re-created Migration. */
export function checkpointNameOf(migration: Migration): string {
  const suffix = (migration.metadata?.uid ?? '').replace(/-/g, '').slice(0, 5);
  const base = migration.metadata!.name!.slice(0, 253 - suffix.length - 1).replace(/[-.]+$/, '');
  return `${base}-${suffix}`;
}

/** Where the pod goes: the named node, its own for restartInPlace, undefined when the scheduler picks. */
export function targetNodeOf(migration: Migration): string | undefined {
  if (migration.spec.restartInPlace === true) return migration.status?.sourceNodeName;
  return migration.spec.targetNodeName || undefined;
}

export function keyOf(migration: Migration): string {
  return `${migration.metadata?.namespace}/${migration.metadata?.name}`;
}

/** Keeps a pod off one node: `metadata.name NotIn [node]` ANDed into each required term (or as the one term). */
export function avoidNode(pod: V1Pod, nodeName: string): void {
  const avoid: V1NodeSelectorRequirement = { key: 'metadata.name', operator: 'NotIn', values: [nodeName] };
  const spec = pod.spec!;
  const nodeAffinity = ((spec.affinity ??= {}).nodeAffinity ??= {});
  const terms = nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? [];
  const usable = terms.filter((term) => (term.matchExpressions?.length ?? 0) + (term.matchFields?.length ?? 0) > 0);
  if (usable.length === 0) {
    if (terms.length === 0) nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution = { nodeSelectorTerms: [{ matchFields: [avoid] }] };
    return;
  }
  for (const term of usable) term.matchFields = [...(term.matchFields ?? []).filter((r) => !(r.key === avoid.key && r.operator === 'NotIn')), avoid];
}

function conditionTime(migration: Migration, type: string): number | undefined {
  const condition = migration.status?.conditions?.find((c) => c.type === type && c.status === 'True');
  const time = Date.parse(String(condition?.lastTransitionTime ?? ''));
  return Number.isNaN(time) ? undefined : time;
}

/** When the Migration entered its current phase (the Progressing condition's time). */
function phaseEnteredAt(migration: Migration): number | undefined {
  const condition = migration.status?.conditions?.find((c) => c.type === PROGRESSING && c.reason === migration.status?.phase);
  const time = Date.parse(String(condition?.lastTransitionTime ?? ''));
  return Number.isNaN(time) ? undefined : time;
}

/** What keeps a pod from running Ready, in the kubelet's and the scheduler's words. */
function holdUp(pod: V1Pod): string {
  const scheduled = pod.status?.conditions?.find((c) => c.type === 'PodScheduled');
  if (scheduled?.status === 'False') return `not scheduled (${scheduled.reason ?? ''}${scheduled.message ? `: ${scheduled.message}` : ''})`;
  for (const container of [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]) {
    const waiting = container.state?.waiting;
    if (waiting?.reason !== undefined && waiting.reason !== 'ContainerCreating' && waiting.reason !== 'PodInitializing') {
      return `container ${container.name} is waiting: ${waiting.reason}${waiting.message ? ` (${waiting.message})` : ''}`;
    }
  }
  return `it is ${pod.status?.phase ?? 'Pending'}${pod.spec?.nodeName ? ` on node ${pod.spec.nodeName}` : ''}`;
}

/** `k=v,k2=v2` selecting pods with all these labels; undefined (all pods) without any. */
function labelSelectorOf(labels: Record<string, string> | undefined): string | undefined {
  const entries = Object.entries(labels ?? {});
  return entries.length === 0 ? undefined : entries.map(([key, value]) => `${key}=${value}`).join(',');
}

function seconds(ms: number): string {
  return ms % 60_000 === 0 ? `${ms / 60_000}m` : `${ms / 1000}s`;
}
