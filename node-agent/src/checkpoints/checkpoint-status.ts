/**
 * Writing a Checkpoint's status. Every write is a PUT of the status subresource carrying the
 * resourceVersion last seen, so two writers (an agent and its restarted self, or two agents
 * deciding about a pod that is nowhere) cannot both win: the loser gets 409 and backs off.
 */
import { CustomObjectsApi, EventsV1Api, V1MicroTime, type KubeConfig } from '@kubernetes/client-node';
import { CHECKPOINT_API_VERSION, CHECKPOINT_GROUP, CHECKPOINT_KIND, CHECKPOINT_PLURAL, CHECKPOINT_VERSION, type Checkpoint, type CheckpointStatus, type Logger } from '@cryo/common';

export class CheckpointStatusWriter {
  private readonly api: CustomObjectsApi;
  private readonly events: EventsV1Api;
  private readonly nodeName: string;
  private readonly logger: Logger;

  constructor(kubeConfig: KubeConfig, nodeName: string, logger: Logger) {
    this.api = kubeConfig.makeApiClient(CustomObjectsApi);
    this.events = kubeConfig.makeApiClient(EventsV1Api);
    this.nodeName = nodeName;
    this.logger = logger;
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
    try {
      await this.events.createNamespacedEvent({
        namespace,
        body: {
          // A trailing '-', not '.': the apiserver refuses a generateName that does not end alphanumeric or in '-'.
          metadata: { generateName: `${checkpoint.metadata!.name!}-`, namespace },
          // A MicroTime: the apiserver parses exactly six fractional digits and answers 400 to a
          // plain Date's milliseconds. client-node passes this class through its serializer, and
          // its toISOString pads to microseconds.
          eventTime: new V1MicroTime(),
          reportingController: 'cryo.dev/node-agent',
          reportingInstance: `cryo-node-agent-${this.nodeName}`,
          action: 'Checkpoint',
          reason,
          type,
          note: note.slice(0, 1024),
          regarding: { apiVersion: CHECKPOINT_API_VERSION, kind: CHECKPOINT_KIND, namespace, name: checkpoint.metadata!.name!, uid: checkpoint.metadata!.uid },
          ...(pod === null ? {} : { related: { apiVersion: 'v1', kind: 'Pod', namespace, name: pod.name, uid: pod.uid } }),
        },
      });
    } catch (error) {
      this.logger.warn({ checkpoint: `${namespace}/${checkpoint.metadata!.name!}`, reason, err: (error as Error).message }, 'could not record an event');
    }
  }
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}
