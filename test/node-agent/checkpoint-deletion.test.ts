/**
 * Deleting a Checkpoint removes what it stored: the agent that claimed it holds a finalizer
 * (cryo.dev/stored-data) from before anything is stored, removes the data when the Checkpoint is
 * deleted, then lets it go — or keeps the data when the Checkpoint says cryo.dev/keep-data: "true".
 * The whole agent against the shared fake kube-apiserver and kubelet stand-in (agent-on-fakes.ts),
 * with a directory store; deletions go through the API as a user's kubectl delete does.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHECKPOINT_DATA_FINALIZER, CHECKPOINT_GROUP, CHECKPOINT_PLURAL, CHECKPOINT_VERSION, type Checkpoint } from '@cryo/common';
import { buildCheckpointArchive, waitFor } from '@cryo/test';
import { startAgentOnFakes, type AgentOnFakes } from './agent-on-fakes.ts';

describe('deleting a Checkpoint', () => {
  let fakes: AgentOnFakes;
  let user: CustomObjectsApi;

  beforeAll(async () => {
    fakes = await startAgentOnFakes('cryo-agent-deletion-');
    user = fakes.api.kubeConfig().makeApiClient(CustomObjectsApi);
  });

  afterAll(async () => {
    await fakes?.stop();
  });

  const where = { group: CHECKPOINT_GROUP, version: CHECKPOINT_VERSION, plural: CHECKPOINT_PLURAL, namespace: 'shop' };
  const get = (name: string): Checkpoint | undefined => fakes.api.get('cryo.dev/v1alpha1', 'checkpoints', 'shop', name);
  const stored = async () => (await readdir(join(fakes.storeDir, 'shop', 'orders-0', 'app')).catch(() => [])).filter((f) => f.endsWith('.tar')).sort();
  const gone = (name: string) => waitFor(() => get(name) === undefined, { timeoutMs: 10_000, intervalMs: 50, what: `Checkpoint ${name} to be gone` });

  async function checkpoint(name: string): Promise<Checkpoint> {
    const archive = await buildCheckpointArchive({ dir: fakes.checkpointsDir, pod: fakes.pod, containerName: 'app', fileName: `${name}.tar` });
    const done = await fakes.checkpointAnswering(name, archive.path);
    expect(done.status?.phase, done.status?.message).toBe('Succeeded');
    return done;
  }

  it('removes its data first, then the Checkpoint goes; other Checkpoints’ data stays', async () => {
    await checkpoint('kept-around');
    const doomed = await checkpoint('doomed');
    expect(doomed.metadata?.finalizers).toEqual([CHECKPOINT_DATA_FINALIZER]);
    const archive = doomed.status!.containers![0].restoreReference;
    expect(await stored()).toHaveLength(2);

    await user.deleteNamespacedCustomObject({ ...where, name: 'doomed' });
    await gone('doomed');
    expect(await stored()).toEqual([expect.stringContaining('kept-around')]);
    expect((await stored()).map((f) => join(fakes.storeDir, 'shop', 'orders-0', 'app', f))).not.toContain(archive);
    expect((await fakes.agent.metrics.render()).body).toMatch(/^cryo_checkpoint_deletions_total\{result="removed"\} 1$/m);
  });

  it('keeps the data of a Checkpoint annotated cryo.dev/keep-data: "true", and lets it go', async () => {
    await checkpoint('archived');
    const before = await stored();
    await user.patchNamespacedCustomObject({ ...where, name: 'archived', body: { metadata: { annotations: { 'cryo.dev/keep-data': 'true' } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    await user.deleteNamespacedCustomObject({ ...where, name: 'archived' });
    await gone('archived');
    expect(await stored()).toEqual(before);
    expect(before.some((f) => f.includes('archived'))).toBe(true);
  });

  it('lets a failed Checkpoint go at once: it stored nothing', async () => {
    fakes.kubelet.failNext({ status: 500, body: 'runtime exploded' });
    fakes.api.put({ apiVersion: 'cryo.dev/v1alpha1', kind: 'Checkpoint', metadata: { name: 'broken', namespace: 'shop' }, spec: { podName: 'orders-0' } });
    const failed = await waitFor(() => (get('broken')?.status?.phase === 'Failed' ? get('broken') : undefined), { timeoutMs: 20_000, intervalMs: 50, what: 'the Checkpoint to fail' });
    expect(failed.metadata?.finalizers).toEqual([CHECKPOINT_DATA_FINALIZER]);
    const before = await stored();
    await user.deleteNamespacedCustomObject({ ...where, name: 'broken' });
    await gone('broken');
    expect(await stored()).toEqual(before);
  });
});
