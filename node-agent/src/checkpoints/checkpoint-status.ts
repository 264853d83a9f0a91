/**
 * Writing a Checkpoint's status. Every write is a PUT of the status subresource carrying the
 * resourceVersion last seen, so two writers (an agent and its restarted self, or two agents
 * deciding about a pod that is nowhere) cannot both win: the loser gets 409 and backs off.
 */
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { CHECKPOINT_API_VERSION, CHECKPOINT_GROUP, CHECKPOINT_KIND, CHECKPOINT_PLURAL, CHECKPOINT_VERSION, EventRecorder, type Checkpoint, type CheckpointStatus, type Logger } from '@cryo/common';

export class CheckpointStatusWriter {
  private readonly api: CustomObjectsApi;
  private readonly events: EventRecorder;

  constructor(kubeConfig: KubeConfig, nodeName: string, logger: Logger) {
    this.api = kubeConfig.makeApiClient(CustomObjectsApi);
    this.events = new EventRecorder(kubeConfig, { controller: 'cryo.dev/node-agent', instance: `cryo-node-agent-${nodeName}` }, logger);
  }

  /** Replaces the status; resolves the updated object. Throws the API error (409 on a lost race). */
  async write(checkpoint: Checkpoint, status: CheckpointStatus): Promise<Checkpoint> {
    const body: Checkpoint = { ...checkpoint, status: { ...status, observedGeneration: checkpoint.metadata?.generation ?? 1 } };
    return (await this.api.replaceNamespacedCustomObjectStatus({
      group: CHECKPOINT_GROUP,
      version: CHECKPOINT_VERSION,
      plural: CHECKPOINT_PLURAL,
      namespace: checkpoint.metadata!.namespace!,
      name: checkpoint.metadata!.name!,
      body,
    })) as Checkpoint;
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
