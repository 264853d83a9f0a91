/**
 * A real JVM checkpointed and restored as copies in the lab (Podman + crun + CRIU 4.2, OpenJDK 21
 * from the lab's root): the Java hook client's WarmIndexService builds its index for many seconds,
 * holds a connection to an upstream outside its container and serves HTTP. The node agent's local
 * mode runs its hooks (listener and upstream closed, heap collected), dumps it with
 * `podman container checkpoint --export` and stores the archive; two copies restored from it, each
 * in a pod of its own, answer from the index at once — no second warm-up — with the right value,
 * each told it is a restored copy, with an identity of its own and its own upstream connection.
 * How long each took is bench and demo matter (npm run demo -- --app jvm), not asserted here.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { silentLogger } from '@cryo/common';
import { DirectoryStore, HookServer, localCheckpoint, readCheckpointArchive, type HookPod, type LocalCheckpointResult } from '@cryo/node-agent';
import type { Lab, LabPodman, LineEchoUpstream, MountSlot, PodmanContainer, PodmanPod, WarmIndexLookup, WarmIndexState } from '@cryo/test';
import { buildJavaClasses, LAB_JAVA, openLab, openLabPodman, podHttp, startLineEchoUpstream, waitFor, warmIndexCommand, warmIndexValue } from '@cryo/test';

const KEY = 4711;
const opened = await openLab();
const skip = 'skip' in opened ? opened.skip : undefined;

describe.skipIf(skip !== undefined)(`a JVM checkpointed and restored as copies in the lab${skip === undefined ? '' : ` (skipped: ${skip})`}`, () => {
  const lab = opened as Lab;
  let podman: LabPodman;
  let server: HookServer;
  let upstream: LineEchoUpstream;
  let dir: string;
  let slot: MountSlot;
  let image: string;
  let classes: string;
  const containers: PodmanContainer[] = [];
  let originalPod: PodmanPod;
  let originalHook: HookPod;
  let originalState: WarmIndexState;
  let checkpoint: LocalCheckpointResult;

  const stateOf = async (pod: PodmanPod): Promise<WarmIndexState> => (await podHttp(pod.ip, 8080, 'GET', '/state')).json<WarmIndexState>();
  const until = (pod: PodmanPod, what: string, probe: (s: WarmIndexState) => boolean, timeoutMs = 30_000) =>
    waitFor(() => stateOf(pod).then((s) => (probe(s) ? s : undefined), () => undefined), { timeoutMs, intervalMs: 100, what });
  const lookup = async (pod: PodmanPod): Promise<WarmIndexLookup> => {
    const answer = await podHttp(pod.ip, 8080, 'GET', `/lookup?key=${KEY}`);
    expect(answer.status).toBe(200);
    return answer.json<WarmIndexLookup>();
  };
  const askUpstream = async (pod: PodmanPod): Promise<string> => {
    const answer = await podHttp(pod.ip, 8080, 'GET', '/upstream');
    expect(answer.status).toBe(200);
    return answer.json<{ answer: string }>().answer;
  };
  /** A lab pod with its own hook socket directory, bound at the slot the JVM's /run/cryo comes from. */
  const podWithHooks = async (name: string): Promise<{ pod: PodmanPod; hook: HookPod }> => {
    const pod = await podman.createPod(name);
    const hook: HookPod = { uid: randomUUID(), name, namespace: 'jvm' };
    await server.addPod(hook);
    await slot.bind(join(dir, 'hooks', hook.uid));
    return { pod, hook };
  };
  const showLogsOnFailure = () =>
    onTestFailed(async () => {
      for (const c of containers) console.log(`--- ${c.name} logs:\n${await c.logs()}`);
    });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cryo-jvm-e2e-'));
    server = new HookServer({ hostHooksDir: join(dir, 'hooks'), logger: silentLogger() });
    podman = await openLabPodman(lab);
    [image, classes] = await Promise.all([podman.jvmImage(), buildJavaClasses(lab.settings.repoRoot)]);
    upstream = await startLineEchoUpstream(lab.hostAddress);
    slot = await podman.slot('jvm-e2e-hooks');
  }, 600_000);

  afterAll(async () => {
    await podman?.close();
    await upstream?.close();
    await server?.close();
    await lab.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('runs cold: OpenJDK 21 builds the index for many seconds, then answers right and talks to its upstream', async () => {
    showLogsOnFailure();
    const { pod, hook } = await podWithHooks('jvm-e2e-a');
    originalPod = pod;
    originalHook = hook;
    containers.push(
      await podman.run({
        name: 'jvm-e2e-app',
        pod,
        image,
        argv: warmIndexCommand(LAB_JAVA, classes),
        env: { PORT: '8080', UPSTREAM: upstream.address, CRYO_HOOK_SOCKET: '/run/cryo/agent.sock', CRYO_POD_UID: hook.uid, CRYO_CONTAINER_NAME: 'app' },
        mounts: [{ source: slot.path, destination: '/run/cryo' }],
      }),
    );
    originalState = await until(pod, 'the index to be built', (s) => s.ready && s.events.includes('connected welcome'), 180_000);
    expect(originalState.warmUpMillis).toBeGreaterThan(1_000);
    expect(await lookup(pod)).toMatchObject({ key: KEY, value: warmIndexValue(KEY), restoreCount: 0, instanceId: originalState.instanceId });
    expect(await askUpstream(pod)).toBe(`pong ${originalState.instanceId}`);
    await waitFor(() => server.sessions(hook.uid).length === 1, { what: "the JVM's hook session", timeoutMs: 10_000 });
  }, 240_000);

  it('checkpoints it through local mode, its hooks closing the listener and the upstream connection first; the original resumes and reconnects', async () => {
    showLogsOnFailure();
    checkpoint = await localCheckpoint({
      container: 'jvm-e2e-app',
      store: new DirectoryStore({ root: join(dir, 'store'), logger: silentLogger() }),
      readArchive: readCheckpointArchive,
      podmanArgv: podman.podmanArgv,
      podmanPath: podman.podmanPath,
      checkpointName: 'warm-jvm',
      namespace: 'jvm',
      hooks: { coordinator: server, podUid: originalHook.uid, containerName: 'app', reason: 'fast start' },
      exportDir: join(dir, 'exports'),
    });
    expect(checkpoint).toMatchObject({ checkpointName: 'warm-jvm', prepared: { status: 'ready', sessions: [{ container: 'app' }] } });
    expect(checkpoint.archive).toMatchObject({ engine: 'podman', runtime: 'crun', containerName: 'jvm-e2e-app' });
    console.log(`JVM checkpoint: ${checkpoint.checkpointDurationMs.toFixed(0)} ms (podman), archive ${(checkpoint.sizeBytes / 2 ** 20).toFixed(1)} MiB`);

    const resumed = await until(originalPod, 'the original to resume', (s) => s.lastOutcome === 'resumed');
    expect(resumed.events).toEqual(expect.arrayContaining(['before jvm/warm-jvm', 'after jvm/warm-jvm resumed 0']));
    expect(resumed).toMatchObject({ instanceId: originalState.instanceId, restoreCount: 0, warmUpMillis: originalState.warmUpMillis });
    expect(await askUpstream(originalPod)).toBe(`pong ${originalState.instanceId}`);
  }, 120_000);

  it('restores two copies, each in a pod of its own: warm at once with the right answer, told "restored", each with its own identity and upstream connection', async () => {
    showLogsOnFailure();
    const ids = new Set([originalState.instanceId]);
    for (const name of ['jvm-e2e-copy-1', 'jvm-e2e-copy-2']) {
      const { pod } = await podWithHooks(name);
      const { container } = await podman.restore({ name, pod, from: { archive: checkpoint.restoreReference } });
      containers.push(container);
      const copy = await until(pod, `${name} to be told it was restored`, (s) => s.lastOutcome === 'restored');
      // The index came with the checkpoint: built once, in the original, and never again.
      expect(copy.ready).toBe(true);
      expect(copy.warmUpMillis).toBe(originalState.warmUpMillis);
      expect(copy.events.filter((e) => e.startsWith('ready after'))).toEqual([`ready after ${originalState.warmUpMillis} ms`]);
      expect(copy.events).toContain('after jvm/warm-jvm restored 1');
      expect(copy.restoreCount).toBe(1);
      const answer = await lookup(pod);
      expect(answer).toMatchObject({ key: KEY, value: warmIndexValue(KEY), restoreCount: 1, instanceId: copy.instanceId });
      ids.add(copy.instanceId);
      expect(await askUpstream(pod)).toBe(`pong ${copy.instanceId}`);
    }
    expect(ids.size).toBe(3);
    // The original's connection and one per copy: each reopened its own after the restore.
    expect(upstream.openConnections()).toBe(3);
    expect((await lookup(originalPod)).instanceId).toBe(originalState.instanceId);
  }, 180_000);
});
