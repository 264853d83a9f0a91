/**
 * Uninstalling as the README says (README.md, "Uninstall"): Checkpoints first, while the node
 * agents still run, since only an agent removes the data a Checkpoint stored and then its finalizer
 * cryo.dev/stored-data; then `kubectl delete -k manifests/`, which stops the agents and deletes the
 * CRDs (a CRD with a Checkpoint left waiting on its finalizer would never go). And the other
 * order, agents gone first: a Checkpoint then waits until the administrator removes the finalizer,
 * and its data stays. The whole agent on the fakes (agent-on-fakes.ts) with its directory store.
 */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { annotations, CHECKPOINT_DATA_FINALIZER, CHECKPOINT_GROUP, CHECKPOINT_PLURAL, CHECKPOINT_VERSION, type Checkpoint, type CheckpointList } from '@cryo/common';
import { buildCheckpointArchive, waitFor } from '@cryo/test';
import { startAgentOnFakes, type AgentOnFakes } from './agent-on-fakes.ts';

const where = { group: CHECKPOINT_GROUP, version: CHECKPOINT_VERSION, plural: CHECKPOINT_PLURAL };

describe('uninstalling Cryo', () => {
  let fakes: AgentOnFakes | undefined;
  let agentStopped = false;
  afterEach(async () => {
    if (fakes === undefined) return;
    if (!agentStopped) await fakes.stop();
    else {
      await fakes.kubelet.close();
      await fakes.api.stop();
      await rm(fakes.dir, { recursive: true, force: true });
    }
    fakes = undefined;
    agentStopped = false;
  });

  const admin = () => fakes!.api.kubeConfig().makeApiClient(CustomObjectsApi);
  const list = async () => ((await admin().listClusterCustomObject(where)) as CheckpointList).items;
  const stored = async () => (await readdir(join(fakes!.storeDir, 'shop', 'orders-0', 'app')).catch(() => [])).filter((f) => f.endsWith('.tar')).sort();
  const stopAgent = async () => {
    await fakes!.agent.stop();
    agentStopped = true;
  };

  async function checkpoint(name: string): Promise<Checkpoint> {
    const archive = await buildCheckpointArchive({ dir: fakes!.checkpointsDir, pod: fakes!.pod, containerName: 'app', fileName: `${name}.tar` });
    const done = await fakes!.checkpointAnswering(name, archive.path);
    expect(done.status?.phase, done.status?.message).toBe('Succeeded');
    expect(done.metadata?.finalizers).toEqual([CHECKPOINT_DATA_FINALIZER]);
    return done;
  }

  it('Checkpoints first (kubectl delete checkpoints --all -A), then the manifests: every Checkpoint goes, its data with it unless kept', async () => {
    fakes = await startAgentOnFakes('cryo-uninstall-');
    await checkpoint('dropped');
    await checkpoint('archived');
    await admin().patchNamespacedCustomObject(
      { ...where, namespace: 'shop', name: 'archived', body: { metadata: { annotations: { [annotations.KEEP_DATA]: 'true' } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );

    // kubectl delete checkpoints --all -A: every one listed, then deleted.
    for (const item of await list()) await admin().deleteNamespacedCustomObject({ ...where, namespace: item.metadata!.namespace!, name: item.metadata!.name! });
    await waitFor(async () => (await list()).length === 0, { timeoutMs: 10_000, intervalMs: 50, what: 'every Checkpoint to be gone' });
    expect(await stored()).toEqual([expect.stringContaining('archived')]);

    // kubectl delete -k manifests/ stops the agents; nothing is left for the CRD's deletion to wait on.
    await stopAgent();
    expect(await list()).toEqual([]);
  });

  it('the agents gone first: a deleted Checkpoint waits on its finalizer until the administrator removes it, and its data stays', async () => {
    fakes = await startAgentOnFakes('cryo-uninstall-late-');
    await checkpoint('left-behind');
    await stopAgent();

    await admin().deleteNamespacedCustomObject({ ...where, namespace: 'shop', name: 'left-behind' });
    const waiting = (await list())[0];
    expect(waiting?.metadata?.deletionTimestamp).toBeDefined();
    expect(waiting?.metadata?.finalizers).toEqual([CHECKPOINT_DATA_FINALIZER]);

    // README: kubectl patch ckpt <name> --type=json -p '[{"op":"remove","path":"/metadata/finalizers"}]'
    await admin().patchNamespacedCustomObject(
      { ...where, namespace: 'shop', name: 'left-behind', body: [{ op: 'remove', path: '/metadata/finalizers' }] },
      setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
    );
    await waitFor(async () => (await list()).length === 0, { timeoutMs: 10_000, intervalMs: 50, what: 'the Checkpoint to be gone' });
    expect(await stored()).toEqual([expect.stringContaining('left-behind')]);
  });
});
