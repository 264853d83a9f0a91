/**
 * The app the cluster tests checkpoint and restore: the CRIU tests' Node service with the hook SDK
 * (test/criu/fixtures/hooked-service.ts), serving its state on port 8080 of its pod.
 */
import { fileURLToPath } from 'node:url';

/** Its source, for Cluster.appImage through sdkAppDir. */
export const HOOKED_APP_SOURCE = fileURLToPath(new URL('../../../criu/fixtures/hooked-service.ts', import.meta.url));

/** What it answers on GET /state. */
export interface HookedAppState {
  value: number;
  lastOutcome: string | null;
  restoreCount: number;
  hostname: string;
  events: string[];
}

/** The part of a pod (kubectl get -o json) these helpers read. */
export interface PodStatusView {
  status: { podIP?: string; conditions?: { type: string; status: string }[] };
}

export const podReady = (pod: PodStatusView): boolean => pod.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

/** The app's state, from its pod's IP on the cluster's bridge. */
export async function hookedAppState(pod: PodStatusView): Promise<HookedAppState> {
  const response = await fetch(`http://${pod.status.podIP}:8080/state`, { signal: AbortSignal.timeout(2_000) });
  return (await response.json()) as HookedAppState;
}
