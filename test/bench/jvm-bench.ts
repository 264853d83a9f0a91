/**
 * npm run bench:jvm — the seed's fast-start case measured on the real node of the test cluster
 * (root, `scripts/cluster/cluster.sh provision`; containerd unless BENCH_RUNTIME=crio): a JVM
 * (OpenJDK 21, the flags of docs/jvm.md) running WarmIndexService, which builds its index for many
 * seconds at start. Per run, from `kubectl apply` of the pod to its first correct answer (GET
 * /lookup, the value checked against the one computed here; polled every 20 ms):
 * - cold: a fresh pod of the JVM image — the baseline, in the same run;
 * - restored: a pod annotated cryo.dev/restore-from, from a checkpoint of a warm pod stored with
 *   an uncompressed layer (None) and one stored zstd-compressed (Zstd). The first copy on the node
 *   also pulls the checkpoint image; the others find it there (both shown).
 * Target (issue 11): restored copies answer ≥ 10× faster than cold. Also printed: the JVM's own
 * warm-up, the checkpoint's size against the pod's memory, and how long checkpointing took.
 * BENCH_RUNS (default 3) of each.
 */
import { buildJavaClasses, JVM_FLAGS, openCluster, waitFor, WARM_INDEX_MAIN, warmIndexValue, type Cluster, type ClusterRuntime, type WarmIndexLookup, type WarmIndexState } from '@cryo/test';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const RUNTIME = (process.env.BENCH_RUNTIME ?? 'containerd') as ClusterRuntime;
const NS = 'cryo-bench-jvm';
const KEY = 4711;
const EXPECTED = warmIndexValue(KEY);
const COMPRESSIONS = ['None', 'Zstd'] as const;

interface Pod {
  status: { podIP?: string };
}
interface Checkpoint {
  status?: { phase?: string; message?: string; containers?: { name: string; sizeBytes?: number; checkpointDurationSeconds?: number; storeDurationSeconds?: number }[] };
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const seconds = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MiB`;

async function lookup(ip: string): Promise<WarmIndexLookup | undefined> {
  try {
    const response = await fetch(`http://${ip}:8080/lookup?key=${KEY}`, { signal: AbortSignal.timeout(1_000), headers: { connection: 'close' } });
    return response.ok ? ((await response.json()) as WarmIndexLookup) : undefined;
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  const opened = openCluster(RUNTIME);
  if ('skip' in opened) throw new Error(`bench:jvm needs the test cluster: ${opened.skip}`);
  const cluster: Cluster = opened;
  const log = (line: string) => process.stdout.write(`${line}\n`);

  await cluster.up();
  try {
    await cluster.installCryo();
    const image = await cluster.jvmAppImage('warm-index', await buildJavaClasses(cluster.settings.repoRoot));
    await cluster.freshNamespace(NS);
    await cluster.apply(
      ...COMPRESSIONS.map((c) => ({
        apiVersion: 'cryo.dev/v1alpha1',
        kind: 'CheckpointStorageClass',
        metadata: { name: `bench-jvm-${c.toLowerCase()}` },
        spec: { namespaces: [NS], registry: { repository: `${cluster.settings.registryForPods}/bench-jvm`, layerCompression: c } },
      })),
    );

    const pod = (name: string, annotations: Record<string, string>) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: NS, labels: { app: 'warm-jvm' }, annotations: { 'cryo.dev/hooks': 'enabled', ...annotations } },
      spec: {
        terminationGracePeriodSeconds: 1,
        containers: [
          {
            name: 'app',
            image,
            args: [...JVM_FLAGS, '-cp', '/app/classes', WARM_INDEX_MAIN],
            env: [{ name: 'PORT', value: '8080' }],
            ports: [{ containerPort: 8080 }],
            readinessProbe: { httpGet: { path: '/ready', port: 8080 }, periodSeconds: 1, failureThreshold: 1 },
            resources: { requests: { memory: '256Mi' }, limits: { memory: '1536Mi' } },
          },
        ],
      },
    });
    /** From `kubectl apply` to the first correct answer of the pod. */
    const firstAnswer = async (name: string, annotations: Record<string, string> = {}): Promise<{ ms: number; ip: string; answer: WarmIndexLookup }> => {
      const t0 = performance.now();
      await cluster.apply(pod(name, annotations));
      const ip = await waitFor(async () => (await cluster.get<Pod>(['-n', NS, 'pod', name])).status.podIP, { timeoutMs: 120_000, intervalMs: 50, what: `${name}'s IP` });
      const answer = await waitFor(async () => { const a = await lookup(ip); return a?.value === EXPECTED ? a : undefined; }, { timeoutMs: 180_000, intervalMs: 20, what: `${name}'s first correct answer` });
      return { ms: performance.now() - t0, ip, answer };
    };
    const state = async (ip: string): Promise<WarmIndexState> => (await (await fetch(`http://${ip}:8080/state`)).json()) as WarmIndexState;
    const remove = (name: string) => cluster.kubectl(['-n', NS, 'delete', 'pod', name, '--wait=true'], { timeoutMs: 120_000 });

    // The seed: the pod checkpointed (its image pulled on the node, as for every run after).
    const seed = await firstAnswer('seed');
    await waitFor(async () => (await state(seed.ip)).events.includes('connected welcome'), { timeoutMs: 30_000, intervalMs: 100, what: 'the seed to connect to its agent' });
    const seedState = await state(seed.ip);
    log(`seed: first correct answer ${seconds(seed.ms)} after apply; the JVM's own warm-up ${seedState.warmUpMillis} ms, RSS ${mib(seedState.rssBytes)}`);

    const checkpoints: Record<string, { sizeBytes: number; checkpointS: number; storeS: number }> = {};
    for (const c of COMPRESSIONS) {
      const name = `jvm-${c.toLowerCase()}`;
      await cluster.apply({ apiVersion: 'cryo.dev/v1alpha1', kind: 'Checkpoint', metadata: { name, namespace: NS }, spec: { podName: 'seed', storageClassName: `bench-jvm-${c.toLowerCase()}`, reason: 'bench:jvm' } });
      const done = await waitFor(
        async () => {
          const ckpt = await cluster.get<Checkpoint>(['-n', NS, 'checkpoint', name]);
          if (ckpt.status?.phase === 'Failed') throw new Error(`checkpoint ${name} failed: ${ckpt.status.message}`);
          return ckpt.status?.phase === 'Succeeded' ? ckpt : undefined;
        },
        { timeoutMs: 300_000, intervalMs: 200, what: `checkpoint ${name}` },
      );
      const container = done.status!.containers![0];
      checkpoints[c] = { sizeBytes: container.sizeBytes ?? NaN, checkpointS: container.checkpointDurationSeconds ?? NaN, storeS: container.storeDurationSeconds ?? NaN };
      log(`checkpoint ${name}: ${mib(checkpoints[c].sizeBytes)} stored; kubelet checkpoint ${checkpoints[c].checkpointS.toFixed(2)} s, storing ${checkpoints[c].storeS.toFixed(2)} s`);
    }
    await remove('seed');

    const cold: number[] = [];
    for (let i = 1; i <= RUNS; i++) {
      const run = await firstAnswer(`cold-${i}`);
      cold.push(run.ms);
      log(`cold-${i}: ${seconds(run.ms)} (the JVM's own warm-up ${(await state(run.ip)).warmUpMillis} ms)`);
      await remove(`cold-${i}`);
    }
    const restored: Record<string, number[]> = {};
    for (const c of COMPRESSIONS) {
      restored[c] = [];
      for (let i = 1; i <= RUNS; i++) {
        const name = `copy-${c.toLowerCase()}-${i}`;
        const run = await firstAnswer(name, { 'cryo.dev/restore-from': `jvm-${c.toLowerCase()}` });
        const told = await state(run.ip);
        if (run.answer.restoreCount !== 1 || told.warmUpMillis <= 0) throw new Error(`${name} answered without being a restored copy: ${JSON.stringify(told)}`);
        restored[c].push(run.ms);
        log(`${name}: ${seconds(run.ms)}${i === 1 ? ' (pulled the checkpoint image)' : ''}`);
        await remove(name);
      }
    }

    const coldMedian = median(cold);
    log('');
    log(`bench:jvm on ${RUNTIME}, ${RUNS} runs each, from kubectl apply to the first correct answer (medians):`);
    log(`  cold start                          ${seconds(coldMedian)}   (baseline)`);
    for (const c of COMPRESSIONS) {
      const all = median(restored[c]);
      const later = restored[c].length > 1 ? median(restored[c].slice(1)) : all;
      log(`  restored, layer ${c.padEnd(4)} (all runs)      ${seconds(all)}   ${(coldMedian / all).toFixed(1)}x faster   (first copy ${seconds(restored[c][0])}, later copies ${seconds(later)}: ${(coldMedian / later).toFixed(1)}x)`);
    }
    for (const c of COMPRESSIONS) log(`  checkpoint ${c.padEnd(4)}: ${mib(checkpoints[c].sizeBytes)} stored; kubelet checkpoint ${checkpoints[c].checkpointS.toFixed(2)} s + storing ${checkpoints[c].storeS.toFixed(2)} s`);
    log(`  the warm JVM's RSS: ${mib(seedState.rssBytes)}; checkpoint (None) ${(checkpoints.None.sizeBytes / seedState.rssBytes).toFixed(2)}x of it`);
    log(`  target (issue 11): restored ≥ 10x faster than cold: ${COMPRESSIONS.map((c) => `${c} ${coldMedian / median(restored[c]) >= 10 ? 'met' : 'not met'}`).join(', ')}`);
  } finally {
    if (process.env.CRYO_CLUSTER_KEEP !== '1') {
      await cluster.kubectl(['delete', 'namespace', NS, '--wait=false']).catch(() => {});
      await cluster.kubectl(['delete', 'checkpointstorageclass', ...COMPRESSIONS.map((c) => `bench-jvm-${c.toLowerCase()}`), '--ignore-not-found']).catch(() => {});
      await cluster.down();
    }
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench:jvm failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
