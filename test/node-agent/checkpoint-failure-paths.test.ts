/**
 * How a Checkpoint fails when a step of it fails part-way, and what is left afterwards: the whole
 * node agent (startNodeAgent) against the shared fake kube-apiserver and the kubelet stand-in
 * (agent-on-fakes.ts), whose answers each test sets, with a pod of two containers and a directory
 * store. No lab: no container is dumped. The hooks' part (prepare failing) is in
 * node-agent/src/checkpoints/checkpoint-runner.test.ts.
 */
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHECKPOINT_DATA_FINALIZER, silentLogger, type Checkpoint, type CheckpointFailureReason } from '@cryo/common';
import { DirectoryStore, readCheckpointArchive } from '@cryo/node-agent';
import { buildCheckpointArchive, waitFor, type KubeObject } from '@cryo/test';
import { startAgentOnFakes, type AgentOnFakes } from './agent-on-fakes.ts';

const CHECKPOINTS = '/apis/cryo.dev/v1alpha1/namespaces/shop/checkpoints';

describe('a Checkpoint whose step fails part-way', () => {
  let fakes: AgentOnFakes;

  beforeAll(async () => {
    fakes = await startAgentOnFakes('cryo-agent-failures-', [], { containers: ['app', 'sidecar'] });
  });

  afterAll(async () => {
    await fakes?.stop();
  });

  const get = (name: string): Checkpoint | undefined => fakes.api.get('cryo.dev/v1alpha1', 'checkpoints', 'shop', name);
  const create = (name: string, spec: Partial<Checkpoint['spec']> = {}) =>
    fakes.api.put({ apiVersion: 'cryo.dev/v1alpha1', kind: 'Checkpoint', metadata: { name, namespace: 'shop' }, spec: { podName: 'orders-0', ...spec } });
  /** The kubelet answers this archive for the next checkpoint request. */
  const kubeletAnswers = (archivePath: string) => fakes.kubelet.failNext({ status: 200, body: JSON.stringify({ items: [archivePath] }) });
  const archiveOf = (name: string, container: string) => buildCheckpointArchive({ dir: fakes.checkpointsDir, pod: fakes.pod, containerName: container, fileName: `${name}-${container}.tar` });
  /** Every file under the store's directory of the pod, as paths below it. */
  const storedFiles = async () => (await readdir(join(fakes.storeDir, 'shop', 'orders-0'), { recursive: true, withFileTypes: true }).catch(() => []))
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name).slice(fakes.storeDir.length + 1))
    .sort();
  const eventsOf = (name: string) =>
    fakes.api.list<KubeObject & { type: string; reason: string; note: string; regarding: { name: string } }>('events.k8s.io/v1', 'events', 'shop')
      .filter((event) => event.regarding.name === name)
      .map((event) => `${event.type} ${event.reason}: ${event.note}`);
  const finishedCount = async (reason: CheckpointFailureReason) =>
    Number(new RegExp(`^cryo_checkpoints_finished_total\\{result="Failed",reason="${reason}",store="[a-z]+"\\} (\\d+)$`, 'm').exec((await fakes.agent.metrics.render()).body)?.[1] ?? 0);

  /** A Failed status as every failure writes it: one reason in status, conditions and the Warning Event (recorded after the status). */
  async function expectFailed(done: Checkpoint, reason: CheckpointFailureReason, retryable: boolean): Promise<void> {
    const message = done.status?.message;
    expect(done.status).toMatchObject({
      phase: 'Failed',
      reason,
      retryable,
      nodeName: 'node-a',
      conditions: [
        { type: 'Ready', status: 'False', reason, message },
        { type: 'Failed', status: 'True', reason, message },
      ],
    });
    const event = `Warning ${reason}: ${message}`;
    await waitFor(() => eventsOf(done.metadata!.name!).includes(event), { timeoutMs: 10_000, intervalMs: 20, what: `the Event ${event}` });
  }

  it('the kubelet dumps the first container and fails on the second: DumpFailed in its words, the first archive discarded, nothing stored', async () => {
    const app = await archiveOf('dump-partway', 'app');
    kubeletAnswers(app.path);
    fakes.kubelet.failNext({ status: 500, body: 'checkpointing of shop/orders-0/sidecar failed (rpc error: code = Unknown desc = CRIU: Error (criu/sk-inet.c:191): inet: Connected TCP socket)' });
    const before = fakes.kubelet.requests.length;
    create('dump-partway');
    const done = await fakes.finished('dump-partway');
    await expectFailed(done, 'DumpFailed', true);
    expect(done.status?.message).toMatch(/^the kubelet could not checkpoint container "sidecar": .*Connected TCP socket/);
    expect(fakes.kubelet.requests.slice(before).map((r) => r.path)).toEqual(['/checkpoint/shop/orders-0/app', '/checkpoint/shop/orders-0/sidecar']);
    expect(await readdir(fakes.checkpointsDir)).toEqual([]);
    expect(await storedFiles()).toEqual([]);
    expect(done.status?.containers).toBeUndefined();
  });

  it('the store fails on the second container: StoreFailed, retryable, and the first container stored is removed again', async () => {
    const app = await archiveOf('store-partway', 'app');
    const sidecar = await archiveOf('store-partway', 'sidecar');
    kubeletAnswers(app.path);
    kubeletAnswers(sidecar.path);
    // A file where the sidecar's directory goes: the store cannot create it once app is stored.
    const blocker = join(fakes.storeDir, 'shop', 'orders-0', 'sidecar');
    await mkdir(join(fakes.storeDir, 'shop', 'orders-0'), { recursive: true });
    await writeFile(blocker, 'in the way');
    try {
      create('store-partway');
      const done = await fakes.finished('store-partway');
      await expectFailed(done, 'StoreFailed', true);
      expect(done.status?.message).toMatch(/^storing the checkpoint of container "sidecar" failed \(the app was resumed\): /);
      expect(done.status?.message).not.toMatch(/remove them by hand/);
      // Nothing of it in the store (app's complete archive and sidecars included), and the kubelet's archives gone.
      expect(await storedFiles()).toEqual(['shop/orders-0/sidecar']);
      expect(await readdir(fakes.checkpointsDir)).toEqual([]);
    } finally {
      await rm(blocker, { force: true });
    }
  });

  it('its claim conflicts (409: another agent claimed it first): the agent backs off, dumps nothing and writes nothing more', async () => {
    const status = `${CHECKPOINTS}/claimed-elsewhere/status`;
    fakes.api.failNext({ method: 'PUT', pathPrefix: status, status: 409, reason: 'Conflict', message: 'Operation cannot be fulfilled on checkpoints.cryo.dev "claimed-elsewhere": the object has been modified; please apply your changes to the latest version and try again' });
    const kubeletBefore = fakes.kubelet.requests.length;
    const requestsBefore = fakes.api.requests.length;
    const created = create('claimed-elsewhere');
    await waitFor(() => fakes.api.requests.slice(requestsBefore).some((r) => r.method === 'PUT' && r.path === status && r.status === 409), { timeoutMs: 10_000, intervalMs: 20, what: 'the agent to try its claim' });
    await fakes.agent.checkpoints.idle();
    // What the other agent wrote when it won.
    fakes.api.put({ ...created, status: { phase: 'Running', nodeName: 'node-b', message: 'checkpointing' } });
    // A later Checkpoint, carried out: by then the agent has seen the other agent's claim (a watch is in order).
    const app = await archiveOf('after-the-conflict', 'app');
    kubeletAnswers(app.path);
    create('after-the-conflict', { containers: ['app'] });
    expect((await fakes.finished('after-the-conflict')).status?.phase).toBe('Succeeded');

    expect(get('claimed-elsewhere')?.status).toEqual({ phase: 'Running', nodeName: 'node-b', message: 'checkpointing' });
    expect(get('claimed-elsewhere')?.metadata?.finalizers).toBeUndefined();
    const touched = fakes.api.requests.slice(requestsBefore).filter((r) => r.path.startsWith(`${CHECKPOINTS}/claimed-elsewhere`) && r.method !== 'GET');
    expect(touched.map((r) => `${r.method} ${r.status}`)).toEqual(['PUT 409']);
    expect(fakes.kubelet.requests.slice(kubeletBefore).map((r) => r.path)).toEqual(['/checkpoint/shop/orders-0/app']);
    expect(eventsOf('claimed-elsewhere')).toEqual([]);
  });

  it('abandoned by an agent that stopped while it ran: the restarted agent fails it (AgentRestarted, retryable) and removes what was stored of it', async () => {
    const finishedBefore = await finishedCount('AgentRestarted');
    let uid = '';
    await fakes.restartAgent(async () => {
      // What the stopped agent left: its claim, its finalizer, and the first container stored.
      const claimed = fakes.api.put({
        apiVersion: 'cryo.dev/v1alpha1',
        kind: 'Checkpoint',
        metadata: { name: 'abandoned', namespace: 'shop', finalizers: [CHECKPOINT_DATA_FINALIZER] },
        spec: { podName: 'orders-0' },
        status: { phase: 'Running', nodeName: 'node-a', message: 'checkpointing', startTime: new Date().toISOString() },
      });
      uid = claimed.metadata!.uid!;
      const archive = await archiveOf('abandoned', 'app');
      const store = new DirectoryStore({ root: fakes.storeDir, logger: silentLogger() });
      await store.store({ archive: await readCheckpointArchive(archive.path), checkpoint: { namespace: 'shop', name: 'abandoned', uid }, pod: { namespace: 'shop', name: 'orders-0', uid: fakes.pod.uid }, containerName: 'app' });
      await rm(archive.path);
      expect((await storedFiles()).filter((f) => f.includes('abandoned'))).toHaveLength(3);
    });
    const done = await fakes.finished('abandoned');
    expect(done.metadata?.uid).toBe(uid);
    await expectFailed(done, 'AgentRestarted', true);
    expect(done.status?.message).toBe('the node agent restarted while this checkpoint ran; the app was resumed and nothing was stored. Create a new Checkpoint');
    expect((await storedFiles()).filter((f) => f.includes('abandoned'))).toEqual([]);
    expect(await finishedCount('AgentRestarted')).toBe(finishedBefore + 1);
  });
});
