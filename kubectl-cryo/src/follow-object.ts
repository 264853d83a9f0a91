/**
 * Following one Cryo object (a Checkpoint, a Migration) to a finished phase, with its Events
 * beside it: both are watched, and whatever the object's watch and the Events' watch report is
 * passed on as it comes; a last read of the Events after the end catches the stragglers.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import { CliError, EXIT } from './errors.ts';
import { EventDeduper, followEvents, listEvents, type ObjectEvent } from './events.ts';
import { follow } from './follow.ts';
import type { Kube } from './kube.ts';
import { listObjects, type ResourceInfo } from './resources.ts';

export interface FollowObjectOptions<T extends KubernetesObject> {
  kube: Kube;
  resource: ResourceInfo;
  namespace: string;
  name: string;
  /** True once nothing more will happen to it. */
  isDone: (obj: T) => boolean;
  /** Every version seen, in order (the first as listed). */
  onChange?: (obj: T) => void;
  /** Every Event about it, once (only when given: reading Events costs a watch). */
  onEvent?: (event: ObjectEvent) => void;
  signal: AbortSignal;
}

export async function followObject<T extends KubernetesObject>(options: FollowObjectOptions<T>): Promise<T> {
  const { kube, resource, namespace, name, signal } = options;
  const deduper = new EventDeduper();
  const eventsStop = new AbortController();
  const stopEvents = () => eventsStop.abort();
  signal.addEventListener('abort', stopEvents, { once: true });
  const events = options.onEvent === undefined ? Promise.resolve() : followEvents(kube, namespace, resource.kind, name, deduper, options.onEvent, eventsStop.signal);
  try {
    const final = await follow<T, T>({
      kube,
      path: resource.path(namespace),
      fieldSelector: `metadata.name=${name}`,
      list: async () => {
        const list = await listObjects<T>(kube, resource, namespace, { fieldSelector: `metadata.name=${name}` });
        if (list.items.length === 0) throw new CliError(EXIT.NOT_FOUND, `${resource.kind} "${name}" not found in namespace ${namespace} (deleted?)`);
        return list;
      },
      decide: (type, obj) => {
        if (type === 'DELETED') throw new CliError(EXIT.FAILED, `${resource.kind} "${name}" was deleted while waiting for it`);
        options.onChange?.(obj);
        return options.isDone(obj) ? obj : undefined;
      },
      signal,
    });
    if (options.onEvent !== undefined) {
      for (const event of await listEvents(kube, namespace, resource.kind, name)) if (deduper.isNew(event)) options.onEvent(event);
    }
    return final;
  } finally {
    signal.removeEventListener('abort', stopEvents);
    eventsStop.abort();
    await events;
  }
}

/** `Warning DumpFailed: ...` as a progress line. */
export function describeEvent(event: ObjectEvent): string {
  const count = event.count > 1 ? ` (x${event.count})` : '';
  return `${event.type === 'Warning' ? 'Warning ' : ''}${event.reason}: ${event.note}${count}`;
}
