/**
 * The Events about one object (events.k8s.io/v1, `regarding` it): what the node agent and the
 * controller say as they go, read with a field selector and followed with a watch.
 */
import type { EventsV1Event } from '@kubernetes/client-node';
import { follow } from './follow.ts';
import type { Kube } from './kube.ts';

export interface ObjectEvent {
  uid: string;
  type: string;
  reason: string;
  note: string;
  /** When it last happened. */
  time: number | undefined;
  from: string;
  count: number;
}

/** `regarding.name=<name>,regarding.kind=<kind>` (both are selectable fields of events.k8s.io/v1). */
export function regardingSelector(kind: string, name: string): string {
  return `regarding.kind=${kind},regarding.name=${name}`;
}

function eventsPath(namespace: string): string {
  return `/apis/events.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/events`;
}

const timeOf = (value: unknown): number | undefined => {
  if (value instanceof Date) return value.getTime();
  if (typeof value === 'string') {
    const time = Date.parse(value);
    return Number.isNaN(time) ? undefined : time;
  }
  return undefined;
};

/** An Event from the typed client (Dates) or from a watch (strings), as the CLI shows it. */
export function toObjectEvent(event: EventsV1Event): ObjectEvent {
  const series = event.series as { count?: number; lastObservedTime?: unknown } | undefined;
  return {
    uid: event.metadata?.uid ?? `${event.metadata?.name ?? ''}`,
    type: event.type ?? 'Normal',
    reason: event.reason ?? '',
    note: event.note ?? '',
    time: timeOf(series?.lastObservedTime) ?? timeOf(event.eventTime) ?? timeOf(event.deprecatedLastTimestamp) ?? timeOf(event.metadata?.creationTimestamp),
    from: event.reportingController ?? event.deprecatedSource?.component ?? '',
    count: series?.count ?? event.deprecatedCount ?? 1,
  };
}

/** The object's Events, oldest first; none when Events cannot be read (not allowed, say): they only inform. */
export async function listEvents(kube: Kube, namespace: string, kind: string, name: string): Promise<ObjectEvent[]> {
  try {
    const list = await kube.events.listNamespacedEvent({ namespace, fieldSelector: regardingSelector(kind, name) });
    return list.items.map(toObjectEvent).sort((a, b) => (a.time ?? 0) - (b.time ?? 0));
  } catch {
    return [];
  }
}

/**
 * Calls `onEvent` once per Event the deduper has not seen (again when its count grows), until
 * `signal` aborts; never throws.
 */
export async function followEvents(kube: Kube, namespace: string, kind: string, name: string, deduper: EventDeduper, onEvent: (event: ObjectEvent) => void, signal: AbortSignal): Promise<void> {
  const report = (raw: EventsV1Event) => {
    const event = toObjectEvent(raw);
    if (deduper.isNew(event)) onEvent(event);
  };
  try {
    await follow<EventsV1Event, never>({
      kube,
      path: eventsPath(namespace),
      fieldSelector: regardingSelector(kind, name),
      list: async () => (await kube.events.listNamespacedEvent({ namespace, fieldSelector: regardingSelector(kind, name) })),
      decide: (type, event) => {
        if (type !== 'DELETED') report(event);
        return undefined;
      },
      signal,
    });
  } catch {
    // Aborted, or Events not readable: they only inform.
  }
}

/** Keeps the first report of each Event (by uid and count): for a final list after a follow. */
export class EventDeduper {
  private readonly seen = new Map<string, number>();

  isNew(event: ObjectEvent): boolean {
    if ((this.seen.get(event.uid) ?? 0) >= event.count) return false;
    this.seen.set(event.uid, event.count);
    return true;
  }
}
