/**
 * The node agent's Checkpoint controller: watches all Checkpoints and carries out those whose pod
 * runs on this node, one per pod at a time and at most `maxConcurrent` on the node.
 *
 * Status is the source of truth. A Checkpoint is claimed by writing phase Running with this
 * node's name (a resourceVersion-checked write: only one claim wins). A Checkpoint this node
 * claimed but is not working on — the agent restarted mid-way — is failed cleanly; its app was
 * resumed by the hook server's restart (processes reconnect and hear `unknown`), and the stores
 * never leave a complete-looking partial checkpoint.
 */
import { CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import {
  annotations,
  apiStatusCode,
  Backoff,
  CHECKPOINT_DATA_FINALIZER,
  CHECKPOINT_DATA_REASONS,
  CHECKPOINT_GROUP,
  CHECKPOINT_PHASE_REASONS,
  CHECKPOINT_PLURAL,
  CHECKPOINT_VERSION,
  CHECKPOINTS_PATH,
  CheckpointUsers,
  describeApiError,
  formatBytes,
  isConflict,
  isNotFound,
  WatchedCache,
  type Checkpoint,
  type CheckpointFailure,
  type CheckpointDataReason,
  type CheckpointList,
  type CheckpointStatus,
  type CheckpointUse,
  type Logger,
} from '@cryo/common';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { checkPod } from './pod-checks.ts';
import type { CheckpointRunner } from './checkpoint-runner.ts';
import { CheckpointStatusWriter } from './checkpoint-status.ts';
import { describeStoreProgress, type StoreProgress } from './store-progress.ts';
import type { CheckpointMetrics, StoreKind } from './checkpoint-metrics.ts';
import { isOfCheckpoint, type CheckpointStore, type RetentionPolicy, type StoredEntry } from '../storage/checkpoint-store.ts';

export interface PodLookup {
  /** A pod of this node, from the agent's watch. */
  get(namespace: string, name: string): V1Pod | undefined;
}

export interface CheckpointControllerOptions {
  kubeConfig: KubeConfig;
  nodeName: string;
  pods: PodLookup;
  runner: CheckpointRunner;
  /** The store for a Checkpoint (store-resolver.ts: its storage class or spec.storage, else the default) and its class, or why there is none. */
  storeFor(checkpoint: Checkpoint): Promise<{ store: CheckpointStore; className?: string; pullSecretName?: string } | CheckpointFailure>;
  logger: Logger;
  maxConcurrent?: number;
  /** Applied to the store after each successful checkpoint. */
  retention?: RetentionPolicy;
  metrics?: CheckpointMetrics;
  /** Stores the periodic run looks at besides those holding a Succeeded Checkpoint of this node (the agent's --directory). */
  standingStores?: () => readonly CheckpointStore[];
  /** How often retention runs besides after each checkpoint (0: only then). */
  retentionIntervalMs?: number;
  /** First delay before trying again to remove a deleted Checkpoint's data (doubling to 5 min); tests shorten it. */
  dataRemovalRetryMs?: number;
}

const TERMINAL = new Set(['Succeeded', 'Failed', 'Expired']);

/** What the last retention run of one store found: the gauges add these up by store kind. */
interface StoreFindings {
  /** Per Checkpoint uid (or reference, when its Checkpoint is gone), why retention kept its data: an Event or log line only when that changes. */
  deferred: Map<string, string>;
  deferredByCause: Record<CheckpointUse['cause'], number>;
  /** References of stored data whose Checkpoint no longer exists: logged when first found. */
  orphans: Set<string>;
}

const DEFERRED: CheckpointDataReason = 'RetentionDeferred';

export class CheckpointController {
  private readonly options: CheckpointControllerOptions;
  private readonly cache: WatchedCache<Checkpoint>;
  private readonly status: CheckpointStatusWriter;
  private readonly core: CoreV1Api;
  /** Checkpoint uids being worked on here. */
  private readonly active = new Set<string>();
  /** Per pod uid, the tail of its queue: one checkpoint per pod at a time. */
  private readonly podQueues = new Map<string, Promise<void>>();
  private running = 0;
  private readonly waiting: Array<() => void> = [];
  private readonly inFlight = new Set<Promise<void>>();
  /** Per Checkpoint uid, the backoff of removing its data after failures, and the retry timer. */
  private readonly removalRetries = new Map<string, { backoff: Backoff; timer?: NodeJS.Timeout }>();
  private stopped = false;
  private retentionRunning = false;
  private retentionTimer: NodeJS.Timeout | undefined;
  private readonly users: CheckpointUsers;
  private readonly findings = new Map<CheckpointStore, StoreFindings>();

  constructor(options: CheckpointControllerOptions) {
    this.options = options;
    const api = options.kubeConfig.makeApiClient(CustomObjectsApi);
    this.core = options.kubeConfig.makeApiClient(CoreV1Api);
    this.status = new CheckpointStatusWriter(options.kubeConfig, options.nodeName, options.logger);
    this.users = new CheckpointUsers(options.kubeConfig, { reader: 'the node agent', rbacManifest: 'manifests/node-agent-rbac.yaml' });
    this.cache = new WatchedCache<Checkpoint>({
      kubeConfig: options.kubeConfig,
      path: CHECKPOINTS_PATH,
      logger: options.logger,
      list: async () => (await api.listClusterCustomObject({ group: CHECKPOINT_GROUP, version: CHECKPOINT_VERSION, plural: CHECKPOINT_PLURAL })) as CheckpointList,
      onAdd: (checkpoint) => this.consider(checkpoint),
      onUpdate: (checkpoint) => this.consider(checkpoint),
    });
  }

  get hasSynced(): boolean {
    return this.cache.hasSynced;
  }

  async start(): Promise<void> {
    await this.cache.start();
    await this.cache.synced;
    for (const checkpoint of this.cache.list()) this.consider(checkpoint);
    const every = this.options.retentionIntervalMs ?? 0;
    // Without a retention limit the periodic run still looks for orphaned data.
    if (every > 0) {
      this.retentionTimer = setInterval(() => this.track(this.applyRetentionEverywhere()), every);
      this.retentionTimer.unref();
    }
  }

  /** Stops taking new work and waits for what runs (each ends in a final status). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.retentionTimer);
    for (const retry of this.removalRetries.values()) clearTimeout(retry.timer);
    await this.cache.stop();
    await Promise.allSettled([...this.inFlight]);
  }

  /** Resolves when nothing is running or queued (tests). */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /** A pod of this node appeared or changed: Checkpoints waiting for it may run now. */
  podChanged(pod: V1Pod): void {
    if (!this.cache.hasSynced) return;
    const namespace = pod.metadata?.namespace;
    for (const checkpoint of this.cache.list(namespace)) {
      if (checkpoint.spec.podName === pod.metadata?.name) this.consider(checkpoint);
    }
  }

  private consider(checkpoint: Checkpoint): void {
    if (this.stopped) return;
    const uid = checkpoint.metadata?.uid;
    const phase = checkpoint.status?.phase;
    if (uid === undefined || this.active.has(uid)) return;
    if (checkpoint.metadata?.deletionTimestamp !== undefined) {
      if (this.holdsData(checkpoint)) this.track(this.release(checkpoint));
      return;
    }
    if (phase !== undefined && TERMINAL.has(phase)) return;
    if (phase === 'Running') {
      // Claimed by this node, yet nothing here works on it: the agent restarted mid-way.
      if (checkpoint.status?.nodeName === this.options.nodeName) this.track(this.failAbandoned(checkpoint));
      return;
    }
    const namespace = checkpoint.metadata!.namespace!;
    const pod = this.options.pods.get(namespace, checkpoint.spec.podName);
    if (pod === undefined) {
      this.track(this.failIfPodIsNowhere(checkpoint));
      return;
    }
    this.active.add(uid);
    this.countQueued();
    const podUid = pod.metadata?.uid ?? `${namespace}/${checkpoint.spec.podName}`;
    const previous = this.podQueues.get(podUid) ?? Promise.resolve();
    const next = previous.then(() => this.withSlot(() => this.process(checkpoint))).finally(() => {
      this.active.delete(uid);
      this.countQueued();
      this.considerIfDeleted(checkpoint);
      if (this.podQueues.get(podUid) === next) this.podQueues.delete(podUid);
    });
    this.podQueues.set(podUid, next);
    this.track(next);
  }

  /** The newest version of a Checkpoint this agent just finished with, if it was deleted meanwhile: its data goes now. */
  private considerIfDeleted(checkpoint: Checkpoint): void {
    const latest = this.cache.get(checkpoint.metadata!.namespace!, checkpoint.metadata!.name!);
    if (latest?.metadata?.uid === checkpoint.metadata?.uid && latest?.metadata?.deletionTimestamp !== undefined) this.consider(latest);
  }

  /** This node's agent claimed it and keeps the finalizer: it alone removes what it stored. */
  private holdsData(checkpoint: Checkpoint): boolean {
    return (checkpoint.metadata?.finalizers ?? []).includes(CHECKPOINT_DATA_FINALIZER) && checkpoint.status?.nodeName === this.options.nodeName;
  }

  /**
   * A deleted Checkpoint this node stored: what it stored goes (unless annotated
   * cryo.dev/keep-data: "true"), then the finalizer, and with it the Checkpoint. A store that
   * fails keeps the finalizer and is tried again with backoff; a store that can no longer be
   * named (its class or flag gone) lets the Checkpoint go with a Warning naming what stays.
   */
  private async release(checkpoint: Checkpoint): Promise<void> {
    const uid = checkpoint.metadata!.uid!;
    const namespace = checkpoint.metadata!.namespace!;
    const name = checkpoint.metadata!.name!;
    const log = this.options.logger.child({ checkpoint: `${namespace}/${name}` });
    const metrics = this.options.metrics;
    this.active.add(uid);
    try {
      const keep = checkpoint.metadata?.annotations?.[annotations.KEEP_DATA] === 'true';
      // Failed and Pending ones stored nothing (a failure discards what it wrote); an Expired one's data is gone.
      const mayHoldData = checkpoint.status?.phase === 'Succeeded' || checkpoint.status?.phase === 'Running';
      if (mayHoldData && keep) {
        metrics?.deletions.inc({ result: 'kept' });
        log.info({ references: referencesOf(checkpoint) }, `Checkpoint deleted; its data is kept (${annotations.KEEP_DATA})`);
      } else if (mayHoldData) {
        const resolved = await this.options.storeFor(checkpoint);
        if ('error' in resolved) {
          metrics?.deletions.inc({ result: 'store-unknown' });
          await this.status.event(checkpoint, null, 'Warning', 'DataNotRemoved', `its store cannot be named any more (${resolved.error}), so its data stays: remove ${referencesOf(checkpoint).join(', ') || 'it'} by hand`);
        } else {
          try {
            const removed = await resolved.store.removeCheckpoint({ namespace, name, uid });
            metrics?.deletions.inc({ result: 'removed' });
            log.info({ removed: removed.map((entry) => entry.restoreReference) }, 'Checkpoint deleted; its data was removed');
          } catch (error) {
            metrics?.deletions.inc({ result: 'failed' });
            const retry = this.removalRetries.get(uid) ?? { backoff: new Backoff({ initialMs: this.options.dataRemovalRetryMs ?? 10_000, maxMs: 300_000 }) };
            const delayMs = retry.backoff.next();
            retry.timer = setTimeout(() => {
              const latest = this.cache.get(namespace, name);
              if (latest?.metadata?.uid === uid) this.consider(latest);
            }, delayMs);
            retry.timer.unref();
            this.removalRetries.set(uid, retry);
            const message = `could not remove its data: ${(error as Error).message}; trying again in ${Math.round(delayMs / 1000)} s (the Checkpoint stays until then; annotate it ${annotations.KEEP_DATA}=true to let it go and keep the data)`;
            log.warn({ err: (error as Error).message, delayMs }, 'could not remove the data of a deleted Checkpoint');
            await this.status.event(checkpoint, null, 'Warning', 'DataRemovalFailed', message);
            return;
          }
        }
      }
      this.removalRetries.delete(uid);
      await this.status.setDataFinalizer(checkpoint, false).catch((error: unknown) => {
        // Gone already, or changed meanwhile: the next watch event brings the newest version back here.
        if (!isNotFound(error) && !isConflict(error) && apiStatusCode(error) !== 422) throw error;
      });
    } finally {
      this.active.delete(uid);
    }
  }

  /** Running here, and taken on here but not running yet: behind the slot limit or the same pod's earlier Checkpoint. */
  private countQueued(): void {
    this.options.metrics?.inProgress.set(this.running);
    this.options.metrics?.queued.set(Math.max(0, this.active.size - this.running));
  }

  private track(work: Promise<void>): void {
    const tracked = work.catch((error: unknown) => this.options.logger.error({ err: describeApiError(error) }, 'checkpoint work failed unexpectedly'));
    this.inFlight.add(tracked);
    void tracked.finally(() => this.inFlight.delete(tracked));
  }

  private async withSlot(work: () => Promise<void>): Promise<void> {
    const max = this.options.maxConcurrent ?? 2;
    while (this.running >= max) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.running++;
    this.countQueued();
    try {
      await work();
    } finally {
      this.running--;
      this.waiting.shift()?.();
    }
  }

  private async process(initial: Checkpoint): Promise<void> {
    const namespace = initial.metadata!.namespace!;
    const name = initial.metadata!.name!;
    const log = this.options.logger.child({ checkpoint: `${namespace}/${name}` });
    // The newest version: it may have been claimed or finished while it waited in the queue.
    let checkpoint = this.cache.get(namespace, name) ?? initial;
    if (checkpoint.metadata?.uid !== initial.metadata?.uid || (checkpoint.status?.phase !== undefined && checkpoint.status.phase !== 'Pending')) return;
    const pod = this.options.pods.get(namespace, checkpoint.spec.podName);
    const startTime = new Date().toISOString();
    const base: CheckpointStatus = { nodeName: this.options.nodeName, startTime };
    try {
      checkpoint = await this.status.write(checkpoint, { ...base, phase: 'Running', message: 'checkpointing' });
    } catch (error) {
      if (isConflict(error) || isNotFound(error)) return; // someone else decided, or it was deleted
      throw error;
    }
    // Before anything is stored: deleting the Checkpoint from now on removes what it stores.
    try {
      checkpoint = await this.status.setDataFinalizer(checkpoint, true);
    } catch (error) {
      if (isNotFound(error)) return;
      log.warn({ err: describeApiError(error) }, `could not add the finalizer ${CHECKPOINT_DATA_FINALIZER}: deleting this Checkpoint will leave its data (is the agent's RBAC older than the agent?)`);
    }
    const podRef = pod === undefined ? null : { name: pod.metadata!.name!, uid: pod.metadata!.uid };
    const claimedAt = performance.now();
    let storeKind: StoreKind = 'none';
    const finished = (result: 'Succeeded' | 'Failed', reason: string) => {
      this.options.metrics?.finished.inc({ result, reason, store: storeKind });
      this.options.metrics?.duration.observe({ result }, (performance.now() - claimedAt) / 1000);
    };
    const fail = async ({ reason, error: message }: CheckpointFailure) => {
      finished('Failed', reason);
      log.warn({ reason, message }, 'checkpoint failed');
      await this.writeFinal(checkpoint, { ...base, phase: 'Failed', reason, message, completionTime: new Date().toISOString() });
      await this.status.event(checkpoint, podRef, 'Warning', reason, message);
    };
    const check = checkPod(pod, namespace, checkpoint.spec.podName, checkpoint.spec.containers);
    if ('error' in check) return fail(check);
    const resolved = await this.options.storeFor(checkpoint);
    if ('error' in resolved) return fail(resolved);
    const { store, className, pullSecretName } = resolved;
    storeKind = store.kind;
    await this.status.event(checkpoint, podRef, 'Normal', 'CheckpointStarted', `checkpointing ${check.containers.join(', ')} of pod ${checkpoint.spec.podName} on node ${this.options.nodeName}`);
    // Progress while storing: the status message (the Ready condition's too) and a Normal Event with
    // the Running phase's reason, one after another; a write that loses a race is skipped.
    let progressWrites = Promise.resolve();
    const onStoreProgress = (progress: StoreProgress) => {
      const note = describeStoreProgress(progress);
      progressWrites = progressWrites.then(async () => {
        try {
          checkpoint = await this.status.write(checkpoint, { ...base, phase: 'Running', message: `storing ${note}` });
        } catch (error) {
          log.debug({ err: describeApiError(error) }, 'could not write the store progress');
        }
        await this.status.event(checkpoint, podRef, 'Normal', CHECKPOINT_PHASE_REASONS.Running, note);
      });
    };
    const result = await this.options.runner.run(checkpoint, pod!, check.containers, store, onStoreProgress).catch((error: unknown) => ({
      phase: 'Failed' as const,
      reason: 'InternalError' as const,
      error: `the node agent failed unexpectedly: ${(error as Error).message}; see its log on node ${this.options.nodeName}, and create a new Checkpoint`,
    }));
    // Before the final status: no progress write may land after it.
    await progressWrites;
    if (result.phase === 'Failed') return fail(result);
    const status: CheckpointStatus = {
      ...base,
      phase: 'Succeeded',
      message: result.message,
      completionTime: new Date().toISOString(),
      storage: {
        ...(store.kind === 'directory' ? { type: 'directory', shared: store.shared === true } : { type: 'registry' }),
        ...(className !== undefined ? { className } : {}),
        ...(pullSecretName !== undefined ? { pullSecretName } : {}),
      },
      containers: result.containers,
      totalSizeBytes: result.totalSizeBytes,
      totalSize: formatBytes(result.totalSizeBytes),
      podTemplate: result.podTemplate,
      ...(result.podCheckpoint !== undefined ? { podCheckpoint: result.podCheckpoint } : {}),
    };
    await this.writeFinal(checkpoint, status);
    finished('Succeeded', '');
    this.options.metrics?.recordStored(store.kind, result.containers);
    log.info({ containers: result.containers.length, totalSizeBytes: result.totalSizeBytes }, 'checkpoint succeeded');
    await this.status.event(checkpoint, podRef, 'Normal', 'CheckpointSucceeded', `${result.message}: ${result.containers.map((c) => c.restoreReference).join(', ')}`);
    await this.applyRetention(store, log);
  }

  /**
   * Retention on one store. Only data this node's Checkpoints own (or nobody's any more) is
   * removed: only their status may this agent update, and each it removes turns Expired. Data in
   * use (CheckpointUsers, common/src/restore/checkpoint-users.ts) stays, with an Event saying why;
   * data whose Checkpoint is gone is reported (reportOrphans).
   */
  private async applyRetention(store: CheckpointStore, log: Logger): Promise<void> {
    const retention = this.options.retention;
    if (retention === undefined) return;
    const owner = (entry: StoredEntry) => {
      const owning = this.cache.get(entry.namespace, entry.checkpointName);
      return owning !== undefined && owning.metadata?.uid === entry.checkpointUid ? owning : undefined;
    };
    const inUse = new Map<StoredEntry, CheckpointUse>();
    const applied = await store.applyRetention(retention, {
      mayRemove: (entry) => (owner(entry)?.status?.nodeName ?? this.options.nodeName) === this.options.nodeName,
      keep: async (candidates) => {
        const checkpoints = candidates.map((entry) => ({ namespace: entry.namespace, name: entry.checkpointName, uid: entry.checkpointUid, entry }));
        for (const [{ entry }, use] of await this.users.inUse(checkpoints)) inUse.set(entry, use);
        return new Set(inUse.keys());
      },
    }).catch((error: unknown) => {
      log.warn({ err: (error as Error).message }, 'retention could not be applied');
      this.options.metrics?.retentionErrors.inc({ store: store.kind });
      return undefined;
    });
    if (applied === undefined) return;
    this.options.metrics?.retentionRemoved.inc({ store: store.kind }, applied.removed.length);
    this.options.metrics?.retentionRemovedBytes.inc({ store: store.kind }, applied.removed.reduce((sum, entry) => sum + entry.sizeBytes, 0));
    await this.reportDeferred(store, inUse, owner, log);
    this.reportOrphans(store, applied.kept, log);
    if (applied.removed.length === 0) return;
    log.info({ removed: applied.removed.map((e) => e.restoreReference) }, 'retention removed old checkpoints');
    const expired = new Map(applied.removed.flatMap((entry) => { const c = owner(entry); return c === undefined ? [] : [[c.metadata!.uid!, c] as const]; }));
    for (const owning of expired.values()) await this.expire(owning, retention).catch((error: unknown) => log.warn({ err: describeApiError(error), checkpoint: owning.metadata?.name }, 'could not mark a Checkpoint whose data retention removed'));
  }

  /** Says why retention kept data in use: an Event on its Checkpoint (a log line when that is gone), once per reason. */
  private async reportDeferred(store: CheckpointStore, inUse: ReadonlyMap<StoredEntry, CheckpointUse>, owner: (entry: StoredEntry) => Checkpoint | undefined, log: Logger): Promise<void> {
    const findings = this.findingsOf(store);
    const deferred = new Map<string, string>();
    const byCause: StoreFindings['deferredByCause'] = { pod: 0, workload: 0, unknown: 0 };
    for (const [entry, use] of inUse) {
      byCause[use.cause]++;
      const checkpoint = owner(entry);
      const key = checkpoint?.metadata?.uid ?? entry.restoreReference;
      if (deferred.has(key)) continue;
      const message = `retention would remove its data, but keeps it: ${use.why}`;
      deferred.set(key, message);
      if (findings.deferred.get(key) === message) continue;
      log.info({ checkpoint: `${entry.namespace}/${entry.checkpointName}`, reference: entry.restoreReference, cause: use.cause, why: use.why }, 'retention keeps data in use');
      if (checkpoint !== undefined) await this.status.event(checkpoint, null, CHECKPOINT_DATA_REASONS[DEFERRED].type, DEFERRED, message);
    }
    findings.deferred = deferred;
    findings.deferredByCause = byCause;
    this.updateRetentionGauges();
  }

  /**
   * Reports stored data whose Checkpoint no longer exists (deleted with cryo.dev/keep-data, its
   * finalizer removed by hand, a store written by an earlier install): a log line when first
   * found, and a gauge. Never removed here: keep-data asked for exactly this, and only an
   * operator can tell that from a leak (docs/operations.md, "Orphaned data").
   */
  private reportOrphans(store: CheckpointStore, entries: readonly StoredEntry[], log: Logger): void {
    const findings = this.findingsOf(store);
    const orphans = entries.filter((entry) => {
      const checkpoint = this.cache.get(entry.namespace, entry.checkpointName);
      return checkpoint === undefined || !isOfCheckpoint(entry, { namespace: entry.namespace, name: entry.checkpointName, uid: checkpoint.metadata?.uid ?? '' });
    });
    const found = orphans.filter((entry) => !findings.orphans.has(entry.restoreReference));
    if (found.length > 0) {
      log.warn(
        { store: store.kind, orphans: found.map((entry) => ({ checkpoint: `${entry.namespace}/${entry.checkpointName}`, uid: entry.checkpointUid, reference: entry.restoreReference, sizeBytes: entry.sizeBytes })) },
        'stored checkpoint data whose Checkpoint no longer exists (orphaned); the agent leaves it: see docs/operations.md, "Orphaned data", to remove it',
      );
    }
    findings.orphans = new Set(orphans.map((entry) => entry.restoreReference));
    this.updateRetentionGauges();
  }

  private findingsOf(store: CheckpointStore): StoreFindings {
    let findings = this.findings.get(store);
    if (findings === undefined) {
      findings = { deferred: new Map(), deferredByCause: { pod: 0, workload: 0, unknown: 0 }, orphans: new Set() };
      this.findings.set(store, findings);
    }
    return findings;
  }

  /** Each store's last run, added up by kind: several stores (a registry repository per namespace) share one series. */
  private updateRetentionGauges(): void {
    const metrics = this.options.metrics;
    if (metrics === undefined) return;
    for (const kind of ['registry', 'directory'] as const) {
      const ofKind = [...this.findings].filter(([store]) => store.kind === kind).map(([, findings]) => findings);
      metrics.orphaned.set({ store: kind }, ofKind.reduce((sum, findings) => sum + findings.orphans.size, 0));
      for (const cause of ['pod', 'workload', 'unknown'] as const) {
        metrics.retentionDeferred.set({ store: kind, cause }, ofKind.reduce((sum, findings) => sum + findings.deferredByCause[cause], 0));
      }
    }
  }

  /**
   * Retention on every store holding a Succeeded Checkpoint of this node (resolved as when it was
   * taken; the resolver hands out one store per place) and on the standing ones, also when no
   * checkpoint is taken: an age limit fires in a quiet cluster too. Without a retention limit it
   * only looks for orphaned data. One run at a time; a failing store only logs.
   */
  async applyRetentionEverywhere(): Promise<void> {
    if (this.stopped || this.retentionRunning) return;
    this.retentionRunning = true;
    try {
      const log = this.options.logger.child({ part: 'retention' });
      const stores = new Set<CheckpointStore>(this.options.standingStores?.() ?? []);
      for (const checkpoint of this.cache.list()) {
        if (checkpoint.status?.phase !== 'Succeeded' || checkpoint.status.nodeName !== this.options.nodeName) continue;
        const resolved = await this.options.storeFor(checkpoint);
        if (!('error' in resolved)) stores.add(resolved.store);
      }
      for (const store of stores) {
        if (this.options.retention !== undefined) {
          await this.applyRetention(store, log);
          continue;
        }
        await store.list().then(
          (entries) => this.reportOrphans(store, entries, log),
          (error: unknown) => {
            log.warn({ err: (error as Error).message }, 'could not list a store to look for orphaned data');
            this.options.metrics?.retentionErrors.inc({ store: store.kind });
          },
        );
      }
    } finally {
      this.retentionRunning = false;
    }
  }

  /** Its data is gone: say so, so that no pod is admitted to restore from it and `kubectl get` shows it. */
  private async expire(checkpoint: Checkpoint, policy: RetentionPolicy): Promise<void> {
    if (checkpoint.status?.phase !== 'Succeeded') return;
    const limits = [
      policy.maxCount !== undefined ? `at most ${policy.maxCount}` : '',
      policy.maxTotalBytes !== undefined ? `at most ${formatBytes(policy.maxTotalBytes)}` : '',
      policy.maxAgeSeconds !== undefined ? `none older than ${policy.maxAgeSeconds}s` : '',
    ].filter((l) => l !== '').join(', ');
    const message = `retention removed its data on ${new Date().toISOString()} (keep ${limits} per ${policy.scope}); take a new Checkpoint to restore from`;
    await this.writeFinal(checkpoint, { ...checkpoint.status, phase: 'Expired', message });
    await this.status.event(checkpoint, null, 'Normal', CHECKPOINT_PHASE_REASONS.Expired, message);
  }

  /** A final status must land: retry conflicts against the newest version (only this node writes it now). */
  private async writeFinal(checkpoint: Checkpoint, status: CheckpointStatus): Promise<void> {
    let current = checkpoint;
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        await this.status.write(current, status);
        return;
      } catch (error) {
        if (isNotFound(error)) return;
        if (!isConflict(error)) throw error;
        current = this.cache.get(current.metadata!.namespace!, current.metadata!.name!) ?? current;
        await new Promise((resolve) => setTimeout(resolve, 50 * (attempt + 1)));
      }
    }
    throw new Error(`could not write the final status of ${checkpoint.metadata!.namespace!}/${checkpoint.metadata!.name!} after 5 conflicts`);
  }

  private async failAbandoned(checkpoint: Checkpoint): Promise<void> {
    const uid = checkpoint.metadata!.uid!;
    this.active.add(uid);
    try {
      const leftover = await this.removeAbandonedData(checkpoint);
      const message = `the node agent restarted while this checkpoint ran; the app was resumed and nothing was stored${leftover}. Create a new Checkpoint`;
      await this.writeFinal(checkpoint, { ...checkpoint.status, phase: 'Failed', reason: 'AgentRestarted', message, completionTime: new Date().toISOString() });
      this.options.metrics?.finished.inc({ result: 'Failed', reason: 'AgentRestarted', store: 'none' });
      await this.status.event(checkpoint, null, 'Warning', 'AgentRestarted', message);
    } finally {
      this.active.delete(uid);
    }
  }

  /**
   * What the earlier agent stored of an abandoned Checkpoint before it stopped (the containers
   * stored before the restart are complete in the store): removed, as a failed run removes its own,
   * since a Failed Checkpoint names none of it and deleting one removes nothing. '' when nothing
   * stays, else a note saying what does.
   */
  private async removeAbandonedData(checkpoint: Checkpoint): Promise<string> {
    const log = this.options.logger.child({ checkpoint: `${checkpoint.metadata!.namespace!}/${checkpoint.metadata!.name!}` });
    const resolved = await this.options.storeFor(checkpoint).catch((error: unknown) => ({ error: (error as Error).message }));
    if ('error' in resolved) {
      log.warn({ err: resolved.error }, 'cannot name the store of an abandoned Checkpoint; anything it stored stays');
      return '';
    }
    try {
      const removed = await resolved.store.removeCheckpoint({ namespace: checkpoint.metadata!.namespace!, name: checkpoint.metadata!.name!, uid: checkpoint.metadata!.uid! });
      if (removed.length > 0) log.info({ removed: removed.map((entry) => entry.restoreReference) }, 'removed what an abandoned Checkpoint had stored');
      return '';
    } catch (error) {
      log.warn({ err: (error as Error).message }, 'could not remove what an abandoned Checkpoint had stored');
      return ` (what it had stored of some containers could not be removed: ${(error as Error).message}; remove it by hand)`;
    }
  }

  /** Not on this node: fail it only if the pod exists nowhere (one agent wins the write). */
  private async failIfPodIsNowhere(checkpoint: Checkpoint): Promise<void> {
    const namespace = checkpoint.metadata!.namespace!;
    try {
      await this.core.readNamespacedPod({ namespace, name: checkpoint.spec.podName });
      return; // it exists, elsewhere: that node's agent handles it
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
    try {
      const message = `pod ${namespace}/${checkpoint.spec.podName} does not exist; name a running pod in spec.podName`;
      // The node of the agent that decided: the only status an agent may write (node-agent-checkpoint-policy.yaml).
      await this.status.write(checkpoint, { nodeName: this.options.nodeName, phase: 'Failed', reason: 'PodNotFound', message, completionTime: new Date().toISOString() });
      this.options.metrics?.finished.inc({ result: 'Failed', reason: 'PodNotFound', store: 'none' });
      await this.status.event(checkpoint, null, 'Warning', 'PodNotFound', message);
    } catch (error) {
      if (!isConflict(error) && !isNotFound(error)) throw error;
    }
  }
}

/** What a Checkpoint's status says it stored: each container's reference and the pod checkpoint's. */
function referencesOf(checkpoint: Checkpoint): string[] {
  const status = checkpoint.status;
  return [...(status?.containers ?? []).map((c) => c.restoreReference), ...(status?.podCheckpoint ? [status.podCheckpoint.reference] : [])];
}
