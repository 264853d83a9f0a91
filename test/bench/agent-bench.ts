/**
 * npm run bench:agent — what storing a checkpoint archive costs the node agent (root + the CRIU
 * lab, for its docker-registry and buildah).
 *
 * Archives of 64 MiB, 512 MiB and 2 GiB of incompressible pages in CRI-O's layout (made once
 * under $CRYO_BENCH_ARCHIVES, default /tmp/cryo-bench-archives, and reused), each stored on the
 * same registry (docker-registry in the lab, one per size, storage on the same disk) by:
 * - `curl -T`: one monolithic blob upload (POST, then PUT with the whole archive as body), the
 *   registry's own limit; target: RegistryStore's throughput ≥ 0.85 of it;
 * - RegistryStore as the agent runs it (the layer in one PATCH; Node as the agent's image runs
 *   it) in a child process, whose peak RSS (VmHWM from /proc/<pid>/status) is read after the
 *   push; targets: ≤ 150 MiB at 2 GiB, flat with size; and with 1 GiB and 64 MiB chunks, to
 *   show what the registry's per-PATCH fsync adds;
 * - the buildah route (`from scratch`, `add`, `config --annotation`, `commit`, `push`, which
 *   gzips the layer); target: RegistryStore ≥ 4× faster;
 * - the directory store: a slot (directoryStoreRoute) its own helper fills in.
 * The file system is synced before each timed run, so no run pays for the previous one's
 * writeback; archives are in the page cache for all of them alike.
 * BENCH_QUICK=1: 64 MiB only. BENCH_BUILDAH_MAX_MIB (default 2048): larger sizes skip buildah.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { openLab, startLabRegistry, type Lab, type LabRegistry } from '@cryo/test';
import { sha256OfFile, syntheticCrioArchive } from '../storage/registry-test-archives.ts';
import { NODE_AGENT_ENV, NODE_AGENT_NODE_FLAGS } from '@cryo/node-agent';
import { pushInChild } from './push-in-child.ts';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const quick = process.env.BENCH_QUICK === '1';
const ARCHIVES = process.env.CRYO_BENCH_ARCHIVES ?? '/tmp/cryo-bench-archives';
const BUILDAH_MAX_MIB = Number(process.env.BENCH_BUILDAH_MAX_MIB ?? 2048);
const SIZES_MIB = quick ? [64] : [64, 512, 2048];
const ROUNDS: Record<number, number> = { 64: 3, 512: 2, 2048: 2 };

interface RouteContext {
  lab: Lab;
  registry: LabRegistry;
  archive: string;
  digest: string;
  sizeBytes: number;
  /** A repository name no other run used (so no blob is already there). */
  repository: string;
}

interface RouteResult {
  seconds: number;
  peakRssMiB?: number;
  detail?: string;
}

interface Route {
  name: string;
  run(ctx: RouteContext, round: number): Promise<RouteResult | undefined>;
}

async function curlPut(ctx: RouteContext): Promise<RouteResult> {
  const started = performance.now();
  const post = await fetch(`${ctx.registry.url}/v2/${ctx.repository}/blobs/uploads/`, { method: 'POST' });
  await post.body?.cancel();
  const location = new URL(post.headers.get('location') ?? '', ctx.registry.url);
  location.searchParams.set('digest', ctx.digest);
  // -H Expect: no 100-continue round trip; the body is streamed from the file.
  const { stdout } = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'PUT', '-H', 'Expect:', '-H', 'Content-Type: application/octet-stream', '-T', ctx.archive, location.href], { maxBuffer: 1024 * 1024 });
  const seconds = (performance.now() - started) / 1000;
  if (stdout.trim() !== '201') throw new Error(`curl PUT answered ${stdout}`);
  return { seconds };
}

const registryStore = (chunkSizeBytes?: number) => async (ctx: RouteContext): Promise<RouteResult> => {
  // Uncompressed: the same bytes as curl's (layer compression has its own bench, compression-bench.ts).
  const pushed = await pushInChild({ repository: `${ctx.registry.host}/${ctx.repository}`, archive: ctx.archive, chunkSizeBytes, layerCompression: 'none' });
  if (pushed.result.error !== undefined) throw new Error(pushed.result.error);
  if (pushed.result.digest !== ctx.digest) throw new Error(`RegistryStore stored ${pushed.result.digest}, the archive is ${ctx.digest}`);
  return { seconds: (pushed.result.durationMs ?? NaN) / 1000, peakRssMiB: pushed.peakRssMiB };
};

async function buildah(ctx: RouteContext): Promise<RouteResult | undefined> {
  if (ctx.sizeBytes > BUILDAH_MAX_MIB * MiB * 1.01) return undefined;
  const dir = await mkdtemp(join(tmpdir(), 'cryo-bench-buildah-'));
  const storage = ['--root', ctx.lab.hostPath(join(dir, 'root')), '--runroot', ctx.lab.hostPath(join(dir, 'run')), '--storage-driver', 'overlay'];
  const step = async (args: string[]) => {
    const started = performance.now();
    const result = await ctx.lab.exec(['buildah', ...storage, ...args], { timeoutMs: 600_000 });
    if (result.code !== 0) throw new Error(`buildah ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
    return { out: result.stdout.trim(), seconds: (performance.now() - started) / 1000 };
  };
  try {
    const times: string[] = [];
    const timed = async (label: string, args: string[]) => {
      const r = await step(args);
      times.push(`${label} ${r.seconds.toFixed(1)}`);
      return r.out;
    };
    const started = performance.now();
    const container = await timed('from', ['from', 'scratch']);
    await timed('add', ['add', container, ctx.lab.hostPath(ctx.archive), '/']);
    await timed('config', ['config', '--annotation', 'io.kubernetes.cri-o.annotations.checkpoint.name=app', '--annotation', 'io.podman.annotations.checkpoint.runtime.name=runc', container]);
    await timed('commit', ['commit', '-q', container, `localhost/cryo-bench:${ctx.sizeBytes}`]);
    await timed('push', ['push', '-q', '--tls-verify=false', `localhost/cryo-bench:${ctx.sizeBytes}`, `docker://${ctx.registry.host}/${ctx.repository}:1`]);
    return { seconds: (performance.now() - started) / 1000, detail: times.join(', ') };
  } finally {
    await ctx.lab.exec(['sh', '-c', 'buildah "$@" rm -a >/dev/null 2>&1; buildah "$@" rmi -a -f >/dev/null 2>&1; true', 'sh', ...storage], { timeoutMs: 120_000 });
    await ctx.lab.exec(['rm', '-rf', ctx.lab.hostPath(dir)], { timeoutMs: 120_000 });
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The directory store on the same archive and disk: its own helper fills this in (store the
 * archive with the DirectoryStore into a directory under /tmp and return the seconds). Returns
 * undefined while it is not there.
 */
// eslint-disable-next-line @typescript-eslint/require-await
async function directoryStoreRoute(_ctx: RouteContext, _round: number): Promise<RouteResult | undefined> {
  return undefined;
}

const ROUTES: Route[] = [
  { name: 'curl -T, one monolithic PUT', run: curlPut },
  { name: 'RegistryStore (default: one PATCH)', run: registryStore() },
  { name: 'RegistryStore, 1 GiB chunks', run: registryStore(1024 * MiB) },
  { name: 'RegistryStore, 64 MiB chunks', run: registryStore(64 * MiB) },
  { name: 'buildah from/add/config/commit/push', run: buildah },
  { name: 'directory store', run: directoryStoreRoute },
];

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length % 2 === 1 ? sorted[(sorted.length - 1) / 2] : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
};
const rate = (bytes: number, seconds: number) => `${(bytes / MiB / seconds).toFixed(0)} MiB/s`;

async function benchSize(lab: Lab, sizeMiB: number, peaks: Map<number, number>): Promise<void> {
  const archive = await syntheticCrioArchive(join(ARCHIVES, `crio-${sizeMiB}mib.tar`), sizeMiB * MiB);
  const sizeBytes = (await stat(archive)).size;
  await sha256OfFile(archive); // into the page cache, like every route finds it
  const hashStarted = performance.now();
  const digest = await sha256OfFile(archive);
  const hashSeconds = (performance.now() - hashStarted) / 1000;
  const registry = await startLabRegistry(lab);
  const results = new Map<string, RouteResult[]>();
  try {
    const rounds = ROUNDS[sizeMiB] ?? 1;
    for (let round = 0; round < rounds; round++) {
      // Rotate the order, so that no route always runs right after another.
      const order = ROUTES.map((_, i) => ROUTES[(i + round) % ROUTES.length]);
      for (const route of order) {
        // buildah at the larger sizes: once is enough to see the gap (and takes the longest).
        if (route.run === buildah && round > 0 && sizeMiB >= 512) continue;
        await run('sync');
        const repository = `bench/r${round}-${ROUTES.indexOf(route)}-${sizeMiB}`;
        const result = await route.run({ lab, registry, archive, digest, sizeBytes, repository }, round);
        if (result === undefined) continue;
        results.set(route.name, [...(results.get(route.name) ?? []), result]);
      }
    }
  } finally {
    await registry.stop();
  }

  const seconds = (name: string) => {
    const r = results.get(name);
    return r === undefined ? undefined : median(r.map((x) => x.seconds));
  };
  const curl = seconds(ROUTES[0].name);
  const store = seconds(ROUTES[1].name);
  const built = seconds(ROUTES.find((r) => r.run === buildah)!.name);
  console.log(`\n## ${sizeMiB} MiB archive (${sizeBytes.toLocaleString('en')} bytes)`);
  for (const route of ROUTES) {
    const r = results.get(route.name);
    if (r === undefined) {
      const why = route.run === buildah ? `skipped above ${BUILDAH_MAX_MIB} MiB (BENCH_BUILDAH_MAX_MIB)` : 'not measured here (slot: directoryStoreRoute)';
      console.log(`  ${route.name.padEnd(40)} ${why}`);
      continue;
    }
    const s = median(r.map((x) => x.seconds));
    const all = r.map((x) => x.seconds.toFixed(2)).join(', ');
    const extra = [r.some((x) => x.peakRssMiB !== undefined) ? `peak RSS ${r.map((x) => x.peakRssMiB!.toFixed(0)).join(', ')} MiB` : '', r[0].detail ? `(${r[0].detail} s)` : ''].filter(Boolean).join('  ');
    console.log(`  ${route.name.padEnd(40)} ${s.toFixed(2).padStart(6)} s  ${rate(sizeBytes, s).padStart(10)}   [${all}]  ${extra}`);
  }
  if (curl !== undefined && store !== undefined) {
    const ratio = curl / store;
    console.log(`  RegistryStore throughput / curl's: ${ratio.toFixed(2)} (target ≥ 0.85: ${ratio >= 0.85 ? 'met' : 'NOT met'})`);
    // curl needs the digest before it starts (computed here untimed); the store computes it while it sends.
    console.log(`  the same with the digest curl needs computed first (Node sha256 of the file, ${hashSeconds.toFixed(2)} s): ${((curl + hashSeconds) / store).toFixed(2)}`);
  }
  if (built !== undefined && store !== undefined) {
    const speedup = built / store;
    console.log(`  RegistryStore vs the buildah route: ${speedup.toFixed(1)}× faster (target ≥ 4×: ${speedup >= 4 ? 'met' : 'NOT met'})`);
  }
  const peak = Math.max(...(results.get(ROUTES[1].name) ?? []).map((x) => x.peakRssMiB ?? 0));
  peaks.set(sizeMiB, peak);
}

console.log(`# agent bench: checkpoint archive → registry${quick ? ' (BENCH_QUICK: 64 MiB only)' : ''}`);
const lab = await openLab();
if ('skip' in lab) {
  console.log(`skipped: ${lab.skip}`);
  process.exit(0);
}
const peaks = new Map<number, number>();
const baselineRegistry = await startLabRegistry(lab);
const tiny = await syntheticCrioArchive(join(ARCHIVES, 'crio-1mib.tar'), MiB);
const idle = await pushInChild({ repository: `${baselineRegistry.host}/bench/idle`, archive: tiny, idle: true });
const idleNodeDefaults = await pushInChild({ repository: `${baselineRegistry.host}/bench/idle`, archive: tiny, idle: true, nodeDefaults: true });
await baselineRegistry.stop();
for (const size of SIZES_MIB) await benchSize(lab, size, peaks);

console.log('\n## peak RSS of the pushing process (VmHWM)');
console.log(`  loaded, nothing pushed: ${idle.peakRssMiB.toFixed(1)} MiB as the agent's image runs Node (${NODE_AGENT_NODE_FLAGS.join(' ')} ${Object.entries(NODE_AGENT_ENV).map(([k, v]) => `${k}=${v}`).join(' ')}); ${idleNodeDefaults.peakRssMiB.toFixed(1)} MiB with Node's defaults`);
console.log("  (most of it is loading @kubernetes/client-node, whose KubeConfig pulls in every generated API and model)");
for (const [size, peak] of peaks) console.log(`  ${String(size).padStart(5)} MiB archive: ${peak.toFixed(1)} MiB  (+${(peak - idle.peakRssMiB).toFixed(1)} MiB over idle)`);
const largest = Math.max(...peaks.keys());
const spread = Math.max(...peaks.values()) - Math.min(...peaks.values());
console.log(`  flat with size: spread ${spread.toFixed(1)} MiB across sizes (${spread <= 8 ? 'flat' : 'NOT flat'}); at ${largest} MiB: ${peaks.get(largest)!.toFixed(0)} MiB (target ≤ 150 MiB: ${peaks.get(largest)! <= 150 ? 'met' : 'NOT met'})`);
await lab.close();
