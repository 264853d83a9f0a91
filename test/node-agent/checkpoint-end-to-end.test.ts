/**
 * The node agent checkpointing a pod end to end: a Checkpoint in the (fake) kube-apiserver, the
 * pod's app (Node + the hook SDK) in a lab container, the kubelet stand-in dumping it with real
 * CRIU, the archive stored in the directory store and in a real registry (Debian's
 * docker-registry), status and Events written back — the agent as it runs in a cluster,
 * through the real @kubernetes/client-node.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { annotations, silentLogger, type Checkpoint, type PodCheckpoint } from '@cryo/common';
import { readNodeAgentConfig, startNodeAgent, type RunningNodeAgent } from '@cryo/node-agent';
import type { Lab, LabContainer, LabPod, LabRegistry, LineEchoUpstream } from '@cryo/test';
import { FakeKubeApiServer, FakeKubelet, openLab, podHttp, runCommand, startLabRegistry, startLineEchoUpstream, waitFor, freePort } from '@cryo/test';

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
  let upstream: LineEchoUpstream;
  let labPod: LabPod;
  let container: LabContainer;
  let sidecar: LabContainer;
  const podUid = randomUUID();
  let storeDir: string;
  let checkpointsDir: string;
  let agentFlags: string[];
  const startAgent = () =>
    startNodeAgent(readNodeAgentConfig([...agentFlags, '--port', '0'], {}), { kubeConfig: api.kubeConfig(), logger: silentLogger(), host: '127.0.0.1' });

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
    upstream = await startLineEchoUpstream(lab.hostAddress);

    labPod = await lab.createPod('agent-e2e');
    container = await lab.runContainer({
      id: 'agent-e2e-app',
      pod: labPod,
      argv: [lab.nodeBinary, join(lab.settings.repoRoot, 'test/criu/fixtures/hooked-service.ts')],
      cwd: lab.settings.repoRoot,
      env: { PORT: '8080', UPSTREAM: upstream.address, CRYO_HOOK_SOCKET: '/run/cryo/agent.sock', CRYO_POD_UID: podUid, CRYO_CONTAINER_NAME: 'app' },
      mounts: [{ source: join(hooksDir, podUid), destination: '/run/cryo' }],
    });
    // A second container without hooks: a checkpoint of the whole pod holds an archive of each.
    sidecar = await lab.runContainer({
      id: 'agent-e2e-sidecar',
      pod: labPod,
      argv: [lab.nodeBinary, join(lab.settings.repoRoot, 'test/lab/fixtures/counter-server.ts')],
      env: { PORT: '8090' },
      mounts: [{ source: join(hooksDir, podUid), destination: '/run/cryo' }],
    });
    kubelet.addPod({ namespace: 'shop', name: 'orders-0', uid: podUid, containers: { app: container, sidecar } });
    api.put({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'orders-0', namespace: 'shop', uid: podUid, annotations: { [annotations.HOOKS]: annotations.HOOKS_ENABLED } },
      spec: { nodeName: 'node-a', containers: [{ name: 'app', image: 'shop/orders:1' }, { name: 'sidecar', image: 'shop/counter:1' }] },
      status: {
        phase: 'Running',
        containerStatuses: [
          { name: 'app', ready: true, restartCount: 0, image: 'shop/orders:1', imageID: '', state: { running: {} } },
          { name: 'sidecar', ready: true, restartCount: 0, image: 'shop/counter:1', imageID: '', state: { running: {} } },
        ],
      },
    });
    agentFlags = [
      '--node-name', 'node-a', '--host-hooks-dir', hooksDir,
      '--kubelet-url', kubelet.url, '--kubelet-ca-file', join(dir, 'kubelet-ca.crt'), '--token-file', join(dir, 'token'),
      '--kubelet-checkpoints-dir', checkpointsDir, '--directory', storeDir, '--registry-insecure',
      // The directory store's registry view on a free port (the default, 5051, is the node's).
      '--directory-registry-address', '127.0.0.1:0',
      // The repositories a Checkpoint may name (the lab registry's); nothing else.
      '--registry-allowed-repositories', `${registry.host}/checkpoints`,
    ];
    agent = await startAgent();
    await waitFor(() => podHttp(labPod.ip, 8080, 'GET', '/state').catch(() => undefined), { timeoutMs: 20_000, what: 'the app' });
    await waitFor(() => agent.hooks.sessions(podUid).length === 1, { timeoutMs: 10_000, what: 'the app’s hook session' });
  }, 120_000);

  afterAll(async () => {
    await agent?.stop();
    await lab.close();
    await registry?.stop();
    await kubelet?.close();
    await api?.stop();
    await upstream?.close();
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

  /** Where the directory store keeps a Checkpoint's archive of a container. */
  const archiveOf = (done: Checkpoint, container: string) => join(storeDir, 'shop', 'orders-0', container, `${done.metadata!.name}-${done.metadata!.uid!.slice(0, 8)}.tar`);

  const appState = async () => (await podHttp(labPod.ip, 8080, 'GET', '/state')).json<{ value: number; lastOutcome: string | null; events: string[] }>();

  it('checkpoints a hook-enabled pod into the directory store: hooks, kubelet, CRIU, archive, status, events', async () => {
    showOnFailure();
    await podHttp(labPod.ip, 8080, 'POST', '/value?v=7');
    const done = await checkpoint('orders-warm', { reason: 'fast start', containers: ['app'] });
    expect(done.status, done.status?.message).toMatchObject({ phase: 'Succeeded', nodeName: 'node-a', storage: { type: 'directory', shared: false } });
    // What `kubectl wait --for=condition=Ready` reads: True once stored, for this generation; no Failed condition.
    expect(done.status).toMatchObject({ reason: 'Stored', observedGeneration: 1, conditions: [{ type: 'Ready', status: 'True', reason: 'Stored', observedGeneration: 1 }] });
    expect(done.status).not.toHaveProperty('retryable');
    // What Prometheus scrapes: one success into the directory store, its bytes and its dump's time.
    const metrics = (await agent.metrics.render()).body;
    expect(metrics).toMatch(/^cryo_checkpoints_finished_total\{result="Succeeded",reason="",store="directory"\} 1$/m);
    expect(metrics).toMatch(/^cryo_checkpoint_stored_bytes_total\{store="directory"\} [1-9]\d*$/m);
    expect(metrics).toMatch(/^cryo_checkpoint_dump_duration_seconds_count 1$/m);
    const [stored] = done.status!.containers!;
    // An image of the agent's registry view, named by namespace, pod and container.
    expect(stored).toMatchObject({ name: 'app', referenceType: 'image', mountDestinations: expect.arrayContaining(['/run/cryo']) });
    expect(stored.restoreReference).toMatch(new RegExp(`^127\\.0\\.0\\.1:${agent.directoryRegistry!.port}/cryo-directory/shop/orders-0/app@sha256:[0-9a-f]{64}$`));
    expect(stored.sizeBytes).toBeGreaterThan(1024 * 1024);
    expect(done.status!.totalSizeBytes).toBe(stored.sizeBytes);
    // The digest beside the archive matches it (sha256sum's format), and checkpointctl reads it as CRI-O's.
    const archive = archiveOf(done, 'app');
    const sha = (await readFile(`${archive}.sha256`, 'utf8')).split(/\s+/)[0];
    const { stdout } = await runCommand(['sha256sum', archive]);
    expect(stdout.split(/\s+/)[0]).toBe(sha);
    // skopeo pulls that image from the view: the archive is its one layer.
    const inspected = await lab.exec(['skopeo', 'inspect', '--raw', '--tls-verify=false', `docker://${stored.restoreReference}`]);
    expect(inspected.code, inspected.stderr).toBe(0);
    expect((JSON.parse(inspected.stdout) as { layers: { digest: string }[] }).layers.map((l) => l.digest)).toEqual([`sha256:${sha}`]);
    const show = await lab.exec(['checkpointctl', 'show', lab.hostPath(archive)]);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toMatch(/CRI-O/);
    // The kubelet's copy is gone once stored.
    expect(await readdir(checkpointsDir)).toEqual([]);
    // The app prepared, was dumped, and resumed.
    const state = await waitFor(() => appState().then((s) => (s.lastOutcome === 'resumed' ? s : undefined), () => undefined), { what: 'the app to resume' });
    expect(state.events).toEqual(expect.arrayContaining(['before shop/orders-warm', 'after shop/orders-warm resumed 0']));
    // Events are written after the status: wait for the last one.
    const events = await waitFor(() => {
      const all = api.list<{ reason: string; regarding: { name: string }; related?: { name: string } }>('events.k8s.io/v1', 'events', 'shop');
      return all.some((e) => e.reason === 'CheckpointSucceeded') ? all : undefined;
    }, { what: 'the CheckpointSucceeded Event' });
    // Started and Succeeded once each; between them, how many progress Events (Checkpointing, at
    // each quarter of the archive stored or every 10 s) depends on how the copy's reads fell.
    const reasons = events.filter((e) => e.regarding.name === 'orders-warm').map((e) => e.reason);
    expect(reasons.filter((r) => r !== 'Checkpointing').sort()).toEqual(['CheckpointStarted', 'CheckpointSucceeded']);
    expect(reasons.filter((r) => r === 'Checkpointing').length).toBeLessThanOrEqual(4);
    expect(events.find((e) => e.reason === 'CheckpointSucceeded')?.related?.name).toBe('orders-0');
  }, 90_000);

  it('pushes a checkpoint image to a registry, pinned by digest, that skopeo reads with every runtime’s annotations', async () => {
    showOnFailure();
    const done = await checkpoint('orders-image', { containers: ['app'], storage: { registry: { repository: `${registry.host}/checkpoints/orders` } } });
    expect(done.status, done.status?.message).toMatchObject({ phase: 'Succeeded', storage: { type: 'registry' } });
    const [stored] = done.status!.containers!;
    expect(stored.referenceType).toBe('image');
    // In the namespace's own repository below the one named.
    expect(stored.restoreReference).toMatch(new RegExp(`^${registry.host}/checkpoints/orders/cryo-checkpoints/shop@sha256:[0-9a-f]{64}$`));
    const inspect = await lab.exec(['skopeo', 'inspect', '--raw', '--tls-verify=false', `docker://${stored.restoreReference}`]);
    expect(inspect.code, inspect.stderr).toBe(0);
    const manifest = JSON.parse(inspect.stdout) as { annotations: Record<string, string>; layers: { size: number }[] };
    expect(manifest.annotations).toMatchObject({
      'io.kubernetes.cri-o.annotations.checkpoint.name': 'app',
      'org.criu.checkpoint.container.name': 'app',
      'io.podman.annotations.checkpoint.runtime.name': 'crun',
    });
    expect(manifest.layers[0].size).toBe(stored.sizeBytes);
    // The pod checkpoint: an index of the pod's checkpoint images, read by skopeo as well.
    expect(done.status!.podCheckpoint).toMatchObject({ referenceType: 'image-index', reference: expect.stringMatching(new RegExp(`^${registry.host}/checkpoints/orders/cryo-checkpoints/shop@sha256:`)) });
    const index = await lab.exec(['skopeo', 'inspect', '--raw', '--tls-verify=false', `docker://${done.status!.podCheckpoint!.reference}`]);
    expect(index.code, index.stderr).toBe(0);
    expect((JSON.parse(index.stdout) as { manifests: { digest: string }[] }).manifests.map((m) => m.digest)).toEqual([stored.restoreReference.split('@')[1]]);
  }, 90_000);

  it('refuses a repository the administrator did not allow, and a push secret not given to the namespace', async () => {
    showOnFailure();
    const elsewhere = await checkpoint('orders-elsewhere', { containers: ['app'], storage: { registry: { repository: `${registry.host}/other-team` } } });
    expect(elsewhere.status).toMatchObject({ phase: 'Failed', message: expect.stringMatching(new RegExp(`registry repository ${registry.host}/other-team is not one this node agent pushes to \\(.*${registry.host}/checkpoints\\)`)) });
    // A Secret in the agent's namespace, given to another namespace only; and one that does not exist: the same answer.
    api.put({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'team-b-push', namespace: 'cryo-node', annotations: { 'cryo.dev/push-secret-namespaces': 'team-b' } }, type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': Buffer.from('{"auths":{}}').toString('base64') } });
    for (const [name, secret] of [['orders-secret', 'team-b-push'], ['orders-nosecret', 'no-such-secret']]) {
      const refused = await checkpoint(name, { containers: ['app'], storage: { registry: { repository: `${registry.host}/checkpoints/orders`, pushSecretName: secret } } });
      expect(refused.status).toMatchObject({ phase: 'Failed', message: expect.stringContaining(`push secret ${secret} is not available to namespace shop: the administrator lists the namespaces that may use a push secret in its annotation cryo.dev/push-secret-namespaces`) });
    }
  }, 60_000);

  it("pushes through a CheckpointStorageClass open to the namespace, to the class's repository with its push Secret, and records its pull Secret", async () => {
    showOnFailure();
    // The administrator's class: its repository is in no allow-list flag and its push Secret
    // (given by annotation to team-b only) is the class's to grant.
    api.put({ apiVersion: 'cryo.dev/v1alpha1', kind: 'CheckpointStorageClass', metadata: { name: 'shop-registry' }, spec: { namespaces: ['shop'], registry: { repository: `${registry.host}/classes`, pushSecretName: 'team-b-push', pullSecretName: 'shop-checkpoint-pull' } } });
    api.put({ apiVersion: 'cryo.dev/v1alpha1', kind: 'CheckpointStorageClass', metadata: { name: 'team-b-registry' }, spec: { namespaces: ['team-b'], registry: { repository: `${registry.host}/classes` } } });
    const done = await checkpoint('orders-class', { containers: ['app'], storageClassName: 'shop-registry' });
    expect(done.status, done.status?.message).toMatchObject({ phase: 'Succeeded', storage: { type: 'registry', className: 'shop-registry', pullSecretName: 'shop-checkpoint-pull' } });
    const [stored] = done.status!.containers!;
    expect(stored.restoreReference).toMatch(new RegExp(`^${registry.host}/classes/cryo-checkpoints/shop@sha256:[0-9a-f]{64}$`));
    const inspect = await lab.exec(['skopeo', 'inspect', '--raw', '--tls-verify=false', `docker://${stored.restoreReference}`]);
    expect(inspect.code, inspect.stderr).toBe(0);
    const refused = await checkpoint('orders-other-class', { containers: ['app'], storageClassName: 'team-b-registry' });
    expect(refused.status).toMatchObject({ phase: 'Failed', message: expect.stringMatching(/^storage class team-b-registry is not open to namespace shop: /) });
  }, 60_000);

  it('checkpoints every container of the pod when none are named: an archive per container', async () => {
    showOnFailure();
    const done = await checkpoint('orders-whole-pod');
    expect(done.status?.phase, done.status?.message).toBe('Succeeded');
    const containers = done.status!.containers!;
    expect(containers.map((c) => c.name)).toEqual(['app', 'sidecar']);
    expect(new Set(containers.map((c) => c.restoreReference)).size).toBe(2);
    expect(done.status!.totalSizeBytes).toBe(containers.reduce((sum, c) => sum + (c.sizeBytes ?? 0), 0));
    expect(done.status!.message).toBe('checkpointed 2 containers into the directory store');
    // The pod checkpoint names both archives, and the pod as it ran.
    expect(done.status!.podCheckpoint?.referenceType).toBe('file');
    const pod = JSON.parse(await readFile(done.status!.podCheckpoint!.reference, 'utf8')) as PodCheckpoint;
    expect(pod.containers.map((c) => [c.name, c.image, c.restoreReference])).toEqual(containers.map((c) => [c.name, c.name === 'app' ? 'shop/orders:1' : 'shop/counter:1', c.restoreReference]));
    expect(pod).toMatchObject({ nodeName: 'node-a', notCheckpointed: [], pod: { name: 'orders-0', uid: podUid } });
    for (const c of containers) expect((await lab.exec(['checkpointctl', 'show', lab.hostPath(archiveOf(done, c.name))])).code).toBe(0);
    // Both keep running (the kubelet leaves them running), and the app heard it was resumed.
    expect((await podHttp(labPod.ip, 8090, 'GET', '/state')).status).toBe(200);
    await waitFor(() => appState().then((st) => st.events.includes('after shop/orders-whole-pod resumed 0'), () => false), { what: 'the app to resume' });
  }, 120_000);

  it('fails a Checkpoint the kubelet cannot dump, with the kubelet’s words, and the app resumes', async () => {
    showOnFailure();
    kubelet.failNext({ status: 500, body: 'checkpointing of shop/orders-0/app failed (runtime exploded)' });
    const failed = await checkpoint('orders-kubelet-500');
    expect(failed.status?.phase).toBe('Failed');
    expect(failed.status?.message).toMatch(/the kubelet could not checkpoint container "app": .*runtime exploded/);
    // One code in the status, both conditions and the Event; a new Checkpoint may succeed.
    expect((await agent.metrics.render()).body).toMatch(/^cryo_checkpoints_finished_total\{result="Failed",reason="DumpFailed",store="directory"\} 1$/m);
    expect(failed.status).toMatchObject({
      reason: 'DumpFailed',
      retryable: true,
      conditions: [
        { type: 'Ready', status: 'False', reason: 'DumpFailed', message: failed.status?.message },
        { type: 'Failed', status: 'True', reason: 'DumpFailed', message: failed.status?.message },
      ],
    });
    await waitFor(() => appState().then((s) => s.lastOutcome === 'aborted', () => false), { what: 'the app to resume after the abort' });
  }, 60_000);

  it('runs two Checkpoints of one pod created together one after the other, and both succeed', async () => {
    showOnFailure();
    const both = await Promise.all([checkpoint('orders-twin-a', { containers: ['app'] }), checkpoint('orders-twin-b', { containers: ['app'] })]);
    for (const done of both) expect(done.status?.phase, done.status?.message).toBe('Succeeded');
    const [a, b] = both.map((c) => c.status!);
    // One per pod at a time: one started after the other had finished.
    expect(Date.parse(a.startTime!) >= Date.parse(b.completionTime!) || Date.parse(b.startTime!) >= Date.parse(a.completionTime!)).toBe(true);
    const state = await appState();
    expect(state.events.filter((e) => e.startsWith('before shop/orders-twin'))).toHaveLength(2);
  }, 120_000);

  it('fails cleanly a Checkpoint whose agent was killed mid-way; the restarted agent resumes the app', async () => {
    showOnFailure();
    await agent.stop();
    const port = await freePort();
    const child = spawn(process.execPath, [join(lab.settings.repoRoot, 'node-agent/src/main.ts'), ...agentFlags, '--port', String(port), '--kubeconfig', api.writeKubeconfigFile(dir)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => (stderr += d.toString()));
    onTestFailed(() => console.log(`--- agent process output:\n${stderr}`));
    try {
      await waitFor(() => fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.ok, () => false), { timeoutMs: 30_000, intervalMs: 100, what: `the agent process to be ready; stderr: ${stderr}` });
      // The app reconnects to the new agent with backoff; the checkpoint must find it connected.
      await waitFor(() => fetch(`http://127.0.0.1:${port}/metrics`).then(async (r) => /cryo_hook_sessions 1/.test(await r.text()), () => false), { timeoutMs: 20_000, intervalMs: 100, what: 'the app to connect to the agent process' });
      kubelet.failNext({ hang: true });
      const earlierRequests = kubelet.requests.length;
      api.put({ apiVersion: 'cryo.dev/v1alpha1', kind: 'Checkpoint', metadata: { name: 'orders-crash', namespace: 'shop' }, spec: { podName: 'orders-0' } });
      // Claimed, hooks prepared, the kubelet dumping: then the agent dies.
      await waitFor(() => kubelet.requests.length > earlierRequests, { timeoutMs: 30_000, what: 'the kubelet to be asked (after the hooks were ready)' });
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    agent = await startAgent();
    const failed = await waitFor(
      () => {
        const current: Checkpoint | undefined = api.get('cryo.dev/v1alpha1', 'checkpoints', 'shop', 'orders-crash');
        return current?.status?.phase === 'Failed' ? current : undefined;
      },
      { timeoutMs: 30_000, what: 'the abandoned Checkpoint to be failed' },
    );
    expect(failed.status?.message).toMatch(/the node agent restarted while this checkpoint ran; the app was resumed and nothing was stored/);
    expect(failed.status).toMatchObject({ reason: 'AgentRestarted', retryable: true });
    // The app was left prepared by the dead agent; the new one's socket tells it to carry on.
    let seen: string[] = [];
    const state = await waitFor(
      () => appState().then((st) => ((seen = st.events), st.events.includes('after shop/orders-crash resumed 0') ? st : undefined), () => undefined),
      { timeoutMs: 20_000, what: 'the app to resume' },
    ).catch((error: Error) => {
      throw new Error(`${error.message}; app events: ${seen.join(' | ')}; sessions: ${JSON.stringify(agent.hooks.sessions(podUid))}`);
    });
    expect(state.lastOutcome).toBe('resumed');
    // Nothing complete-looking is left for it in the store.
    const stored = await readdir(join(storeDir, 'shop', 'orders-0', 'app')).catch((error: NodeJS.ErrnoException) => (error.code === 'ENOENT' ? [] : Promise.reject(error)));
    expect(stored.filter((f) => f.includes('orders-crash'))).toEqual([]);
  }, 120_000);

  it('fails a Checkpoint for a pod that does not exist, or a container it does not have, saying so', async () => {
    const missing = await checkpoint('nobody', { podName: 'orders-9' });
    expect(missing.status).toMatchObject({ phase: 'Failed', reason: 'PodNotFound', retryable: false, message: 'pod shop/orders-9 does not exist; name a running pod in spec.podName' });
    const unknown = await checkpoint('no-such-container', { containers: ['db'] });
    expect(unknown.status?.message).toMatch(/has no container "db"; its containers are app, sidecar/);
    expect(unknown.status).toMatchObject({ reason: 'ContainerNotFound', retryable: false, conditions: [{ type: 'Ready', status: 'False' }, { type: 'Failed', status: 'True', reason: 'ContainerNotFound' }] });
  }, 60_000);
});
