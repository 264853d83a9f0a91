/**
 * The app the cluster tests checkpoint and restore: the CRIU tests' Node service with the hook SDK
 * (test/criu/fixtures/hooked-service.ts), serving its state on port 8080 of its pod.
 */
import { fileURLToPath } from 'node:url';
import { startLineEchoUpstream, type LineEchoUpstream } from '../line-echo-upstream.ts';
import type { Cluster } from './open-cluster.ts';
import { sdkAppDir } from './sdk-app.ts';

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

/**
 * What a cluster test of the hooked app starts with: the cluster up with Cryo installed, the app's
 * image, its upstream on the node's address, and a fresh namespace. `done` ends them again (the
 * cluster stays up with CRYO_CLUSTER_KEEP=1).
 */
export async function startHookedAppCluster(cluster: Cluster, namespace: string): Promise<{ image: string; upstream: LineEchoUpstream; done: () => Promise<void> }> {
  await cluster.up();
  await cluster.installCryo();
  const image = await cluster.appImage('hooked-service', await sdkAppDir(cluster.settings.repoRoot, 'hooked-service', HOOKED_APP_SOURCE));
  const upstream = await startLineEchoUpstream(cluster.settings.nodeIp);
  await cluster.freshNamespace(namespace);
  const done = async () => {
    await upstream.close();
    if (process.env.CRYO_CLUSTER_KEEP === '1') return;
    await cluster.kubectl(['delete', 'namespace', namespace, '--wait=false']).catch(() => {});
    await cluster.down();
  };
  return { image, upstream, done };
}

/** The hooked app's container: its port, upstream and readiness on /state. */
export function hookedAppContainer(image: string, upstream: LineEchoUpstream, securityContext: object): object {
  return {
    name: 'app',
    image,
    env: Object.entries({ PORT: '8080', UPSTREAM: upstream.address }).map(([name, value]) => ({ name, value })),
    ports: [{ containerPort: 8080 }],
    readinessProbe: { httpGet: { path: '/state', port: 8080 }, periodSeconds: 1, failureThreshold: 1 },
    securityContext,
  };
}
