/**
 * The node agent checkpointing a pod end to end: a Checkpoint in the (fake) kube-apiserver, the
 * pod's app (Node + the hook SDK) in a lab container, the kubelet stand-in dumping it with real
 * CRIU, the archive stored in the directory store and in a real registry (Debian's
 * docker-registry), status and Events written back — the agent as it runs in a cluster,
 * through the real @kubernetes/client-node.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { annotations, silentLogger, type Checkpoint } from '@cryo/common';
import { readNodeAgentConfig, startNodeAgent, type RunningNodeAgent } from '../../node-agent/src/index.ts';
import type { Lab, LabContainer, LabPod, LabRegistry } from '../src/index.ts';
import { FakeKubeApiServer, FakeKubelet, openLab, podHttp, runCommand, startLabRegistry, waitFor } from '../src/index.ts';

const TOKEN = 'node-agent-sa-token';
const opened = await openLab();
const skip = 'skip' in opened ? opened.skip : undefined;

describe.skipIf(skip !== undefined)(`the node agent, end to end${skip === undefined ? '' : ` (skipped: ${skip})`}`, () => {
  const lab = opened as Lab;
  let dir: string;
  let api: FakeKubeApiServer;
  let kubelet: FakeKubelet;
  let registry: LabRegistry;
  let agent: RunningNodeAgent;
  let upstream: net.Server;
  let labPod: LabPod;
  let container: LabContainer;
  const podUid = randomUUID();
  let storeDir: string;
  let checkpointsDir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cryo-agent-e2e-'));
    const hooksDir = join(dir, 'hooks');
    storeDir = join(dir, 'store');
    checkpointsDir = join(dir, 'kubelet-checkpoints');
    await mkdir(join(hooksDir, podUid), { recursive: true });
    api = await FakeKubeApiServer.start();
    kubelet = await FakeKubelet.start({ checkpointsDir, token: TOKEN });
    registry = await startLabRegistry(lab);
    await writeFile(join(dir, 'token'), TOKEN);
    await writeFile(join(dir, 'kubelet-ca.crt'), kubelet.caPem);
    upstream = net.createServer((s) => s.on('data', (d) => s.write(d)).on('error', () => {}));
    await new Promise<void>((resolve) => upstream.listen(0, lab.hostAddress, resolve));

    labPod = await lab.createPod('agent-e2e');
    container = await lab.runContainer({
      id: 'agent-e2e-app',
      pod: labPod,
      argv: [lab.nodeBinary, join(lab.settings.repoRoot, 'test/criu/fixtures/hooked-service.ts')],
      cwd: lab.settings.repoRoot,
      env: { PORT: '8080', UPSTREAM: `${lab.hostAddress}:${(upstream.address() as AddressInfo).port}`, CRYO_HOOK_SOCKET: '/run/cryo/agent.sock', CRYO_POD_UID: podUid, CRYO_CONTAINER_NAME: 'app' },
      mounts: [{ source: join(hooksDir, podUid), destination: '/run/cryo' }],
    });
    kubelet.addPod({ namespace: 'shop', name: 'orders-0', uid: podUid, containers: { app: container } });
    api.put({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'orders-0', namespace: 'shop', uid: podUid, annotations: { [annotations.HOOKS]: annotations.HOOKS_ENABLED } },
      spec: { nodeName: 'node-a', containers: [{ name: 'app', image: 'shop/orders:1' }] },
      status: { phase: 'Running', containerStatuses: [{ name: 'app', ready: true, restartCount: 0, image: 'shop/orders:1', imageID: '', state: { running: {} } }] },
    });
    const config = readNodeAgentConfig(
      [
        '--node-name', 'node-a', '--host-hooks-dir', hooksDir, '--port', '0',
        '--kubelet-url', kubelet.url, '--kubelet-ca-file', join(dir, 'kubelet-ca.crt'), '--token-file', join(dir, 'token'),
        '--kubelet-checkpoints-dir', checkpointsDir, '--directory', storeDir, '--registry-insecure', 'true',
      ],
      {},
    );
    agent = await startNodeAgent(config, { kubeConfig: api.kubeConfig(), logger: silentLogger(), host: '127.0.0.1' });
    await waitFor(() => podHttp(labPod.ip, 8080, 'GET', '/state').catch(() => undefined), { timeoutMs: 20_000, what: 'the app' });
    await waitFor(() => agent.hooks.sessions(podUid).length === 1, { timeoutMs: 10_000, what: 'the app’s hook session' });
  }, 120_000);

  afterAll(async () => {
    await agent?.stop();
    await lab.close();
    await registry?.stop();
    await kubelet?.close();
    await api?.stop();
    await new Promise((resolve) => upstream?.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  const showOnFailure = () =>
    onTestFailed(async () => {
      console.log(`--- app output:\n${await container.output()}`);
      console.log(`--- checkpoints: ${JSON.stringify(api.list('cryo.dev/v1alpha1', 'checkpoints', 'shop'), null, 2)}`);
    });

  async function checkpoint(name: string, spec: Partial<Checkpoint['spec']> = {}): Promise<Checkpoint> {
    api.put({ apiVersion: 'cryo.dev/v1alpha1', kind: 'Checkpoint', metadata: { name, namespace: 'shop' }, spec: { podName: 'orders-0', ...spec } });
    return waitFor(
      () => {
        const current: Checkpoint | undefined = api.get('cryo.dev/v1alpha1', 'checkpoints', 'shop', name);
        return current?.status?.phase === 'Succeeded' || current?.status?.phase === 'Failed' ? current : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 100, what: `Checkpoint ${name} to finish` },
    );
  }

  const appState = async () => (await podHttp(labPod.ip, 8080, 'GET', '/state')).json<{ value: number; lastOutcome: string | null; events: string[] }>();

  it('checkpoints a hook-enabled pod into the directory store: hooks, kubelet, CRIU, archive, status, events', async () => {
    showOnFailure();
    await podHttp(labPod.ip, 8080, 'POST', '/value?v=7');
    const done = await checkpoint('orders-warm', { reason: 'fast start' });
    expect(done.status, done.status?.message).toMatchObject({ phase: 'Succeeded', nodeName: 'node-a', storage: { type: 'directory', shared: false } });
    const [stored] = done.status!.containers!;
    expect(stored).toMatchObject({ name: 'app', referenceType: 'archive', mountDestinations: expect.arrayContaining(['/run/cryo']) });
    expect(stored.restoreReference.startsWith(storeDir)).toBe(true);
    expect(stored.sizeBytes).toBeGreaterThan(1024 * 1024);
    expect(done.status!.totalSizeBytes).toBe(stored.sizeBytes);
    // The digest beside the archive matches it (sha256sum's format), and checkpointctl reads it as CRI-O's.
    const sha = (await readFile(`${stored.restoreReference}.sha256`, 'utf8')).split(/\s+/)[0];
    const { stdout } = await runCommand(['sha256sum', stored.restoreReference]);
    expect(stdout.split(/\s+/)[0]).toBe(sha);
    const show = await lab.exec(['checkpointctl', 'show', lab.hostPath(stored.restoreReference)]);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toMatch(/CRI-O/);
    // The kubelet's copy is gone once stored.
    expect(await readdir(checkpointsDir)).toEqual([]);
    // The app prepared, was dumped, and resumed.
    const state = await waitFor(() => appState().then((s) => (s.lastOutcome === 'resumed' ? s : undefined), () => undefined), { what: 'the app to resume' });
    expect(state.events).toEqual(expect.arrayContaining(['before shop/orders-warm', 'after shop/orders-warm resumed 0']));
    const events: Array<{ reason: string; regarding: { name: string }; related?: { name: string } }> = api.list('events.k8s.io/v1', 'events', 'shop');
    expect(events.filter((e) => e.regarding.name === 'orders-warm').map((e) => e.reason).sort()).toEqual(['CheckpointStarted', 'CheckpointSucceeded']);
    expect(events.find((e) => e.reason === 'CheckpointSucceeded')?.related?.name).toBe('orders-0');
  }, 90_000);

  it('pushes a checkpoint image to a registry, pinned by digest, that skopeo reads with every runtime’s annotations', async () => {
    showOnFailure();
    const done = await checkpoint('orders-image', { storage: { registry: { repository: `${registry.host}/checkpoints/orders` } } });
    expect(done.status, done.status?.message).toMatchObject({ phase: 'Succeeded', storage: { type: 'registry' } });
    const [stored] = done.status!.containers!;
    expect(stored.referenceType).toBe('image');
    expect(stored.restoreReference).toMatch(new RegExp(`^${registry.host}/checkpoints/orders@sha256:[0-9a-f]{64}$`));
    const inspect = await lab.exec(['skopeo', 'inspect', '--raw', '--tls-verify=false', `docker://${stored.restoreReference}`]);
    expect(inspect.code, inspect.stderr).toBe(0);
    const manifest = JSON.parse(inspect.stdout) as { annotations: Record<string, string>; layers: { size: number }[] };
    expect(manifest.annotations).toMatchObject({
      'io.kubernetes.cri-o.annotations.checkpoint.name': 'app',
      'org.criu.checkpoint.container.name': 'app',
      'io.podman.annotations.checkpoint.runtime.name': 'crun',
    });
    expect(manifest.layers[0].size).toBe(stored.sizeBytes);
  }, 90_000);

  it('fails a Checkpoint the kubelet cannot dump, with the kubelet’s words, and the app resumes', async () => {
    showOnFailure();
    kubelet.failNext({ status: 500, body: 'checkpointing of shop/orders-0/app failed (runtime exploded)' });
    const failed = await checkpoint('orders-kubelet-500');
    expect(failed.status?.phase).toBe('Failed');
    expect(failed.status?.message).toMatch(/the kubelet could not checkpoint container "app": .*runtime exploded/);
    await waitFor(() => appState().then((s) => s.lastOutcome === 'aborted', () => false), { what: 'the app to resume after the abort' });
  }, 60_000);

  it('fails a Checkpoint for a pod that does not exist, or a container it does not have, saying so', async () => {
    const missing = await checkpoint('nobody', { podName: 'orders-9' });
    expect(missing.status).toMatchObject({ phase: 'Failed', message: 'pod shop/orders-9 does not exist; name a running pod in spec.podName' });
    const unknown = await checkpoint('no-such-container', { containers: ['db'] });
    expect(unknown.status?.message).toMatch(/has no container "db"; its containers are app/);
  }, 60_000);
});
