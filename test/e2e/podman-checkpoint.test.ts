/**
 * The node agent's local mode against real Podman + crun + CRIU 4.2 in the lab: a Node app that
 * counts in memory and uses the hook SDK runs in a Podman pod, talking to a HookServer of this
 * process through its bind-mounted socket directory. localCheckpoint() runs its hooks, checkpoints
 * it with `podman container checkpoint --leave-running --export` and stores the archive (a) in a
 * registry (Debian's docker-registry in the lab) as a checkpoint image and (b) in a directory.
 * Then the container is removed and restored (a) with `podman pull <image@digest>` +
 * `podman container restore <image>`, (b) with `podman container restore --import <archive>`:
 * both carry on from the checkpointed memory.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { silentLogger } from '@cryo/common';
import { HookServer, type HookPod, readCheckpointArchive, localCheckpoint, type LocalCheckpointResult, DirectoryStore, RegistryStore } from '@cryo/node-agent';
import type { Lab, LabPodman, LabRegistry, MountSlot, PodmanContainer, PodmanPod } from '@cryo/test';
import { openLab, openLabPodman, podHttp, startLabRegistry, waitFor } from '@cryo/test';

interface AppState {
  warm: boolean;
  ticks: number;
  value: number;
  instanceId: string;
  lastOutcome: string | null;
  restoreCount: number;
  events: string[];
}

const opened = await openLab();
const skip = 'skip' in opened ? opened.skip : undefined;

describe.skipIf(skip !== undefined)(`local mode: Podman checkpoints into the stores${skip === undefined ? '' : ` (skipped: ${skip})`}`, () => {
  const lab = opened as Lab;
  const app = join(lab.settings.repoRoot, 'test/demo/warm-app.ts');
  let podman: LabPodman;
  let registry: LabRegistry;
  let server: HookServer;
  let dir: string;
  let hooksDir: string;
  let slot: MountSlot;
  let podA: PodmanPod;
  let podB: PodmanPod;
  const hookPods = new Map<string, HookPod>();
  const containers: PodmanContainer[] = [];
  let original: PodmanContainer;
  let viaRegistry: LocalCheckpointResult;
  let viaDirectory: LocalCheckpointResult;
  let beforeRegistry: AppState;
  let beforeDirectory: AppState;

  const state = async (pod: PodmanPod): Promise<AppState> => (await podHttp(pod.ip, 8080, 'GET', '/state')).json<AppState>();
  const serving = (pod: PodmanPod, what: string, probe: (s: AppState) => boolean = () => true) =>
    waitFor(() => state(pod).then((s) => (probe(s) ? s : undefined), () => undefined), { timeoutMs: 20_000, intervalMs: 50, what });
  const showLogsOnFailure = () =>
    onTestFailed(async () => {
      for (const c of containers) console.log(`--- ${c.name} logs:\n${await c.logs()}`);
    });

  async function hookPod(name: string): Promise<HookPod> {
    const pod: HookPod = { uid: randomUUID(), name, namespace: 'podman' };
    await server.addPod(pod);
    hookPods.set(name, pod);
    return pod;
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cryo-podman-e2e-'));
    hooksDir = join(dir, 'hooks');
    server = new HookServer({ hostHooksDir: hooksDir, logger: silentLogger() });
    podman = await openLabPodman(lab);
    registry = await startLabRegistry(lab);
    podA = await podman.createPod('pm-e2e-a');
    podB = await podman.createPod('pm-e2e-b');
    // The container's /run/cryo: a slot bound to pod A's socket directory now, to pod B's before
    // the copy for pod B is restored (Podman cannot give a restored container new mount sources).
    slot = await podman.slot('pm-e2e-hooks');
  }, 120_000);

  afterAll(async () => {
    await podman?.close();
    await registry?.stop();
    await server?.close();
    await lab.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('checkpoints a counting Node container through local mode into the registry and the directory store, its hooks around each dump', async () => {
    showLogsOnFailure();
    const a = await hookPod('pm-e2e-a');
    await slot.bind(join(hooksDir, a.uid));
    original = await podman.run({
      name: 'pm-e2e-app',
      pod: podA,
      argv: [podman.nodeBinary, app],
      env: { WARM_UP_SECONDS: '1', PORT: '8080', CRYO_HOOK_SOCKET: '/run/cryo/agent.sock', CRYO_POD_UID: a.uid, CRYO_CONTAINER_NAME: 'app' },
      mounts: [{ source: slot.path, destination: '/run/cryo' }],
    });
    containers.push(original);
    await serving(podA, 'the app to warm up and count', (s) => s.warm && s.ticks >= 20);
    await waitFor(() => server.sessions(a.uid).length === 1, { what: "the app's hook session", timeoutMs: 10_000 });
    await podHttp(podA.ip, 8080, 'POST', '/value?v=4242');

    const common = { container: 'pm-e2e-app', readArchive: readCheckpointArchive, podmanArgv: podman.podmanArgv, podmanPath: podman.podmanPath, hooks: { coordinator: server, podUid: a.uid, containerName: 'app' } };
    beforeRegistry = await state(podA);
    const registryStore = new RegistryStore({ repository: `${registry.host}/cryo/podman-e2e`, insecure: true });
    viaRegistry = await localCheckpoint({ ...common, store: registryStore, checkpointName: 'counter-registry', exportDir: join(dir, 'exports') });
    expect(viaRegistry).toMatchObject({ referenceType: 'image', checkpointName: 'counter-registry', prepared: { status: 'ready', sessions: [{ container: 'app' }] } });
    expect(viaRegistry.restoreReference).toMatch(new RegExp(`^${registry.host.replace(/\./g, '\\.')}/cryo/podman-e2e@sha256:[0-9a-f]{64}$`));
    expect(viaRegistry.archive).toMatchObject({ engine: 'podman', runtime: 'crun', containerName: 'pm-e2e-app', baseImage: podman.baseImage });
    console.log(`registry: checkpoint ${viaRegistry.checkpointDurationMs.toFixed(0)} ms, push ${viaRegistry.durationMs.toFixed(0)} ms, ${(viaRegistry.sizeBytes / 2 ** 20).toFixed(1)} MiB`);

    // The original resumed (its hooks ran after the dump) and keeps counting.
    const resumed = await serving(podA, 'the original to resume', (s) => s.lastOutcome === 'resumed');
    expect(resumed.events).toEqual(['before podman/counter-registry', 'after podman/counter-registry resumed 0']);
    await podHttp(podA.ip, 8080, 'POST', '/value?v=4343');

    beforeDirectory = await state(podA);
    const directoryStore = new DirectoryStore({ root: join(dir, 'store'), logger: silentLogger() });
    viaDirectory = await localCheckpoint({ ...common, store: directoryStore, checkpointName: 'counter-directory', exportDir: join(dir, 'exports') });
    expect(viaDirectory).toMatchObject({ referenceType: 'archive', prepared: { status: 'ready' } });
    expect(viaDirectory.restoreReference.startsWith(join(dir, 'store'))).toBe(true);
    expect(existsSync(viaDirectory.restoreReference)).toBe(true);
    console.log(`directory: checkpoint ${viaDirectory.checkpointDurationMs.toFixed(0)} ms, store ${viaDirectory.durationMs.toFixed(0)} ms, ${(viaDirectory.sizeBytes / 2 ** 20).toFixed(1)} MiB`);
    // The exports were removed once stored.
    expect(await readdir(join(dir, 'exports'))).toEqual([]);
    expect(await serving(podA, 'the original to resume again', (s) => s.events.length === 4)).toMatchObject({ value: 4343, lastOutcome: 'resumed' });
  }, 60_000);

  it('pushed an image whose manifest carries the checkpoint annotations Podman, CRI-O and containerd look for', async () => {
    expect(viaRegistry, 'the first test stored it').toBeDefined();
    const raw = await podman.exec(['skopeo', 'inspect', '--raw', '--tls-verify=false', `docker://${viaRegistry.restoreReference}`]);
    expect(raw.code, raw.stderr).toBe(0);
    const manifest = JSON.parse(raw.stdout) as { layers: { size: number; digest: string }[]; annotations: Record<string, string> };
    expect(manifest.annotations).toMatchObject({
      'io.podman.annotations.checkpoint.runtime.name': 'crun',
      'io.kubernetes.cri-o.annotations.checkpoint.name': 'pm-e2e-app',
      'org.criu.checkpoint.container.name': 'pm-e2e-app',
    });
    expect(manifest.layers).toEqual([expect.objectContaining({ size: viaRegistry.sizeBytes, digest: viaRegistry.digest })]);
  });

  it('(a) after the container is removed, `podman pull` by digest and `podman container restore <image>` carry on from the checkpoint', async () => {
    showLogsOnFailure();
    expect(viaRegistry, 'the first test stored it').toBeDefined();
    await original.remove();
    await podman.pull(viaRegistry.restoreReference);
    const restoreStarted = performance.now();
    const { container, durationMs } = await podman.restore({ name: 'pm-e2e-from-image', pod: podA, from: { image: viaRegistry.restoreReference } });
    containers.push(container);
    console.log(`restore from the pulled image: ${durationMs.toFixed(0)} ms`);
    // The copy was dumped while waiting for the outcome; in pod A's socket directory it hears "resumed".
    const copy = await serving(podA, 'the copy from the image', (s) => s.lastOutcome === 'resumed');
    expect(copy.value).toBe(4242);
    // Counting on from where the checkpoint was (a tick each 100 ms), not from 0.
    expect(copy.ticks).toBeGreaterThanOrEqual(beforeRegistry.ticks);
    expect(copy.ticks).toBeLessThanOrEqual(beforeRegistry.ticks + (performance.now() - restoreStarted) / 100 + 5);
    expect(copy.instanceId).toBe(beforeRegistry.instanceId);
    expect(copy.events).toEqual(['before podman/counter-registry', 'after podman/counter-registry resumed 0']);
  }, 60_000);

  it('(b) `podman container restore --import <archive>` into another pod carries on from the checkpoint and is told it is a restored copy', async () => {
    showLogsOnFailure();
    expect(viaDirectory, 'the first test stored it').toBeDefined();
    const b = await hookPod('pm-e2e-b');
    await slot.bind(join(hooksDir, b.uid));
    const { container, durationMs } = await podman.restore({ name: 'pm-e2e-from-archive', pod: podB, from: { archive: viaDirectory.restoreReference } });
    containers.push(container);
    console.log(`restore --import from the directory store: ${durationMs.toFixed(0)} ms`);
    const copy = await serving(podB, 'the copy from the archive', (s) => s.lastOutcome === 'restored');
    expect(copy.value).toBe(4343);
    expect(copy.ticks).toBeGreaterThanOrEqual(beforeDirectory.ticks);
    expect(copy).toMatchObject({ restoreCount: 1 });
    expect(copy.instanceId).not.toBe(beforeDirectory.instanceId);
    expect(copy.events.slice(-2)).toEqual(['before podman/counter-directory', 'after podman/counter-directory restored 1']);
    expect(server.sessions(b.uid)).toMatchObject([{ kind: 'restored', container: 'app' }]);
    // The copy from the image (pod A) is independent and still serves its own state.
    expect(await state(podA)).toMatchObject({ value: 4242 });
  }, 60_000);
});
