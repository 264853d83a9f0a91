/**
 * Writing a Checkpoint's status. Every write is a PUT of the status subresource carrying the
 * resourceVersion last seen, so two writers (an agent and its restarted self, or two agents
 * deciding about a pod that is nowhere) cannot both win: the loser gets 409 and backs off.
 */
import { CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import {
  CHECKPOINT_API_VERSION,
  CHECKPOINT_DATA_FINALIZER,
  CHECKPOINT_FAILURE_REASONS,
  CHECKPOINT_GROUP,
  CHECKPOINT_KIND,
  CHECKPOINT_PHASE_REASONS,
  CHECKPOINT_PLURAL,
  CHECKPOINT_VERSION,
  EventRecorder,
  removeCondition,
  setCondition,
  type Checkpoint,
  type CheckpointFailureReason,
  type CheckpointStatus,
  type Logger,
} from '@cryo/common';

export const READY_CONDITION = 'Ready';
export const FAILED_CONDITION = 'Failed';

/**
 * The status as written: its reason (a Failed one's is given, the others' follow from the phase),
 * whether a Failed one is retryable, and the conditions `kubectl wait` reads — Ready, True once
 * stored (False with the phase's reason before, after a failure or once expired), and Failed,
 * True with the failure's reason, present only then — each with the generation it describes.
 */
export function statusWithConditions(status: CheckpointStatus, previous: CheckpointStatus | undefined, generation: number, now: Date): CheckpointStatus {
  const phase = status.phase ?? 'Pending';
  const reason = phase === 'Failed' ? (status.reason ?? 'InternalError') : CHECKPOINT_PHASE_REASONS[phase];
  const message = status.message ?? '';
  let conditions = setCondition(previous?.conditions, { type: READY_CONDITION, status: phase === 'Succeeded' ? 'True' : 'False', reason, message, observedGeneration: generation }, now);
  conditions = phase === 'Failed'
    ? setCondition(conditions, { type: FAILED_CONDITION, status: 'True', reason, message, observedGeneration: generation }, now)
    : removeCondition(conditions, FAILED_CONDITION);
  const written: CheckpointStatus = { ...status, reason, conditions, observedGeneration: generation };
  if (phase === 'Failed') written.retryable = CHECKPOINT_FAILURE_REASONS[reason as CheckpointFailureReason]?.retryable ?? true;
  else delete written.retryable;
  return written;
}

export class CheckpointStatusWriter {
  private readonly api: CustomObjectsApi;
  private readonly events: EventRecorder;

  constructor(kubeConfig: KubeConfig, nodeName: string, logger: Logger) {
    this.api = kubeConfig.makeApiClient(CustomObjectsApi);
    this.events = new EventRecorder(kubeConfig, { controller: 'cryo.dev/node-agent', instance: `cryo-node-agent-${nodeName}` }, logger);
  }

  /** Replaces the status; resolves the updated object. Throws the API error (409 on a lost race). */
  async write(checkpoint: Checkpoint, status: CheckpointStatus): Promise<Checkpoint> {
    const body: Checkpoint = { ...checkpoint, status: statusWithConditions(status, checkpoint.status, checkpoint.metadata?.generation ?? 1, new Date()) };
    return (await this.api.replaceNamespacedCustomObjectStatus({
      group: CHECKPOINT_GROUP,
      version: CHECKPOINT_VERSION,
      plural: CHECKPOINT_PLURAL,
      namespace: checkpoint.metadata!.namespace!,
      name: checkpoint.metadata!.name!,
      body,
    })) as Checkpoint;
  }

  /**
   * Adds or removes the agent's finalizer (CHECKPOINT_DATA_FINALIZER), as a JSON patch that
   * touches that one entry: other controllers' finalizers are left as they are, and a removal
   * tests the entry it removes. Resolves the updated object; throws the API error.
   */
  async setDataFinalizer(checkpoint: Checkpoint, present: boolean): Promise<Checkpoint> {
    const finalizers = checkpoint.metadata?.finalizers ?? [];
    const index = finalizers.indexOf(CHECKPOINT_DATA_FINALIZER);
    if (present === index >= 0) return checkpoint;
    const path = `/metadata/finalizers/${index}`;
    const body = present
      ? finalizers.length === 0 ? [{ op: 'add', path: '/metadata/finalizers', value: [CHECKPOINT_DATA_FINALIZER] }] : [{ op: 'add', path: '/metadata/finalizers/-', value: CHECKPOINT_DATA_FINALIZER }]
      : [{ op: 'test', path, value: CHECKPOINT_DATA_FINALIZER }, { op: 'remove', path }];
    return (await this.api.patchNamespacedCustomObject(
      { group: CHECKPOINT_GROUP, version: CHECKPOINT_VERSION, plural: CHECKPOINT_PLURAL, namespace: checkpoint.metadata!.namespace!, name: checkpoint.metadata!.name!, body },
      setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
    )) as Checkpoint;
  }

  /** An Event on the Checkpoint (and the pod as `related`), for `kubectl describe`; failures only logged. */
  async event(checkpoint: Checkpoint, pod: { name: string; uid?: string } | null, type: 'Normal' | 'Warning', reason: string, note: string): Promise<void> {
    const namespace = checkpoint.metadata!.namespace!;
    await this.events.record({
      regarding: { apiVersion: CHECKPOINT_API_VERSION, kind: CHECKPOINT_KIND, namespace, name: checkpoint.metadata!.name!, uid: checkpoint.metadata!.uid },
      ...(pod === null ? {} : { related: { apiVersion: 'v1', kind: 'Pod', namespace, name: pod.name, uid: pod.uid } }),
      type,
      reason,
      action: 'Checkpoint',
      note,
    });
  }
}
