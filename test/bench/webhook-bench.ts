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
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { FakeKubeApiServer } from '../src/fakes/kube-apiserver.ts';
import { loadAdmissionReview, loadCheckpoint } from '../src/fixtures/load-fixture.ts';
import { httpsRequest } from '../src/harness/https-request.ts';
import { waitFor } from '../src/harness/wait-for.ts';
import { closedLoop, openLoop, type LoadResult, type LoadTarget } from './load-generator.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const quick = process.env.BENCH_QUICK === '1';
const SATURATION = { connections: 16, warmupSeconds: quick ? 1 : 3, seconds: quick ? 3 : 10 };
const FIXED_RATE = { rate: 1000, connections: 16, warmupSeconds: quick ? 1 : 3, seconds: quick ? 5 : 15 };
const SOAK_SECONDS = quick ? 10 : 60;
const SERVERNAME = 'cryo-webhook.cryo-system.svc';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) / 1024;
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

const fmt = (r: LoadResult) =>
  `${r.throughput.toFixed(0).padStart(6)} req/s   p50 ${r.p50Ms.toFixed(2)} ms   p99 ${r.p99Ms.toFixed(2)} ms   max ${r.maxMs.toFixed(1)} ms   errors ${r.errors}`;

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
    const webhook = spawn(process.execPath, [path.join(ROOT, 'webhook/src/main.ts')], {
      env: { ...process.env, KUBECONFIG: kubeconfig, CRYO_PORT: String(webhookPort), POD_NAMESPACE: 'cryo-system', LOG_LEVEL: 'info' },
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
    let bestBare: LoadResult | undefined;
    let bestHook: LoadResult | undefined;
    for (let round = 0; round < 2; round++) {
      const b = await closedLoop(target(barePort), SATURATION);
      const w = await closedLoop(target(webhookPort), SATURATION);
      if (!bestBare || b.throughput > bestBare.throughput) bestBare = b;
      if (!bestHook || w.throughput > bestHook.throughput) bestHook = w;
    }
    console.log(`  bare https server  ${fmt(bestBare!)}`);
    console.log(`  cryo webhook       ${fmt(bestHook!)}`);
    const ratio = bestHook!.throughput / bestBare!.throughput;
    console.log(`  throughput ratio webhook/bare: ${ratio.toFixed(2)} (target >= 0.70) ${ratio >= 0.7 ? 'MET' : 'NOT MET'}`);

    console.log(`\nFixed rate ${FIXED_RATE.rate} req/s (open loop, ${FIXED_RATE.seconds} s after ${FIXED_RATE.warmupSeconds} s warm-up)`);
    const fixedBare = await openLoop(target(barePort), FIXED_RATE);
    const fixedHook = await openLoop(target(webhookPort), FIXED_RATE);
    console.log(`  bare https server  ${fmt(fixedBare)}`);
    console.log(`  cryo webhook       ${fmt(fixedHook)}`);
    console.log(`  webhook p99 ${fixedHook.p99Ms.toFixed(2)} ms (target <= 5 ms) ${fixedHook.p99Ms <= 5 ? 'MET' : 'NOT MET'}`);

    console.log(`\nMemory: webhook RSS during ${SOAK_SECONDS} s at ${FIXED_RATE.rate} req/s`);
    const samples: { t: number; rss: number }[] = [{ t: 0, rss: rssMiB(webhook.pid!) }];
    const soak = await openLoop(target(webhookPort), {
      ...FIXED_RATE,
      warmupSeconds: 0,
      seconds: SOAK_SECONDS,
      onTick: (t) => {
        if (t % 5 === 0) samples.push({ t, rss: rssMiB(webhook.pid!) });
      },
    });
    samples.push({ t: SOAK_SECONDS, rss: rssMiB(webhook.pid!) });
    console.log(`  ${samples.map((s) => `${s.t}s ${s.rss.toFixed(1)}`).join('  ')} (MiB)`);
    const settled = samples.filter((s) => s.t >= 10);
    const growth = settled.length > 1 ? settled[settled.length - 1].rss - settled[0].rss : NaN;
    console.log(`  ${soak.requests} requests, ${soak.errors} errors; RSS from 10 s to the end: ${growth >= 0 ? '+' : ''}${growth.toFixed(1)} MiB, peak ${Math.max(...samples.map((s) => s.rss)).toFixed(1)} MiB`);
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
