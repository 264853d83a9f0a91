/**
 * Retention never leaves a Checkpoint naming data that is gone, and never reaches past its node:
 * the whole agent (startNodeAgent) with --retention-max-count 1, against the shared fake
 * kube-apiserver and the shared kubelet stand-in (agent-on-fakes.ts), storing archives the tests build into a
 * directory store that another node's agent shares.
 */
import { randomUUID } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger, type Checkpoint } from '@cryo/common';
import { readCheckpointArchive, DirectoryStore } from '@cryo/node-agent';
import { buildCheckpointArchive, waitFor } from '@cryo/test';
import { startAgentOnFakes, type AgentOnFakes } from './agent-on-fakes.ts';

describe('retention in the node agent', () => {
  let fakes: AgentOnFakes;
  let api: AgentOnFakes['api'];
  let storeDir: string;
  let pod: AgentOnFakes['pod'];

  beforeAll(async () => {
    fakes = await startAgentOnFakes('cryo-agent-retention-', ['--directory-shared', '--retention-max-count', '1']);
    ({ api, storeDir, pod } = fakes);
  });

  afterAll(async () => {
    await fakes?.stop();
  });

  const get = (name: string): Checkpoint | undefined => api.get('cryo.dev/v1alpha1', 'checkpoints', 'shop', name);
  const archivesInStore = async () => (await readdir(join(storeDir, 'shop', 'orders-0', 'app'))).filter((f) => f.endsWith('.tar')).sort();

  /** A checkpoint of orders-0/app by this node's agent, of a fresh archive. */
  async function checkpoint(name: string): Promise<Checkpoint> {
    const archive = await buildCheckpointArchive({ dir: fakes.checkpointsDir, pod, containerName: 'app', fileName: `${name}.tar` });
    return fakes.checkpointAnswering(name, archive.path);
  }

  it("marks Expired a Checkpoint whose data it removed, leaves another node's alone, and the newest Succeeded", async () => {
    // Another node's agent stored this one into the shared directory first (the oldest of the group).
    const theirsUid = randomUUID();
    api.put({ apiVersion: 'cryo.dev/v1alpha1', kind: 'Checkpoint', metadata: { name: 'theirs', namespace: 'shop', uid: theirsUid }, spec: { podName: 'orders-0' } });
    const theirArchive = await readCheckpointArchive((await buildCheckpointArchive({ dir: fakes.dir, pod, containerName: 'app', fileName: 'theirs.tar' })).path);
    const otherNodesStore = new DirectoryStore({ root: storeDir, logger: silentLogger(), now: () => new Date(Date.now() - 3_600_000) });
    await otherNodesStore.store({ archive: theirArchive, checkpoint: { namespace: 'shop', name: 'theirs', uid: theirsUid }, pod, containerName: 'app' });
    const theirs = get('theirs')!;
    api.put({ ...theirs, status: { phase: 'Succeeded', nodeName: 'node-b', message: 'checkpointed 1 container into the directory store' } });

    const first = await checkpoint('first');
    expect(first.status?.phase, first.status?.message).toBe('Succeeded');
    const second = await checkpoint('second');
    expect(second.status?.phase, second.status?.message).toBe('Succeeded');

    // Keep 1 per container: the first goes, and says so; node-b's stays for node-b's agent.
    const expired = await waitFor(() => (get('first')?.status?.phase === 'Expired' ? get('first') : undefined), { timeoutMs: 10_000, intervalMs: 50, what: 'the first Checkpoint to expire' });
    expect(expired.status).toMatchObject({ nodeName: 'node-a', message: expect.stringMatching(/^retention removed its data on .* \(keep at most 1 per container\); take a new Checkpoint to restore from$/) });
    // The Event is written after the status, so it may come a moment later.
    await waitFor(
      () => api.list<{ reason: string; regarding: { name: string } }>('events.k8s.io/v1', 'events', 'shop').some((e) => e.reason === 'RetentionRemoved' && e.regarding.name === 'first'),
      { timeoutMs: 10_000, intervalMs: 50, what: 'the RetentionRemoved Event of the first Checkpoint' },
    );
    expect(get('second')?.status?.phase).toBe('Succeeded');
    expect(get('theirs')?.status).toMatchObject({ phase: 'Succeeded', nodeName: 'node-b' });
    expect(await archivesInStore()).toEqual([`second-${second.metadata!.uid!.slice(0, 8)}.tar`, `theirs-${theirsUid.slice(0, 8)}.tar`].sort());
  });
});

describe('retention between checkpoints', () => {
  let fakes: AgentOnFakes;

  beforeAll(async () => {
    fakes = await startAgentOnFakes('cryo-agent-retention-age-', ['--retention-max-age', '3s', '--retention-interval', '1s']);
  });

  afterAll(async () => {
    await fakes?.stop();
  });

  it('expires a Checkpoint past --retention-max-age with no checkpoint after it: retention also runs every --retention-interval', async () => {
    const archive = await buildCheckpointArchive({ dir: fakes.checkpointsDir, pod: fakes.pod, containerName: 'app', fileName: 'aging.tar' });
    const done = await fakes.checkpointAnswering('aging', archive.path);
    expect(done.status?.phase, done.status?.message).toBe('Succeeded');
    const get = (): Checkpoint | undefined => fakes.api.get('cryo.dev/v1alpha1', 'checkpoints', 'shop', 'aging');
    // Young at first: kept by the run right after it.
    expect(get()?.status?.phase).toBe('Succeeded');
    const expired = await waitFor(() => (get()?.status?.phase === 'Expired' ? get() : undefined), { timeoutMs: 15_000, intervalMs: 100, what: 'the Checkpoint to expire by age' });
    expect(expired.status).toMatchObject({ reason: 'RetentionRemoved', message: expect.stringContaining('none older than 3s') });
    expect((await readdir(join(fakes.storeDir, 'shop', 'orders-0', 'app'))).filter((f) => f.endsWith('.tar'))).toEqual([]);
  }, 30_000);
});
