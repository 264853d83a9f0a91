/**
 * Retention never leaves a Checkpoint naming data that is gone, and never reaches past its node:
 * the whole agent (startNodeAgent) with --retention-max-count 1, against the shared fake
 * kube-apiserver and the shared kubelet stand-in, storing archives the tests build into a
 * directory store that another node's agent shares.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger, type Checkpoint } from '@cryo/common';
import { readNodeAgentConfig, startNodeAgent, type RunningNodeAgent } from '../../node-agent/src/index.ts';
import { readCheckpointArchive } from '../../node-agent/src/archive/checkpoint-archive.ts';
import { DirectoryStore } from '../../node-agent/src/storage/directory/directory-store.ts';
import { buildCheckpointArchive, FakeKubeApiServer, FakeKubelet, waitFor } from '../src/index.ts';

const TOKEN = 'node-agent-sa-token';

describe('retention in the node agent', () => {
  let dir: string;
  let api: FakeKubeApiServer;
  let kubelet: FakeKubelet;
  let agent: RunningNodeAgent;
  let checkpointsDir: string;
  let storeDir: string;
  const podUid = randomUUID();
  const pod = { name: 'orders-0', namespace: 'shop', uid: podUid };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cryo-agent-retention-'));
    checkpointsDir = join(dir, 'kubelet', 'checkpoints');
    storeDir = join(dir, 'store');
    api = await FakeKubeApiServer.start();
    kubelet = await FakeKubelet.start({ checkpointsDir, token: TOKEN });
    await writeFile(join(dir, 'token'), TOKEN);
    await writeFile(join(dir, 'kubelet-ca.crt'), kubelet.caPem);
    api.put({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'orders-0', namespace: 'shop', uid: podUid },
      spec: { nodeName: 'node-a', containers: [{ name: 'app', image: 'shop/orders:1' }] },
      status: { phase: 'Running', containerStatuses: [{ name: 'app', ready: true, restartCount: 0, image: 'shop/orders:1', imageID: '', state: { running: {} } }] },
    });
    const flags = [
      '--node-name', 'node-a', '--host-hooks-dir', join(dir, 'hooks'), '--port', '0',
      '--kubelet-url', kubelet.url, '--kubelet-ca-file', join(dir, 'kubelet-ca.crt'), '--token-file', join(dir, 'token'),
      '--kubelet-checkpoints-dir', checkpointsDir, '--directory', storeDir, '--directory-shared', 'true', '--directory-registry-address', '',
      '--retention-max-count', '1',
    ];
    agent = await startNodeAgent(readNodeAgentConfig(flags, {}), { kubeConfig: api.kubeConfig(), logger: silentLogger(), host: '127.0.0.1' });
  });

  afterAll(async () => {
    await agent?.stop();
    await kubelet?.close();
    await api?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const get = (name: string): Checkpoint | undefined => api.get('cryo.dev/v1alpha1', 'checkpoints', 'shop', name);
  const archivesInStore = async () => (await readdir(join(storeDir, 'shop', 'orders-0', 'app'))).filter((f) => f.endsWith('.tar')).sort();

  /** A checkpoint of orders-0/app by this node's agent, of a fresh archive. */
  async function checkpoint(name: string): Promise<Checkpoint> {
    const archive = await buildCheckpointArchive({ dir: checkpointsDir, pod, containerName: 'app', fileName: `${name}.tar` });
    kubelet.failNext({ status: 200, body: JSON.stringify({ items: [archive.path] }) });
    api.put({ apiVersion: 'cryo.dev/v1alpha1', kind: 'Checkpoint', metadata: { name, namespace: 'shop' }, spec: { podName: 'orders-0' } });
    return waitFor(() => (get(name)?.status?.phase === 'Succeeded' || get(name)?.status?.phase === 'Failed' ? get(name) : undefined), { timeoutMs: 20_000, intervalMs: 50, what: `Checkpoint ${name} to finish` });
  }

  it("marks Expired a Checkpoint whose data it removed, leaves another node's alone, and the newest Succeeded", async () => {
    // Another node's agent stored this one into the shared directory first (the oldest of the group).
    const theirsUid = randomUUID();
    api.put({ apiVersion: 'cryo.dev/v1alpha1', kind: 'Checkpoint', metadata: { name: 'theirs', namespace: 'shop', uid: theirsUid }, spec: { podName: 'orders-0' } });
    const theirArchive = await readCheckpointArchive((await buildCheckpointArchive({ dir, pod, containerName: 'app', fileName: 'theirs.tar' })).path);
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
    const events: Array<{ reason: string; regarding: { name: string } }> = api.list('events.k8s.io/v1', 'events', 'shop');
    expect(events.some((e) => e.reason === 'CheckpointExpired' && e.regarding.name === 'first')).toBe(true);
    expect(get('second')?.status?.phase).toBe('Succeeded');
    expect(get('theirs')?.status).toMatchObject({ phase: 'Succeeded', nodeName: 'node-b' });
    expect(await archivesInStore()).toEqual([`second-${second.metadata!.uid!.slice(0, 8)}.tar`, `theirs-${theirsUid.slice(0, 8)}.tar`].sort());
  });
});
