/**
 * The fast-start case on one machine: an app that needs WARM_UP_SECONDS (default 10) to warm up
 * is started cold in Podman, checkpointed once through the node agent's local mode, and restored
 * as several copies that answer warm right away. Prints cold start vs restore, and the ratio.
 *
 *   sudo npm run demo                         # needs root and the CRIU lab (scripts/lab/provision.sh)
 *   sudo npm run demo -- --copies 5 --warm-up-seconds 20
 *   sudo npm run demo -- --app jvm            # a JVM: OpenJDK 21 building its index (docs/jvm.md)
 *
 * With --app jvm the app is the Java hook client's WarmIndexService (its warm-up is building an
 * index of 400,000 entries, about 10 s here; --warm-up-seconds does not apply), run by the lab's
 * OpenJDK 21 with the flags of docs/jvm.md, and every answer is checked against the value computed
 * here.
 *
 * What runs: Podman + crun + CRIU 4.2 in the lab (docs/lab.md); test/demo/warm-app.ts with the hook
 * SDK in a Podman pod whose network is a lab pod's (the demo reaches it at the pod's address); a
 * HookServer of this process serves each pod's hook socket; localCheckpoint() runs the hooks,
 * `podman container checkpoint --leave-running --export` and stores the archive in a directory
 * store (and, when the lab registry starts, pushes a checkpoint image too); each copy is
 * `podman container restore --import <archive> --name copy-<i> --pod <its own pod>`.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { silentLogger } from '@cryo/common';
import { HookServer, type HookPod, readCheckpointArchive, localCheckpoint, type LocalCheckpointResult, DirectoryStore, RegistryStore } from '@cryo/node-agent';
import type { Lab, LabPodman, LabRegistry, MountSlot, PodmanPod } from '@cryo/test';
import { buildJavaClasses, LAB_JAVA, openLab, openLabPodman, podHttp, startLabRegistry, warmIndexCommand, warmIndexValue } from '@cryo/test';

interface Lookup {
  key: number;
  value: string;
  entries: number;
  instanceId: string;
  restoreCount: number;
}

interface Row {
  what: string;
  /** The podman command alone (run, restore, pull + restore). */
  podmanMs: number;
  /** From issuing the command to the first 200 from the warm cache. */
  warmMs: number;
  answer: Lookup;
}

const KEY = 4711;

const { values: flags } = parseArgs({
  options: {
    copies: { type: 'string', default: process.env.COPIES ?? '3' },
    'warm-up-seconds': { type: 'string', default: process.env.WARM_UP_SECONDS ?? '10' },
    app: { type: 'string', default: process.env.DEMO_APP ?? 'node' },
    'jvm-flags': { type: 'string', default: process.env.JVM_FLAGS },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (flags.help) {
  process.stdout.write('Usage: sudo npm run demo [-- --copies N (default 3, env COPIES)] [--warm-up-seconds S (default 10, env WARM_UP_SECONDS; node only)] [--app node|jvm (default node, env DEMO_APP)] [--jvm-flags "FLAGS" (default: docs/jvm.md\'s, env JVM_FLAGS; "" for the JVM\'s own defaults)]\n');
  process.exit(0);
}
const copies = Number(flags.copies);
const warmUpSeconds = Number(flags['warm-up-seconds']);
if (!Number.isInteger(copies) || copies < 1 || copies > 20) fail(`--copies must be a whole number from 1 to 20, got "${flags.copies}"`);
if (!(warmUpSeconds >= 0 && warmUpSeconds <= 600)) fail(`--warm-up-seconds must be from 0 to 600, got "${flags['warm-up-seconds']}"`);
const appKind = flags.app;
if (appKind !== 'node' && appKind !== 'jvm') fail(`--app must be node or jvm, got "${appKind}"`);
/** --jvm-flags, split on spaces; absent: JVM_FLAGS (docs/jvm.md). */
const jvmFlags = flags['jvm-flags']?.split(' ').filter((flag) => flag !== '');

function fail(message: string): never {
  process.stderr.write(`fast-start demo: ${message}\n`);
  process.exit(1);
}

const started = performance.now();
const log = (line: string) => process.stdout.write(`[${((performance.now() - started) / 1000).toFixed(1).padStart(5)} s] ${line}\n`);
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

/** The prerequisites, each with what to do when it is missing. */
async function checkPrerequisites(): Promise<{ lab: Lab; versions: { podman: string; crun: string; criu: string } }> {
  const nodeMajor = Number(process.versions.node.split('.')[0]);
  if (nodeMajor < 24) fail(`this runs on Node ${process.versions.node}; run it through npm (npm run demo), which uses the repository's Node 24`);
  if (process.platform !== 'linux') fail('the demo needs Linux (Podman, crun and CRIU)');
  if (process.getuid?.() !== 0) fail('the demo needs root (Podman, CRIU and network namespaces): run `sudo npm run demo`');
  const opened = await openLab();
  if ('skip' in opened) fail(`no usable CRIU lab: ${opened.skip.replace(/^the CRIU lab needs Linux and root: /, '')}`);
  const lab = opened;
  const version = async (argv: string[]) => {
    const result = await lab.exec(argv).catch((error: Error) => ({ code: -1, stdout: '', stderr: error.message }));
    return result.code === 0 ? result.stdout.split('\n')[0].trim() : '';
  };
  const versions = { podman: await version(['podman', '--version']), crun: await version(['crun', '--version']), criu: await version(['criu', '--version']) };
  const missing = Object.entries(versions).filter(([, v]) => v === '').map(([tool]) => tool);
  if (missing.length > 0) fail(`the lab has no ${missing.join(', ')}: run \`sudo bash scripts/lab/provision.sh\` again`);
  const [criuMajor, criuMinor] = (/(\d+)\.(\d+)/.exec(versions.criu) ?? ['', '0', '0']).slice(1).map(Number);
  if (criuMajor < 4 || (criuMajor === 4 && criuMinor < 2)) fail(`CRIU ${versions.criu} is too old: 4.2 or newer is needed (run \`sudo bash scripts/lab/provision.sh\`)`);
  const [podmanMajor] = (/(\d+)\.\d+/.exec(versions.podman) ?? ['', '0']).slice(1).map(Number);
  if (podmanMajor < 4) fail(`${versions.podman} is too old: Podman 4 or newer restores into pods`);
  return { lab, versions };
}

/** Polls GET /lookup until the app answers from its warm cache. */
async function firstWarmAnswer(pod: PodmanPod, timeoutMs: number): Promise<Lookup> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const answer = await podHttp(pod.ip, 8080, 'GET', `/lookup?key=${KEY}`, 2_000).catch(() => undefined);
    if (answer?.status === 200) return answer.json<Lookup>();
    if (performance.now() > deadline) throw new Error(`no warm answer from ${pod.name} (${pod.ip}:8080) within ${timeoutMs / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function main(): Promise<void> {
  const { lab, versions } = await checkPrerequisites();
  log(`lab ready: ${versions.podman}, ${versions.crun}, CRIU ${versions.criu.replace(/^Version:\s*/, '')}`);

  const dir = await mkdtemp(join(tmpdir(), 'cryo-demo-'));
  const hooksDir = join(dir, 'hooks');
  const server = new HookServer({ hostHooksDir: hooksDir, logger: silentLogger() });
  let podman: LabPodman | undefined;
  let registry: LabRegistry | undefined;
  const cleanup = async () => {
    await podman?.close().catch((error: unknown) => log(`cleanup: ${String(error)}`));
    await registry?.stop().catch(() => {});
    await server.close().catch(() => {});
    await lab.close().catch((error: unknown) => log(`cleanup: ${String(error)}`));
    await rm(dir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => {
    log('interrupted: cleaning up');
    void cleanup().finally(() => process.exit(130));
  });

  try {
    podman = await openLabPodman(lab);
    registry = await startLabRegistry(lab).catch((error: unknown) => {
      log(`no registry (${(error as Error).message.split('\n')[0]}): the directory store only`);
      return undefined;
    });
    // Each pod's /run/cryo is this slot, bound to that pod's own hook socket directory before
    // its container starts or is restored (Podman restores a container's mounts as recorded).
    const slot: MountSlot = await podman.slot('demo-hooks');
    const pods: PodmanPod[] = [];
    const newPod = async (name: string): Promise<{ pod: PodmanPod; hook: HookPod }> => {
      const pod = await podman!.createPod(name);
      pods.push(pod);
      const hook: HookPod = { uid: randomUUID(), name, namespace: 'demo' };
      await server.addPod(hook);
      await slot.bind(join(hooksDir, hook.uid));
      return { pod, hook };
    };
    const rows: Row[] = [];
    // The app: the Node one (a timer stands for the warm-up) or a real JVM building its index.
    const app: { argv: string[]; image: string | undefined; env: Record<string, string>; what: string } =
      appKind === 'jvm'
        ? { argv: warmIndexCommand(LAB_JAVA, await buildJavaClasses(lab.settings.repoRoot), jvmFlags), image: await podman.jvmImage(), env: {}, what: 'WarmIndexService (OpenJDK 21, building its index)' }
        : { argv: [podman.nodeBinary, join(lab.settings.repoRoot, 'test/demo/warm-app.ts')], image: undefined, env: { WARM_UP_SECONDS: String(warmUpSeconds) }, what: `warm-app (warm-up ${warmUpSeconds} s)` };

    // 1. Cold start.
    const cold = await newPod('demo-cold');
    log(`cold start: podman run ${app.what} in pod ${cold.pod.name} (${cold.pod.ip})`);
    let t0 = performance.now();
    await podman.run({
      name: 'warm-app',
      pod: cold.pod,
      argv: app.argv,
      ...(app.image === undefined ? {} : { image: app.image }),
      env: { ...app.env, PORT: '8080', CRYO_HOOK_SOCKET: '/run/cryo/agent.sock', CRYO_POD_UID: cold.hook.uid, CRYO_CONTAINER_NAME: 'app' },
      mounts: [{ source: slot.path, destination: '/run/cryo' }],
    });
    const coldRun = performance.now() - t0;
    const coldAnswer = await firstWarmAnswer(cold.pod, warmUpSeconds * 1000 + 120_000);
    rows.push({ what: 'cold start (podman run)', podmanMs: coldRun, warmMs: performance.now() - t0, answer: coldAnswer });
    log(`cold: first warm answer after ${seconds(rows[0].warmMs)} (${coldAnswer.entries} cache entries)`);

    // 2. Checkpoint through local mode: hooks prepare → podman checkpoint --export → hooks finish → store.
    const checkpoint = (store: DirectoryStore | RegistryStore, checkpointName: string): Promise<LocalCheckpointResult> =>
      localCheckpoint({
        container: 'warm-app',
        store,
        readArchive: readCheckpointArchive,
        podmanArgv: podman!.podmanArgv,
        podmanPath: podman!.podmanPath,
        checkpointName,
        namespace: 'demo',
        hooks: { coordinator: server, podUid: cold.hook.uid, containerName: 'app', reason: 'fast start' },
        exportDir: join(dir, 'exports'),
      });
    const inDirectory = await checkpoint(new DirectoryStore({ root: join(dir, 'store'), logger: silentLogger() }), 'warm');
    log(`checkpoint: ${seconds(inDirectory.checkpointDurationMs)} (podman), ${(inDirectory.sizeBytes / 2 ** 20).toFixed(1)} MiB stored in the directory store in ${seconds(inDirectory.durationMs)}: ${inDirectory.restoreReference}`);
    let inRegistry: LocalCheckpointResult | undefined;
    if (registry !== undefined) {
      inRegistry = await checkpoint(new RegistryStore({ repository: `${registry.host}/cryo/demo`, insecure: true }), 'warm-image');
      log(`checkpoint: ${seconds(inRegistry.checkpointDurationMs)} (podman), pushed in ${seconds(inRegistry.durationMs)}: ${inRegistry.restoreReference}`);
    }

    // 3. Copies, each in its own pod with its own hook socket; the original keeps running.
    for (let i = 1; i <= copies; i++) {
      const { pod } = await newPod(`demo-copy-${i}`);
      t0 = performance.now();
      const { durationMs } = await podman.restore({ name: `copy-${i}`, pod, from: { archive: inDirectory.restoreReference } });
      const answer = await firstWarmAnswer(pod, 60_000);
      rows.push({ what: `copy-${i} (restore --import)`, podmanMs: durationMs, warmMs: performance.now() - t0, answer });
      log(`copy-${i}: first warm answer ${seconds(rows.at(-1)!.warmMs)} after the restore began (podman restore ${seconds(durationMs)})`);
    }
    if (inRegistry !== undefined) {
      const { pod } = await newPod('demo-copy-image');
      t0 = performance.now();
      const pullMs = await podman.pull(inRegistry.restoreReference);
      const { durationMs } = await podman.restore({ name: 'copy-image', pod, from: { image: inRegistry.restoreReference } });
      const answer = await firstWarmAnswer(pod, 60_000);
      rows.push({ what: 'copy-image (pull + restore)', podmanMs: pullMs + durationMs, warmMs: performance.now() - t0, answer });
      log(`copy-image: pulled in ${seconds(pullMs)}, first warm answer ${seconds(rows.at(-1)!.warmMs)} after the pull began`);
    }

    // 4. The table.
    const restored = rows.slice(1);
    // The JVM's answers are checked against the value computed here, not only against each other.
    const rightValue = appKind === 'jvm' ? warmIndexValue(KEY) : coldAnswer.value;
    const sameCache = rows.every((r) => r.answer.value === rightValue && r.answer.entries === coldAnswer.entries);
    const distinctIds = new Set(rows.map((r) => r.answer.instanceId)).size === rows.length;
    const warmTimes = restored.filter((r) => r.what.includes('--import')).map((r) => r.warmMs).sort((a, b) => a - b);
    const median = warmTimes[Math.floor(warmTimes.length / 2)];
    const width = Math.max(...rows.map((r) => r.what.length)) + 2;
    const line = (a: string, b: string, c: string, d: string, e: string) => `  ${a.padEnd(width)}${b.padStart(12)}${c.padStart(20)}${d.padStart(16)}${e.padStart(12)}`;
    process.stdout.write('\n');
    process.stdout.write(`${line('', 'podman', 'first warm answer', 'restore count', 'instance')}\n`);
    for (const r of rows) process.stdout.write(`${line(r.what, seconds(r.podmanMs), seconds(r.warmMs), String(r.answer.restoreCount), r.answer.instanceId.slice(0, 8))}\n`);
    process.stdout.write('\n');
    process.stdout.write(`  cold start ${seconds(rows[0].warmMs)} vs restored copy ${seconds(median)} (median of ${warmTimes.length}): ${(rows[0].warmMs / median).toFixed(1)}x faster to a warm answer\n`);
    process.stdout.write(`  every copy answered key ${KEY} from the same warm cache (${coldAnswer.entries} entries): ${sameCache ? 'yes' : 'NO'}; each copy has its own instance id (renewed by its post-restore hook): ${distinctIds ? 'yes' : 'NO'}\n`);
    process.stdout.write(`  checkpoint: ${seconds(inDirectory.checkpointDurationMs)} with the app's hooks, archive ${(inDirectory.sizeBytes / 2 ** 20).toFixed(1)} MiB\n\n`);
    if (!sameCache || !distinctIds) process.exitCode = 1;
  } finally {
    await cleanup();
  }
  log('done (everything the demo made is removed)');
}

main().catch((error: unknown) => {
  process.stderr.write(`fast-start demo failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
