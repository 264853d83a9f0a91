/**
 * The pods the hook server serves: those on this node annotated `cryo.dev/hooks: enabled` that
 * are still running. Only what the server needs is kept.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { annotations } from '@cryo/common';

export interface HookPod {
  uid: string;
  name: string;
  namespace: string;
}

// Pod UIDs are RFC 4122 UUIDs; only such directory names are ever created or removed.
export const POD_UID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The pod as the hook server sees it, or null if it should have no hook socket. */
export function hookPodOf(pod: V1Pod): HookPod | null {
  const metadata = pod.metadata;
  const uid = metadata?.uid;
  if (uid === undefined || !POD_UID_PATTERN.test(uid)) return null;
  if (metadata?.annotations?.[annotations.HOOKS] !== annotations.HOOKS_ENABLED) return null;
  const phase = pod.status?.phase;
  if (phase === 'Succeeded' || phase === 'Failed') return null;
  return { uid, name: metadata?.name ?? '', namespace: metadata?.namespace ?? '' };
}

export function describePod(pod: HookPod): string {
  return `${pod.namespace}/${pod.name}`;
}
