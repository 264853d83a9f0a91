/**
 * npm run bench:webhook — the webhook against a bare https server, in the same run.
 *
 * Both run as child processes (one core each side: server vs. load generator) and get the same
 * 5 KB AdmissionReview (two containers and an initContainer, restoring from a checkpoint) over
 * HTTPS keep-alive. The webhook is the real process (main.ts) with generated TLS and its
 * Checkpoint cache fed by the shared fake kube-apiserver, logging at info to /dev/null.
 *
 * Prints: saturation throughput and p50/p99 of both and their ratio (target >= 0.7); p99 at a
 * fixed 1,000 requests/s (target <= 5 ms); RSS over a 60 s run at that rate (target: flat).
 * BENCH_QUICK=1 shortens every phase (for trying the script, not for figures).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { FakeKubeApiServer, loadAdmissionReview, loadCheckpoint, httpsRequest, waitFor, freePort } from '@cryo/test';
import { closedLoop, openLoop, type LoadResult, type LoadTarget } from './load-generator.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const quick = process.env.BENCH_QUICK === '1';
const SATURATION = { connections: 16, warmupSeconds: quick ? 1 : 3, seconds: quick ? 3 : 10 };
const FIXED_RATE = { rate: 1000, connections: 16, warmupSeconds: quick ? 1 : 3, seconds: quick ? 5 : 15 };
const FIXED_ROUNDS = quick ? 1 : 3;
const SOAK_SECONDS = quick ? 10 : 60;
const SERVERNAME = 'cryo-webhook.cryo-system.svc';

/** CPU seconds (user + system) the process has used so far. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  // utime and stime are fields 14 and 15 of /proc/<pid>/stat, in clock ticks (100 per second here).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Runs `load` and adds the server's CPU microseconds per request to its result. */
async function withServerCpu(pid: number, load: () => Promise<LoadResult>): Promise<LoadResult & { cpuUsPerRequest: number }> {
  const before = cpuSeconds(pid);
  const result = await load();
  return { ...result, cpuUsPerRequest: ((cpuSeconds(pid) - before) / result.requests) * 1e6 };
}

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) / 1024;
}

/** SIGTERM first (the webhook shuts down cleanly and writes a profile if asked), SIGKILL after 10 s. */
function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

const fmt = (r: LoadResult & { cpuUsPerRequest?: number }) =>
  `${r.throughput.toFixed(0).padStart(6)} req/s   p50 ${r.p50Ms.toFixed(2)} ms   p99 ${r.p99Ms.toFixed(2)} ms   max ${r.maxMs.toFixed(1)} ms   errors ${r.errors}` +
  (r.cpuUsPerRequest === undefined ? '' : `   server CPU ${r.cpuUsPerRequest.toFixed(0)} µs/req`);

type Histogram = Map<number, number>;

/** The cumulative buckets of cryo_webhook_admission_duration_seconds, summed over labels. */
async function admissionHistogram(target: LoadTarget): Promise<Histogram> {
  const text = (await httpsRequest(target, 'GET', '/metrics')).text;
  const buckets: Histogram = new Map();
  for (const m of text.matchAll(/^cryo_webhook_admission_duration_seconds_bucket\{le="([^"]+)",[^}]*\} (\d+)/gm)) {
    const le = m[1] === '+Inf' ? Infinity : Number(m[1]);
    buckets.set(le, (buckets.get(le) ?? 0) + Number(m[2]));
  }
  return buckets;
}

function subtractHistograms(after: Histogram, before: Histogram): Histogram {
  return new Map([...after].map(([le, n]) => [le, n - (before.get(le) ?? 0)]));
}

/** The upper bound of the bucket holding quantile q. */
function histogramQuantile(buckets: Histogram, q: number): number {
  const sorted = [...buckets].sort(([a], [b]) => a - b);
  const total = sorted[sorted.length - 1]?.[1] ?? 0;
  return sorted.find(([, n]) => n >= q * total)?.[0] ?? NaN;
}

async function main(): Promise<void> {
  const children: ChildProcess[] = [];
  const api = await FakeKubeApiServer.start();
  const dir = mkdtempSync(path.join(tmpdir(), 'cryo-bench-'));
  try {
    const checkpoint = loadCheckpoint('succeeded-registry');
    api.put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } });
    api.put(checkpoint);
    api.put(parseYaml(readFileSync(path.join(ROOT, 'manifests/mutating-webhook.yaml'), 'utf8')));
    const kubeconfig = api.writeKubeconfigFile(dir);

    const webhookPort = await freePort();
    // BENCH_WEBHOOK_NODE_ARGS="--cpu-prof" profiles the webhook (written when it exits on SIGTERM).
    const nodeArgs = (process.env.BENCH_WEBHOOK_NODE_ARGS ?? '').split(' ').filter(Boolean);
    const webhook = spawn(process.execPath, [...nodeArgs, path.join(ROOT, 'webhook/src/main.ts')], {
      env: {
        ...process.env,
        KUBECONFIG: kubeconfig,
        CRYO_PORT: String(webhookPort),
        CRYO_SHUTDOWN_DELAY: '0s',
        POD_NAMESPACE: 'cryo-system',
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    children.push(webhook);
    await waitFor(() => api.get('v1', 'secrets', 'cryo-system', 'cryo-webhook-tls') !== undefined, { what: 'the TLS Secret', timeoutMs: 30_000 });
    const secret = api.get<{ data: Record<string, string> }>('v1', 'secrets', 'cryo-system', 'cryo-webhook-tls')!;
    const decode = (k: string) => Buffer.from(secret.data[k], 'base64').toString('utf8');
    const ca = decode('ca.crt');
    await waitFor(
      async () => (await httpsRequest({ port: webhookPort, ca, servername: SERVERNAME }, 'GET', '/readyz').catch(() => undefined))?.status === 200,
      { what: 'the webhook to be ready', timeoutMs: 30_000 },
    );

    const bare = spawn(process.execPath, [path.join(ROOT, 'test/bench/bare-https-server.ts')], {
      env: { ...process.env, BENCH_TLS: JSON.stringify({ cert: decode('tls.crt'), key: decode('tls.key') }) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(bare);
    const barePort = await new Promise<number>((resolve) => bare.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));

    const review = loadAdmissionReview('restore-deployment-pod');
    const body = JSON.stringify(review);
    const target = (port: number): LoadTarget => ({ port, ca, servername: SERVERNAME, path: '/mutate', body });
    // The webhook must really restore: check the answer before measuring it.
    const probe = JSON.parse((await httpsRequest(target(webhookPort), 'POST', '/mutate', body, { 'content-type': 'application/json' })).text);
    if (probe.response?.patchType !== 'JSONPatch') throw new Error(`the webhook did not patch the pod: ${JSON.stringify(probe)}`);

    console.log(`AdmissionReview: ${Buffer.byteLength(body)} bytes (${review.request.object.spec!.containers.length} containers, 1 initContainer), HTTPS keep-alive, ${SATURATION.connections} connections`);
    console.log(`\nSaturation (closed loop, ${SATURATION.seconds} s after ${SATURATION.warmupSeconds} s warm-up, best of 2 interleaved rounds)`);
    type Measured = LoadResult & { cpuUsPerRequest: number };
    let bestBare: Measured | undefined;
    let bestHook: Measured | undefined;
    for (let round = 0; round < 2; round++) {
      const b = await withServerCpu(bare.pid!, () => closedLoop(target(barePort), SATURATION));
      const w = await withServerCpu(webhook.pid!, () => closedLoop(target(webhookPort), SATURATION));
      if (!bestBare || b.throughput > bestBare.throughput) bestBare = b;
      if (!bestHook || w.throughput > bestHook.throughput) bestHook = w;
    }
    console.log(`  bare https server  ${fmt(bestBare!)}`);
    console.log(`  cryo webhook       ${fmt(bestHook!)}`);
    const ratio = bestHook!.throughput / bestBare!.throughput;
    console.log(`  throughput ratio webhook/bare: ${ratio.toFixed(2)} (target >= 0.70) ${ratio >= 0.7 ? 'MET' : 'NOT MET'}`);
    const cpuRatio = bestBare!.cpuUsPerRequest / bestHook!.cpuUsPerRequest;
    console.log(`  server CPU per request, bare/webhook: ${cpuRatio.toFixed(2)} (the load generator shares the 2 cores)`);

    console.log(
      `\nFixed rate ${FIXED_RATE.rate} req/s (open loop, ${FIXED_RATE.seconds} s after ${FIXED_RATE.warmupSeconds} s warm-up, ` +
        `${FIXED_ROUNDS} interleaved rounds; latency counted from each request's scheduled start)`,
    );
    const bareRounds: LoadResult[] = [];
    const hookRounds: LoadResult[] = [];
    const decisionBefore = await admissionHistogram(target(webhookPort));
    for (let round = 0; round < FIXED_ROUNDS; round++) {
      bareRounds.push(await openLoop(target(barePort), FIXED_RATE));
      hookRounds.push(await openLoop(target(webhookPort), FIXED_RATE));
      console.log(`  round ${round + 1}: bare p50 ${bareRounds[round].p50Ms.toFixed(2)} p99 ${bareRounds[round].p99Ms.toFixed(2)} ms | webhook p50 ${hookRounds[round].p50Ms.toFixed(2)} p99 ${hookRounds[round].p99Ms.toFixed(2)} ms`);
    }
    const decision = histogramQuantile(subtractHistograms(await admissionHistogram(target(webhookPort)), decisionBefore), 0.99);
    const medianP99 = (rounds: LoadResult[]) => rounds.map((r) => r.p99Ms).sort((x, y) => x - y)[Math.floor(rounds.length / 2)];
    const hookP99 = medianP99(hookRounds);
    console.log(`  median p99: bare ${medianP99(bareRounds).toFixed(2)} ms, webhook ${hookP99.toFixed(2)} ms (target <= 5 ms) ${hookP99 <= 5 ? 'MET' : 'NOT MET'}`);
    console.log(`  the webhook's own decision time (its histogram), p99 <= ${(decision * 1000).toFixed(2)} ms`);

    console.log(`\nMemory: webhook RSS and V8 heap used (from its /metrics) during ${SOAK_SECONDS} s at ${FIXED_RATE.rate} req/s`);
    const heapMiB = async () => {
      const text = (await httpsRequest(target(webhookPort), 'GET', '/metrics')).text;
      return Number(/^cryo_nodejs_heap_size_used_bytes (\S+)/m.exec(text)?.[1] ?? NaN) / 2 ** 20;
    };
    const samples: { t: number; rss: number; heap: number }[] = [{ t: 0, rss: rssMiB(webhook.pid!), heap: await heapMiB() }];
    const pending: Promise<void>[] = [];
    const soak = await openLoop(target(webhookPort), {
      ...FIXED_RATE,
      warmupSeconds: 0,
      seconds: SOAK_SECONDS,
      onTick: (t) => {
        if (t % 5 !== 0) return;
        const rss = rssMiB(webhook.pid!);
        pending.push(heapMiB().then((heap) => void samples.push({ t, rss, heap })));
      },
    });
    await Promise.all(pending);
    samples.push({ t: SOAK_SECONDS, rss: rssMiB(webhook.pid!), heap: await heapMiB() });
    samples.sort((a, b) => a.t - b.t);
    console.log(`  RSS  ${samples.map((x) => `${x.t}s ${x.rss.toFixed(0)}`).join('  ')} (MiB)`);
    console.log(`  heap ${samples.map((x) => `${x.t}s ${x.heap.toFixed(0)}`).join('  ')} (MiB)`);
    const settled = samples.filter((x) => x.t >= 10);
    const growth = (key: 'rss' | 'heap') => (settled.length > 1 ? settled[settled.length - 1][key] - settled[0][key] : NaN);
    console.log(
      `  ${soak.requests} requests, ${soak.errors} errors; from 10 s to the end: RSS ${growth('rss') >= 0 ? '+' : ''}${growth('rss').toFixed(1)} MiB, ` +
        `heap ${growth('heap') >= 0 ? '+' : ''}${growth('heap').toFixed(1)} MiB; peak RSS ${Math.max(...samples.map((x) => x.rss)).toFixed(0)} MiB`,
    );
  } finally {
    await Promise.all(children.map(stopChild));
    await api.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
