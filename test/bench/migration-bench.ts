/**
 * npm run bench:migration — what a user feels when a pod migrates between the two real nodes of
 * the test cluster (root, `scripts/cluster/cluster.sh provision`; containerd, node-2 on the same
 * machine: docs/cluster.md), for an app holding ~512 MiB of real objects (heap-service.ts: the
 * shop index of heap-cache-app.ts behind an HTTP server, with the hook SDK). BENCH_RUNS (default
 * 3) Migrations, alternately node-1 → node-2 and back; per run:
 * - downtime: the last answer of the source (a client polling every 20 ms, a new connection
 *   each time) → the first answer of the pod that carries on;
 * - the app's frozen time: CRIU's own figure, from the dump statistics the checkpoint carries
 *   (stats-dump, read by checkpointctl from the stored image: containerd keeps no criu-dump.log
 *   after a successful checkpoint);
 * - bytes moved: the checkpoint image's layer as stored and pulled (Checkpoint status), against
 *   the app's RSS;
 * - the baseline, in the same run: CRIU's own dump (freezing + frozen) + restore time (the
 *   restored container's restore.log on the target): the least any migration could take.
 * Targets (issue 10): downtime ≤ 1.5× (dump + restore); bytes moved ≤ 0.5× RSS.
 * Times of Kubernetes objects come from polling the API every 100 ms.
 */
import { fileURLToPath } from 'node:url';
import { criuLogTextSeconds, openCluster, sdkAppDir, waitFor, type Cluster } from '@cryo/test';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const NS = 'cryo-bench-migration';
const TASK_DIR = '/run/containerd/io.containerd.runtime.v2.task/k8s.io';

interface Pod {
  metadata: { name: string; uid: string };
  spec: { nodeName?: string };
  status: { podIP?: string; containerStatuses?: { containerID?: string }[]; conditions?: { type: string; status: string }[] };
}
interface Migration { status?: { phase?: string; message?: string; targetPodName?: string; targetNodeName?: string; downtimeSeconds?: number; checkpointName?: string } }
interface Checkpoint { status?: { containers?: { name: string; sizeBytes?: number; restoreReference?: string; checkpointDurationSeconds?: number; storeDurationSeconds?: number }[] } }
/** checkpointctl inspect --stats --format json: CRIU's dump statistics, times in microseconds. */
interface DumpStatistics { freezing_time: number; frozen_time: number; memdump_time: number; memwrite_time: number }

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const seconds = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
const containerId = (pod: Pod): string => (pod.status.containerStatuses?.[0]?.containerID ?? '').replace(/^containerd:\/\//, '');

/** Answers GET / (a new connection each time), or not within 500 ms. */
async function answers(ip: string): Promise<{ rssBytes: number } | undefined> {
  try {
    const response = await fetch(`http://${ip}:8080/`, { signal: AbortSignal.timeout(500), headers: { connection: 'close' } });
    return response.ok ? ((await response.json()) as { rssBytes: number }) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * CRIU's dump statistics of a stored checkpoint image, as an independent reader sees them: skopeo
 * copies it out of the registry with its layer decompressed, checkpointctl reads the archive.
 */
async function dumpStatistics(cluster: Cluster, reference: string): Promise<DumpStatistics> {
  const dir = `/tmp/cryo-bench-migration-${process.pid}`;
  const run = async (argv: string[]): Promise<string> => {
    const result = await cluster.exec(argv, { timeoutMs: 120_000 });
    if (result.code !== 0) throw new Error(`${argv.join(' ')} exited ${result.code}: ${result.stderr}`);
    return result.stdout;
  };
  try {
    await run(['skopeo', 'copy', '--quiet', '--src-tls-verify=false', '--dest-decompress', `docker://${reference.replace(cluster.settings.registryForPods, cluster.settings.registry)}`, `dir:${dir}`]);
    const manifest = JSON.parse(await run(['cat', `${dir}/manifest.json`])) as { layers: { digest: string }[] };
    const layer = `${dir}/${manifest.layers[0].digest.replace(/^sha256:/, '')}`;
    const inspected = JSON.parse(await run(['checkpointctl', 'inspect', layer, '--stats', '--format', 'json'])) as { statistics?: DumpStatistics }[];
    const stats = inspected[0]?.statistics;
    if (stats === undefined) throw new Error(`checkpointctl showed no dump statistics for ${reference}`);
    return stats;
  } finally {
    await cluster.exec(['rm', '-rf', dir]);
  }
}

/** The text of a file on a node, or '' while it is not there. */
async function readOn(cluster: Cluster, node: string, file: string): Promise<string> {
  const result = await cluster.execOn(node, ['cat', file], { timeoutMs: 10_000 });
  return result.code === 0 ? result.stdout : '';
}

async function main(): Promise<void> {
  const opened = openCluster('containerd', { nodes: 2 });
  if ('skip' in opened) throw new Error(opened.skip);
  const cluster: Cluster = opened;
  await cluster.up();
  try {
    await cluster.installCryo();
    const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
    const image = await cluster.appImage('heap-service', await sdkAppDir(cluster.settings.repoRoot, 'heap-service', here('heap-service.ts'), [here('heap-cache-app.ts')]));
    await cluster.freshNamespace(NS);
    await cluster.apply({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'heap', namespace: NS, labels: { app: 'heap' }, annotations: { 'cryo.dev/hooks': 'enabled' } },
      spec: {
        nodeName: 'node-1',
        terminationGracePeriodSeconds: 1,
        containers: [{
          name: 'app',
          image,
          env: [{ name: 'TARGET_RSS_MIB', value: '512' }, { name: 'NODE_OPTIONS', value: '--max-old-space-size=1024' }],
          ports: [{ containerPort: 8080 }],
          readinessProbe: { httpGet: { path: '/', port: 8080 }, periodSeconds: 1, failureThreshold: 1 },
          securityContext: { allowPrivilegeEscalation: false, seccompProfile: { type: 'RuntimeDefault' } },
        }],
      },
    });
    const readyPod = (name: string, notUid?: string) =>
      waitFor(async () => {
        const r = await cluster.kubectlResult(['-n', NS, 'get', 'pod', name, '-o', 'json']);
        if (r.code !== 0) return undefined;
        const p = JSON.parse(r.stdout) as Pod;
        return p.metadata.uid !== notUid && p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? p : undefined;
      }, { timeoutMs: 300_000, intervalMs: 100, what: `pod ${name} Ready` });

    let pod = await readyPod('heap');
    const rows: { from: string; to: string; downtimeMs: number; statusDowntimeS: number; kubeletS: number; storeS: number; frozenMs: number; dumpMs: number; restoreMs: number; layerBytes: number; rssBytes: number }[] = [];
    for (let i = 0; i < RUNS; i++) {
      const from = pod.spec.nodeName!;
      const to = from === 'node-1' ? 'node-2' : 'node-1';
      const rssBytes = (await answers(pod.status.podIP!))!.rssBytes;

      // The source's answers, until the copy answers.
      let lastSourceAnswer = performance.now();
      let watching = true;
      const watcher = (async () => {
        while (watching) {
          if (await answers(pod.status.podIP!)) lastSourceAnswer = performance.now();
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      })();
      const name = `move-${i}`;
      await cluster.apply({ apiVersion: 'cryo.dev/v1alpha1', kind: 'Migration', metadata: { name, namespace: NS }, spec: { podName: 'heap', targetNodeName: to } });
      // The copy has the same name: wait for a new pod of that name with an IP, then poll it.
      const target = await waitFor(async () => {
        const r = await cluster.kubectlResult(['-n', NS, 'get', 'pod', 'heap', '-o', 'json']);
        if (r.code !== 0) return undefined;
        const p = JSON.parse(r.stdout) as Pod;
        return p.metadata.uid !== pod.metadata.uid && p.status.podIP ? p : undefined;
      }, { timeoutMs: 600_000, intervalMs: 100, what: `Migration ${name}'s pod` });
      const firstTargetAnswer = await waitFor(async () => ((await answers(target.status.podIP!)) ? performance.now() : undefined), { timeoutMs: 300_000, intervalMs: 20, what: 'the copy to answer' });
      watching = false;
      await watcher;
      const migration = await waitFor(async () => {
        const m = await cluster.get<Migration>(['-n', NS, 'migration', name]);
        if (m.status?.phase === 'Failed') throw new Error(`Migration ${name} failed: ${m.status.message}`);
        return m.status?.phase === 'Succeeded' ? m : undefined;
      }, { timeoutMs: 300_000, intervalMs: 100, what: `Migration ${name} Succeeded` });
      pod = await readyPod('heap', pod.metadata.uid);
      const restoreLog = await readOn(cluster, to, `${TASK_DIR}/${containerId(pod)}/work/restore.log`);
      const checkpoint = await cluster.get<Checkpoint>(['-n', NS, 'checkpoint', migration.status!.checkpointName!]);
      const layerBytes = checkpoint.status?.containers?.[0]?.sizeBytes ?? NaN;
      const dump = await dumpStatistics(cluster, checkpoint.status!.containers![0].restoreReference!);
      rows.push({
        from,
        to,
        downtimeMs: firstTargetAnswer - lastSourceAnswer,
        statusDowntimeS: migration.status!.downtimeSeconds ?? NaN,
        kubeletS: checkpoint.status?.containers?.[0]?.checkpointDurationSeconds ?? NaN,
        storeS: checkpoint.status?.containers?.[0]?.storeDurationSeconds ?? NaN,
        frozenMs: dump.frozen_time / 1000,
        dumpMs: (dump.freezing_time + dump.frozen_time) / 1000,
        restoreMs: criuLogTextSeconds(restoreLog) * 1000,
        layerBytes,
        rssBytes,
      });
      const row = rows.at(-1)!;
      console.log(`run ${i + 1}: ${from} -> ${to}: downtime ${seconds(row.downtimeMs)} (eviction -> Ready ${row.statusDowntimeS} s; the kubelet's checkpoint call ${row.kubeletS} s, storing ${row.storeS} s), CRIU dump ${seconds(row.dumpMs)} (frozen ${seconds(row.frozenMs)}) + restore ${seconds(row.restoreMs)}, layer ${mib(row.layerBytes)} of RSS ${mib(row.rssBytes)}`);
    }

    const downtime = median(rows.map((r) => r.downtimeMs));
    const criu = median(rows.map((r) => r.dumpMs + r.restoreMs));
    const moved = median(rows.map((r) => r.layerBytes / r.rssBytes));
    console.log([
      `Migration of a ${mib(median(rows.map((r) => r.rssBytes)))} RSS app between two nodes (containerd), ${RUNS} runs, medians:`,
      `  downtime (source's last answer -> target's first):  ${seconds(downtime)}  (runs: ${rows.map((r) => seconds(r.downtimeMs)).join(', ')})`,
      `  of which: the kubelet's checkpoint call ${median(rows.map((r) => r.kubeletS)).toFixed(2)} s, storing (zstd + push) ${median(rows.map((r) => r.storeS)).toFixed(2)} s,`,
      `            eviction -> Ready (Migration status.downtimeSeconds) ${median(rows.map((r) => r.statusDowntimeS)).toFixed(2)} s`,
      `  the app frozen (CRIU's frozen_time):                 ${seconds(median(rows.map((r) => r.frozenMs)))}`,
      `  CRIU's own dump + restore (the baseline):            ${seconds(criu)}  (restore alone ${seconds(median(rows.map((r) => r.restoreMs)))})`,
      `  downtime / (dump + restore):                         ${(downtime / criu).toFixed(2)}x  (target <= 1.5x)`,
      `  bytes moved (checkpoint layer):                      ${mib(median(rows.map((r) => r.layerBytes)))} = ${moved.toFixed(2)}x RSS  (target <= 0.5x)`,
    ].join('\n'));
  } finally {
    await cluster.kubectl(['delete', 'namespace', NS, '--wait=false']).catch(() => {});
    if (process.env.CRYO_CLUSTER_KEEP !== '1') await cluster.down();
  }
}

await main();
