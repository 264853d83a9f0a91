import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { parsePodCheckpoint, silentLogger, type Checkpoint } from '@cryo/common';
import type { CheckpointArchiveInfo } from '../archive/checkpoint-archive-info.ts';
import type { CheckpointStore, StoredCheckpoint } from '../storage/checkpoint-store.ts';
import { CheckpointRunner } from './checkpoint-runner.ts';
import { podCheckpointOf } from './pod-checkpoint-document.ts';

const pod: V1Pod = {
  metadata: { namespace: 'shop', name: 'orders-0', uid: 'pod-uid-1', labels: { app: 'orders' }, annotations: { team: 'a', 'kubectl.kubernetes.io/last-applied-configuration': '{"big":true}' } },
  spec: { nodeName: 'node-a', containers: [{ name: 'app', image: 'shop/orders:1' }, { name: 'proxy', image: 'shop/proxy:1' }, { name: 'sidecar', image: 'shop/counter:1' }] },
};
const checkpoint: Checkpoint = { metadata: { namespace: 'shop', name: 'orders-warm', uid: 'ckpt-uid-1' }, spec: { podName: 'orders-0' } };
const stored = (name: string): StoredCheckpoint => ({ restoreReference: `/store/${name}.tar`, referenceType: 'archive', sizeBytes: 10, digest: `sha256:${name}`, durationMs: 1 });

describe('podCheckpointOf', () => {
  it('records the pod as it ran and its containers in the spec’s order, naming those left out', () => {
    const document = podCheckpointOf({
      checkpoint,
      pod,
      containers: [{ name: 'sidecar', stored: stored('sidecar'), mountDestinations: [] }, { name: 'app', stored: stored('app'), mountDestinations: ['/data'] }],
      createdAt: new Date('2026-12-01T12:00:00Z'),
    });
    expect(parsePodCheckpoint(JSON.parse(JSON.stringify(document)))).toEqual(document);
    expect(document).toMatchObject({
      apiVersion: 'cryo.dev/v1alpha1',
      kind: 'PodCheckpoint',
      checkpoint: { namespace: 'shop', name: 'orders-warm', uid: 'ckpt-uid-1' },
      createdAt: '2026-12-01T12:00:00.000Z',
      nodeName: 'node-a',
      pod: { name: 'orders-0', uid: 'pod-uid-1', labels: { app: 'orders' }, annotations: { team: 'a' }, spec: pod.spec },
      notCheckpointed: ['proxy'],
    });
    expect(document.containers).toEqual([
      { name: 'app', image: 'shop/orders:1', restoreReference: '/store/app.tar', referenceType: 'archive', digest: 'sha256:app', sizeBytes: 10, mountDestinations: ['/data'] },
      { name: 'sidecar', image: 'shop/counter:1', restoreReference: '/store/sidecar.tar', referenceType: 'archive', digest: 'sha256:sidecar', sizeBytes: 10, mountDestinations: [] },
    ]);
  });

  it('is told apart from other JSON when read back', () => {
    expect(parsePodCheckpoint({ kind: 'Pod' })).toMatch(/not a cryo.dev\/v1alpha1 PodCheckpoint/);
    expect(parsePodCheckpoint(null)).toBe('not a JSON object');
  });
});

describe('CheckpointRunner and the pod checkpoint', () => {
  it('succeeds with the containers stored when the pod checkpoint cannot be, and says so', async () => {
    const archive = (path: string): CheckpointArchiveInfo => ({ path, sizeBytes: 10, containerName: 'app', baseImage: 'shop/orders:1', baseImageId: '', runtime: 'crun', engine: 'cri-o', checkpointedTime: '', pod: { name: 'orders-0', namespace: 'shop', uid: 'pod-uid-1' }, mountDestinations: [], criuVersion: '' });
    const store: CheckpointStore = {
      kind: 'directory',
      store: (request) => Promise.resolve(stored(request.containerName)),
      storePodCheckpoint: () => Promise.reject(new Error('disk quota exceeded')),
      list: () => Promise.resolve([]),
      applyRetention: () => Promise.resolve({ kept: [], removed: [] }),
      removeCheckpoint: () => Promise.resolve([]),
    };
    const runner = new CheckpointRunner({
      hooks: { hasPod: () => false, prepare: () => Promise.reject(new Error('no hooks')), finish: () => Promise.resolve() },
      kubelet: { checkpoint: (_ns, _pod, container) => Promise.resolve({ archivePath: `/kubelet/${container}.tar`, durationMs: 5 }) },
      readArchive: (path) => Promise.resolve(archive(path)),
      removeKubeletArchive: () => Promise.resolve(),
      logger: silentLogger(),
      hookTimeoutMs: 1_000,
      kubeletTimeoutSeconds: 10,
    });
    const result = await runner.run(checkpoint, pod, ['app'], store);
    expect(result).toMatchObject({ phase: 'Succeeded', containers: [{ name: 'app', restoreReference: '/store/app.tar' }] });
    expect(result.phase === 'Succeeded' && result.message).toBe("checkpointed 1 container into the directory store; the pod checkpoint document could not be stored (disk quota exceeded), each container's checkpoint is complete");
    expect('podCheckpoint' in result).toBe(false);
  });
});
