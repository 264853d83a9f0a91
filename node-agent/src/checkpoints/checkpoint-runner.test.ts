import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { silentLogger, type Checkpoint } from '@cryo/common';
import type { CheckpointArchiveInfo, CheckpointEngine } from '../archive/checkpoint-archive-info.ts';
import type { CheckpointStore } from '../storage/checkpoint-store.ts';
import { CheckpointRunner } from './checkpoint-runner.ts';

const pod: V1Pod = { metadata: { namespace: 'shop', name: 'orders-0', uid: 'pod-uid-1' }, spec: { nodeName: 'node-a', containers: [{ name: 'app', image: 'shop/orders:1' }] } };
const checkpoint: Checkpoint = { metadata: { namespace: 'shop', name: 'orders-warm', uid: 'ckpt-uid-1' }, spec: { podName: 'orders-0' } };

async function runWithEngine(engine: CheckpointEngine) {
  const archive: CheckpointArchiveInfo = {
    path: '/kubelet/app.tar', sizeBytes: 10, containerName: 'app', baseImage: 'shop/orders:1', baseImageId: '', runtime: 'runc',
    engine, checkpointedTime: '', pod: { name: 'orders-0', namespace: 'shop', uid: 'pod-uid-1' }, mountDestinations: [], criuVersion: '',
  };
  const store: CheckpointStore = {
    kind: 'registry',
    store: () => Promise.resolve({ restoreReference: `r/app@sha256:${'a'.repeat(64)}`, referenceType: 'image', sizeBytes: 10, digest: `sha256:${'a'.repeat(64)}`, durationMs: 1 }),
    storePodCheckpoint: () => Promise.resolve({ reference: `r/pod@sha256:${'b'.repeat(64)}`, referenceType: 'image-index', digest: `sha256:${'b'.repeat(64)}` }),
    list: () => Promise.resolve([]),
    applyRetention: () => Promise.resolve({ kept: [], removed: [] }),
  };
  const runner = new CheckpointRunner({
    hooks: { hasPod: () => false, prepare: () => Promise.reject(new Error('no hooks')), finish: () => Promise.resolve() },
    kubelet: { checkpoint: () => Promise.resolve({ archivePath: archive.path, durationMs: 5 }) },
    readArchive: () => Promise.resolve(archive),
    removeKubeletArchive: () => Promise.resolve(),
    logger: silentLogger(),
    hookTimeoutMs: 1_000,
    kubeletTimeoutSeconds: 10,
  });
  return runner.run(checkpoint, pod, ['app'], store);
}

describe('CheckpointRunner records the runtime that took each container', () => {
  it.each([
    ['containerd', { runtime: 'containerd' }],
    ['cri-o', { runtime: 'cri-o' }],
  ] as const)('%s: the status names it, so that the webhook restores only on nodes of that runtime', async (engine, expected) => {
    const result = await runWithEngine(engine);
    expect(result.phase).toBe('Succeeded');
    expect(result.phase === 'Succeeded' && result.containers).toEqual([expect.objectContaining({ name: 'app', ...expected })]);
  });

  it('podman: none (no kubelet writes such an archive, and no node restores it)', async () => {
    const result = await runWithEngine('podman');
    expect(result.phase === 'Succeeded' && 'runtime' in result.containers[0]).toBe(false);
  });
});
