/**
 * Recording events.k8s.io/v1 Events, the one way every Cryo component does it: `kubectl describe`
 * shows them on the object they regard. Failures are logged, never thrown: an Event is a courtesy
 * to whoever looks, and must never fail the work it reports on.
 */
import { EventsV1Api, V1MicroTime, type KubeConfig, type V1ObjectReference } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { describeApiError } from './api-errors.ts';

export interface EventSource {
  /** `reportingController`, e.g. `cryo.dev/node-agent`. */
  controller: string;
  /** `reportingInstance`, e.g. `cryo-node-agent-<node>`. */
  instance: string;
}

export interface RecordedEvent {
  /** The object the Event is about; its namespace is the Event's (`default` for cluster-scoped ones, where the kubelet puts a Node's own). */
  regarding: V1ObjectReference;
  /** A second object involved (the pod a Checkpoint names, say). */
  related?: V1ObjectReference;
  type: 'Normal' | 'Warning';
  /** CamelCase, machine-readable: `CheckpointStarted`. */
  reason: string;
  /** What the reporter did: `Checkpoint`, `Migrate`. */
  action: string;
  /** For people; cut to the 1 KiB the apiserver allows. */
  note: string;
}

export class EventRecorder {
  private readonly api: EventsV1Api;
  private readonly source: EventSource;
  private readonly logger: Logger;

  constructor(kubeConfig: KubeConfig, source: EventSource, logger: Logger) {
    this.api = kubeConfig.makeApiClient(EventsV1Api);
    this.source = source;
    this.logger = logger;
  }

  async record(event: RecordedEvent): Promise<void> {
    const namespace = event.regarding.namespace ?? 'default';
    try {
      await this.api.createNamespacedEvent({
        namespace,
        body: {
          // A trailing '-', not '.': the apiserver refuses a generateName that does not end alphanumeric or in '-'.
          metadata: { generateName: `${event.regarding.name ?? 'cryo'}-`, namespace },
          // A MicroTime: the apiserver parses exactly six fractional digits and answers 400 to a
          // plain Date's milliseconds. client-node passes this class through its serializer, and
          // its toISOString pads to microseconds.
          eventTime: new V1MicroTime(),
          reportingController: this.source.controller,
          reportingInstance: this.source.instance,
          action: event.action,
          reason: event.reason,
          type: event.type,
          note: event.note.slice(0, 1024),
          regarding: event.regarding,
          ...(event.related === undefined ? {} : { related: event.related }),
        },
      });
    } catch (error) {
      const regarding = `${event.regarding.kind ?? ''} ${event.regarding.namespace === undefined ? '' : `${event.regarding.namespace}/`}${event.regarding.name ?? ''}`.trim();
      this.logger.warn({ regarding, reason: event.reason, err: describeApiError(error) }, 'could not record an event');
    }
  }
}
