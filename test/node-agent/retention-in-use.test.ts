/**
 * Retention never removes data in use, and reports data nobody's Checkpoint owns: the whole agent
 * (startNodeAgent) with --retention-max-count 1 and a directory store in a temp dir, against the
 * shared fake kube-apiserver and kubelet stand-in (agent-on-fakes.ts). Each Checkpoint is of
 * orders-0/app, so with one kept per container every new one makes the one before a candidate.
 * The tests run in order and share the agent: each leaves the newest Checkpoint Succeeded.
 */
import { randomUUID } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { annotations, silentLogger, type Checkpoint } from '@cryo/common';
import { readCheckpointArchive, DirectoryStore } from '@cryo/node-agent';
import { buildCheckpointArchive, waitFor } from '@cryo/test';
import { startAgentOnFakes, type AgentOnFakes } from './agent-on-fakes.ts';

interface RecordedEvent {
  reason: string;
  note: string;
  type: string;
  regarding: { name: string };
}

describe('retention and data in use', () => {
  let fakes: AgentOnFakes;
  let api: AgentOnFakes['api'];

  beforeAll(async () => {
    fakes = await startAgentOnFakes('cryo-agent-retention-in-use-', ['--retention-max-count', '1']);
    api = fakes.api;
  });

  afterAll(async () => {
    await fakes?.stop();
  });

  const get = (name: string): Checkpoint | undefined => api.get('cryo.dev/v1alpha1', 'checkpoints', 'shop', name);
  const eventsOf = (name: string) => api.list<RecordedEvent>('events.k8s.io/v1', 'events', 'shop').filter((e) => e.regarding.name === name);
  const archivesOf = async (pod: string) => (await readdir(join(fakes.storeDir, 'shop', pod, 'app'))).filter((f) => f.endsWith('.tar')).sort();
  const archiveName = (checkpoint: Checkpoint) => `${checkpoint.metadata!.name!}-${checkpoint.metadata!.uid!.slice(0, 8)}.tar`;
  const metrics = async () => (await fakes.agent.metrics.render()).body;

  /** A Succeeded checkpoint of orders-0/app; the retention run after it has ended when this resolves. */
  async function checkpoint(name: string): Promise<Checkpoint> {
    const archive = await buildCheckpointArchive({ dir: fakes.checkpointsDir, pod: fakes.pod, containerName: 'app', fileName: `${name}.tar` });
    const done = await fakes.checkpointAnswering(name, archive.path);
    expect(done.status?.phase, done.status?.message).toBe('Succeeded');
    await fakes.agent.checkpoints.idle();
    return done;
  }

  /** A pod on another node restored from `checkpoint`, as the webhook leaves it. */
  function restoredPod(name: string, checkpoint: Checkpoint, phase: string): void {
    api.put({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: 'shop', uid: randomUUID(), annotations: { [annotations.RESTORE_FROM]: checkpoint.metadata!.name!, [annotations.RESTORED_CHECKPOINT_UID]: checkpoint.metadata!.uid! } },
      spec: { nodeName: 'node-b', containers: [{ name: 'app', image: 'shop/orders:1' }] },
      status: { phase },
    });
  }

  it('keeps the data of a Checkpoint a running pod restores from, says why, and removes it once that pod finished', async () => {
    const first = await checkpoint('first');
    restoredPod('orders-restored', first, 'Running');

    const second = await checkpoint('second');
    expect(get('first')?.status?.phase).toBe('Succeeded');
    expect(await archivesOf('orders-0')).toEqual([archiveName(first), archiveName(second)].sort());
    const deferred = eventsOf('first').filter((e) => e.reason === 'RetentionDeferred');
    expect(deferred).toEqual([expect.objectContaining({ type: 'Normal', note: 'retention would remove its data, but keeps it: pod orders-restored restores from it' })]);
    expect(await metrics()).toMatch(/^cryo_retention_deferred_checkpoints\{store="directory",cause="pod"\} 1$/m);

    // A second run with nothing changed says nothing new.
    await fakes.agent.checkpoints.applyRetentionEverywhere();
    expect(eventsOf('first').filter((e) => e.reason === 'RetentionDeferred')).toHaveLength(1);
    expect(get('first')?.status?.phase).toBe('Succeeded');

    // Finished, the pod restores nothing any more: the next run removes the data and says so.
    api.put({ ...api.get('v1', 'pods', 'shop', 'orders-restored')!, status: { phase: 'Succeeded' } });
    await fakes.agent.checkpoints.applyRetentionEverywhere();
    expect(get('first')?.status).toMatchObject({ phase: 'Expired', reason: 'RetentionRemoved' });
    expect(await archivesOf('orders-0')).toEqual([archiveName(second)]);
    expect(await metrics()).toMatch(/^cryo_retention_deferred_checkpoints\{store="directory",cause="pod"\} 0$/m);
  });

  it("keeps nothing for a pod restored from an earlier Checkpoint of the same name (another uid)", async () => {
    const current = get('second')!;
    restoredPod('orders-from-old-second', { ...current, metadata: { ...current.metadata, uid: randomUUID() } }, 'Running');
    await checkpoint('third');
    expect(get('second')?.status?.phase).toBe('Expired');
    expect(eventsOf('second').filter((e) => e.reason === 'RetentionDeferred')).toEqual([]);
  });

  it("keeps the data of a Checkpoint a Deployment's pod template restores from, until the template no longer names it", async () => {
    const web = await checkpoint('web');
    const deployment = (templateAnnotations: Record<string, string>) => ({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web', namespace: 'shop' },
      spec: {
        selector: { matchLabels: { app: 'web' } },
        template: { metadata: { labels: { app: 'web' }, annotations: templateAnnotations }, spec: { containers: [{ name: 'app', image: 'shop/orders:1' }] } },
      },
    });
    api.put(deployment({ [annotations.RESTORE_FROM]: 'web' }));

    const after = await checkpoint('after-web');
    expect(get('web')?.status?.phase).toBe('Succeeded');
    expect(await archivesOf('orders-0')).toEqual([archiveName(web), archiveName(after)].sort());
    expect(eventsOf('web').filter((e) => e.reason === 'RetentionDeferred').map((e) => e.note)).toEqual(['retention would remove its data, but keeps it: Deployment web restores from it']);
    expect(await metrics()).toMatch(/^cryo_retention_deferred_checkpoints\{store="directory",cause="workload"\} 1$/m);

    api.put(deployment({}));
    await fakes.agent.checkpoints.applyRetentionEverywhere();
    expect(get('web')?.status?.phase).toBe('Expired');
    expect(await archivesOf('orders-0')).toEqual([archiveName(after)]);
  });

  it('keeps data when who restores from it cannot be read, and says so', async () => {
    const unread = await checkpoint('unread');
    api.failNext({ pathPrefix: '/apis/batch/v1/namespaces/shop/cronjobs', status: 403, message: 'cronjobs.batch is forbidden' });
    await checkpoint('after-unread');
    expect(get('unread')?.status?.phase).toBe('Succeeded');
    const [event] = eventsOf('unread').filter((e) => e.reason === 'RetentionDeferred');
    expect(event?.note).toMatch(/could not be read \(.*403.*\); it stays until that can be read/);
    expect(await metrics()).toMatch(/^cryo_retention_deferred_checkpoints\{store="directory",cause="unknown"\} 1$/m);

    // Readable again: the next run removes it.
    await fakes.agent.checkpoints.applyRetentionEverywhere();
    expect(get(unread.metadata!.name!)?.status?.phase).toBe('Expired');
  });

  it('reports stored data whose Checkpoint no longer exists, and leaves it', async () => {
    // Data of a Checkpoint deleted with cryo.dev/keep-data: nothing in the API names it any more.
    const gonePod = { name: 'gone-0', namespace: 'shop', uid: randomUUID() };
    const archive = await readCheckpointArchive((await buildCheckpointArchive({ dir: fakes.dir, pod: gonePod, containerName: 'app', fileName: 'gone.tar' })).path);
    await new DirectoryStore({ root: fakes.storeDir, logger: silentLogger() }).store({ archive, checkpoint: { namespace: 'shop', name: 'gone', uid: randomUUID() }, pod: gonePod, containerName: 'app' });
    expect(await metrics()).toMatch(/^cryo_orphaned_checkpoints\{store="directory"\} 0$/m);

    await fakes.agent.checkpoints.applyRetentionEverywhere();
    expect(await metrics()).toMatch(/^cryo_orphaned_checkpoints\{store="directory"\} 1$/m);
    expect(await archivesOf('gone-0')).toHaveLength(1);
  });
});

describe('orphaned data without a retention limit', () => {
  let fakes: AgentOnFakes;

  beforeAll(async () => {
    fakes = await startAgentOnFakes('cryo-agent-orphans-');
  });

  afterAll(async () => {
    await fakes?.stop();
  });

  it("is found by the periodic run in the agent's --directory, when no Checkpoint of it remains too, and left there", async () => {
    const archive = await buildCheckpointArchive({ dir: fakes.checkpointsDir, pod: fakes.pod, containerName: 'app', fileName: 'left.tar' });
    const left = await fakes.checkpointAnswering('left', archive.path);
    expect(left.status?.phase, left.status?.message).toBe('Succeeded');
    await fakes.agent.checkpoints.applyRetentionEverywhere();
    expect((await fakes.agent.metrics.render()).body).toMatch(/^cryo_orphaned_checkpoints\{store="directory"\} 0$/m);

    // Its Checkpoint gone without the agent (as when its finalizer is removed by hand): the data stays behind.
    fakes.api.remove('cryo.dev/v1alpha1', 'checkpoints', 'shop', 'left');
    // The agent learns of it through its watch, in order: once it has failed a Checkpoint created after, it knows.
    fakes.api.put({ apiVersion: 'cryo.dev/v1alpha1', kind: 'Checkpoint', metadata: { name: 'marker', namespace: 'shop' }, spec: { podName: 'nowhere-0' } });
    await waitFor(() => fakes.api.get<Checkpoint>('cryo.dev/v1alpha1', 'checkpoints', 'shop', 'marker')?.status?.reason === 'PodNotFound', { timeoutMs: 10_000, intervalMs: 20, what: 'the agent to fail the marker Checkpoint' });

    await fakes.agent.checkpoints.applyRetentionEverywhere();
    expect((await fakes.agent.metrics.render()).body).toMatch(/^cryo_orphaned_checkpoints\{store="directory"\} 1$/m);
    expect((await readdir(join(fakes.storeDir, 'shop', 'orders-0', 'app'))).filter((f) => f.endsWith('.tar'))).toEqual([`left-${left.metadata!.uid!.slice(0, 8)}.tar`]);
  });
});
