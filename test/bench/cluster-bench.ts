/**
 * npm run bench:cluster [-- containerd|crio] — Cryo's figures on the real test cluster (root and
 * `scripts/cluster/cluster.sh provision`; docs/cluster.md), with the fast-start demo's app
 * (test/demo/warm-app.ts: 10 s of warming a cache, then answers; Ready once warm), as a median of
 * BENCH_RUNS (default 5) runs each:
 * - Checkpoint created → Succeeded (hooks, kubelet, runtime, CRIU, registry push, status), against
 *   the kubelet's own checkpoint API called directly for a container of the same app, warm, without
 *   hooks (no prepare, no store):
 *   what Cryo adds around the runtime;
 * - the app's frozen time: the longest gap between two answers of a client polling it every 10 ms
 *   while the Checkpoint runs (hooks take its server down, CRIU freezes it, hooks bring it back);
 * - a pod annotated cryo.dev/restore-from created → Ready (warm), against the same pod started
 *   cold → Ready (warm): what restoring saves.
 * Times are taken by polling the API every 100 ms (a resolution of ~0.1 s).
 */
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { CLUSTER_RUNTIMES, openCluster, runCommand, sdkAppDir, waitFor, type Cluster, type ClusterRuntime } from '@cryo/test';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const NS = 'cryo-bench';
const runtime = (process.argv[2] ?? 'containerd') as ClusterRuntime;
if (!CLUSTER_RUNTIMES.includes(runtime)) throw new Error(`runtime must be one of ${CLUSTER_RUNTIMES.join(', ')}, got ${runtime}`);

interface Pod { status: { podIP?: string; conditions?: { type: string; status: string }[] } }
const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const seconds = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;

async function main(): Promise<void> {
  const opened = openCluster(runtime);
  if ('skip' in opened) throw new Error(opened.skip);
  const cluster: Cluster = opened;
  await cluster.up();
  try {
    await cluster.installCryo();
    const image = await cluster.appImage('warm-app', await sdkAppDir(cluster.settings.repoRoot, 'warm-app', fileURLToPath(new URL('../demo/warm-app.ts', import.meta.url))));
    await cluster.kubectl(['delete', 'namespace', NS, '--ignore-not-found', '--wait=true'], { timeoutMs: 120_000 });
    await cluster.kubectl(['create', 'namespace', NS]);
    await waitFor(async () => (await cluster.kubectlResult(['-n', NS, 'get', 'serviceaccount', 'default'])).code === 0, { timeoutMs: 30_000, intervalMs: 250, what: 'the default ServiceAccount' });

    const pod = (name: string, annotations: Record<string, string>) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: NS, annotations },
      spec: {
        terminationGracePeriodSeconds: 1,
        containers: [{
          name: 'app',
          image,
          ports: [{ containerPort: 8080 }],
          // Ready once warm: /lookup answers 503 while the cache is being built.
          readinessProbe: { httpGet: { path: '/lookup?key=1', port: 8080 }, periodSeconds: 1, failureThreshold: 1 },
          securityContext: { allowPrivilegeEscalation: false, seccompProfile: { type: 'RuntimeDefault' } },
        }],
      },
    });
    const untilReady = async (name: string): Promise<Pod> =>
      waitFor(async () => {
        const p = await cluster.get<Pod>(['-n', NS, 'pod', name]);
        return p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? p : undefined;
      }, { timeoutMs: 120_000, intervalMs: 100, what: `pod ${name} Ready` });
    const timedStart = async (name: string, annotations: Record<string, string>): Promise<number> => {
      const started = performance.now();
      await cluster.apply(pod(name, annotations));
      await untilReady(name);
      const elapsed = performance.now() - started;
      await cluster.kubectl(['-n', NS, 'delete', 'pod', name, '--wait=false']);
      return elapsed;
    };

    const cold: number[] = [];
    for (let i = 0; i < RUNS; i++) cold.push(await timedStart(`cold-${i}`, {}));

    // The baseline's pod has no hooks: a connected hook client is a unix socket to outside the
    // container, which CRIU refuses unless the agent's prepare has closed it.
    await cluster.apply(pod('warm', { 'cryo.dev/hooks': 'enabled' }), pod('plain', {}));
    const warm = await untilReady('warm');
    await untilReady('plain');
    const checkpointMs: number[] = [];
    const frozenMs: number[] = [];
    const kubeletMs: number[] = [];
    const pki = join(cluster.settings.clusterDir, 'state/pki');
    for (let i = 0; i < RUNS; i++) {
      // The baseline: the kubelet's API, straight, for the same app in the same state.
      const direct = performance.now();
      const raw = await runCommand(['curl', '-sf', '--cacert', join(pki, 'ca.crt'), '--cert', join(pki, 'apiserver-kubelet-client.crt'), '--key', join(pki, 'apiserver-kubelet-client.key'),
        '-X', 'POST', `https://${cluster.settings.nodeIp}:10250/checkpoint/${NS}/plain/app`], { timeoutMs: 120_000 });
      kubeletMs.push(performance.now() - direct);
      if (raw.code !== 0) throw new Error(`the kubelet's checkpoint API failed: ${raw.stderr}${raw.stdout}`);
      await runCommand(['rm', '-f', ...(JSON.parse(raw.stdout) as { items: string[] }).items]);

      let polling = true;
      let last = performance.now();
      let longestGap = 0;
      const poller = (async () => {
        while (polling) {
          const ok = await fetch(`http://${warm.status.podIP}:8080/lookup?key=1`, { signal: AbortSignal.timeout(1_000) }).then((r) => r.ok, () => false);
          const now = performance.now();
          if (ok) { longestGap = Math.max(longestGap, now - last); last = now; }
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      })();
      const started = performance.now();
      await cluster.apply({ apiVersion: 'cryo.dev/v1alpha1', kind: 'Checkpoint', metadata: { name: `warm-${i}`, namespace: NS }, spec: { podName: 'warm' } });
      const phase = await waitFor(async () => {
        const c = await cluster.get<{ status?: { phase?: string; message?: string } }>(['-n', NS, 'checkpoint', `warm-${i}`]);
        return c.status?.phase === 'Succeeded' || c.status?.phase === 'Failed' ? c.status : undefined;
      }, { timeoutMs: 120_000, intervalMs: 100, what: `Checkpoint warm-${i}` });
      checkpointMs.push(performance.now() - started);
      if (phase.phase !== 'Succeeded') throw new Error(`Checkpoint warm-${i} failed: ${phase.message}`);
      // The app answers again after the post-restore hooks; then the gap is closed.
      await waitFor(() => performance.now() - last < 50, { timeoutMs: 30_000, intervalMs: 20, what: 'the app to answer again' });
      polling = false;
      await poller;
      frozenMs.push(longestGap);
    }

    const restore: number[] = [];
    for (let i = 0; i < RUNS; i++) restore.push(await timedStart(`copy-${i}`, { 'cryo.dev/restore-from': `warm-${i}` }));

    const lines = [
      `Cryo on the test cluster (${runtime}), ${RUNS} runs each, medians:`,
      `  Checkpoint created -> Succeeded:          ${seconds(median(checkpointMs))}  (runs: ${checkpointMs.map(seconds).join(', ')})`,
      `  the kubelet's checkpoint API alone:       ${seconds(median(kubeletMs))}  -> Cryo's whole Checkpoint takes ${(median(checkpointMs) / median(kubeletMs)).toFixed(1)}x the raw dump`,
      `  the app's frozen time (longest gap):      ${seconds(median(frozenMs))}  (runs: ${frozenMs.map(seconds).join(', ')})`,
      `  cold start -> Ready (warm):               ${seconds(median(cold))}  (runs: ${cold.map(seconds).join(', ')})`,
      `  restore-from pod created -> Ready (warm): ${seconds(median(restore))}  (runs: ${restore.map(seconds).join(', ')})`,
      `  restore vs cold start:                    ${(median(cold) / median(restore)).toFixed(1)}x faster`,
    ];
    console.log(lines.join('\n'));
  } finally {
    await cluster.kubectl(['delete', 'namespace', NS, '--wait=false']).catch(() => {});
    if (process.env.CRYO_CLUSTER_KEEP !== '1') await cluster.down();
  }
}

await main();
