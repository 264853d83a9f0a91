import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildCheckpointArchive } from '@cryo/test';
import { CHECKPOINT_API_VERSION, POD_CHECKPOINT_KIND, type PodCheckpoint } from '@cryo/common';
import { readCheckpointArchive } from '../../archive/checkpoint-archive.ts';
import type { StoreRequest } from '../checkpoint-store.ts';
import { CHECKPOINT_MARKERS } from './checkpoint-annotations.ts';
import { buildCheckpointImage, buildPodCheckpointIndex, OCI_LAYER_TAR_ZSTD } from './checkpoint-image.ts';

const request: StoreRequest = {
  archive: {
    path: '/var/lib/kubelet/checkpoints/x.tar',
    sizeBytes: 1234,
    containerName: 'app',
    baseImage: '127.0.0.1:5000/shop/app:1',
    baseImageId: 'sha256:abc',
    runtime: 'runc',
    engine: 'cri-o',
    checkpointedTime: '2026-12-01T10:00:00Z',
    pod: { name: 'app-0', namespace: 'shop', uid: 'u-1' },
    mountDestinations: ['/data'],
    criuVersion: '4.2',
  },
  checkpoint: { namespace: 'shop', name: 'warm', uid: 'c-1' },
  pod: { namespace: 'shop', name: 'app-0', uid: 'u-1' },
  containerName: 'app',
};
const host = { arch: 'amd64', kernel: '6.18.0', cgroupVersion: 'v2' };
const created = new Date('2026-12-01T10:01:00Z');
const layer = { digest: `sha256:${'a'.repeat(64)}`, size: 1234 };

describe('buildCheckpointImage', () => {
  const image = buildCheckpointImage(request, layer, host, created);
  const manifest = JSON.parse(image.manifest.bytes.toString()) as { annotations: Record<string, string> };
  const config = JSON.parse(image.config.bytes.toString()) as { config: { Labels: Record<string, string> } };

  it('is an OCI manifest of one uncompressed layer (the archive) and a config naming it as diff_id', () => {
    expect(manifest).toMatchObject({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: image.config.digest, size: image.config.bytes.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }],
    });
    expect(config).toMatchObject({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layer.digest] } });
    expect(image.manifest.digest).toBe(`sha256:${createHash('sha256').update(image.manifest.bytes).digest('hex')}`);
  });

  it('names a zstd layer by its compressed digest and size, and the uncompressed tar as diff_id, as runtimes check a pulled layer', () => {
    const zstdLayer = { mediaType: OCI_LAYER_TAR_ZSTD, digest: `sha256:${'b'.repeat(64)}`, size: 321, diffId: layer.digest };
    const compressed = buildCheckpointImage(request, zstdLayer, host, created);
    const zstdManifest = JSON.parse(compressed.manifest.bytes.toString()) as { layers: unknown[]; config: { digest: string } };
    expect(zstdManifest.layers).toEqual([{ mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd', digest: zstdLayer.digest, size: 321 }]);
    expect(JSON.parse(compressed.config.bytes.toString())).toMatchObject({ rootfs: { type: 'layers', diff_ids: [layer.digest] } });
    // The same checkpoint either way but for the layer: the annotations do not change.
    expect(compressed.annotations).toEqual(image.annotations);
    expect(zstdManifest.config.digest).toBe(compressed.config.digest);
  });

  it('carries the marker CRI-O and the one containerd takes a checkpoint image by, both naming the container', () => {
    expect(manifest.annotations).toMatchObject({
      'io.kubernetes.cri-o.annotations.checkpoint.name': 'app',
      // containerd 2.1 knows only this one, and ignores CRI-O's.
      'org.criu.checkpoint.container.name': 'app',
    });
    expect(Object.values(CHECKPOINT_MARKERS).map((key) => manifest.annotations[key])).toEqual(['app', 'app']);
  });

  it('carries the marker of each runtime family and Cryo\'s own annotations', () => {
    expect(manifest.annotations).toMatchObject({
      'io.kubernetes.cri-o.annotations.checkpoint.name': 'app',
      'io.kubernetes.cri-o.annotations.checkpoint.rootfsImageName': '127.0.0.1:5000/shop/app:1',
      'org.criu.checkpoint.container.name': 'app',
      'org.criu.checkpoint.engine.name': 'CRI-O',
      'org.criu.checkpoint.runtime.name': 'runc',
      'org.criu.checkpoint.host.arch': 'amd64',
      'org.criu.checkpoint.criu.version': '4.2',
      'io.podman.annotations.checkpoint.runtime.name': 'runc',
      'io.podman.annotations.checkpoint.cgroups.version': 'v2',
      'dev.cryo.checkpoint.namespace': 'shop',
      'dev.cryo.checkpoint.name': 'warm',
      'dev.cryo.checkpoint.created': '2026-12-01T10:01:00.000Z',
      'dev.cryo.checkpoint.mount-destinations': '["/data"]',
    });
    expect(config.config.Labels['dev.cryo.checkpoint.uid']).toBe('c-1');
  });

  it('leaves out what the archive does not know', () => {
    const bare = buildCheckpointImage({ ...request, archive: { ...request.archive, baseImage: '', baseImageId: '', criuVersion: '' } }, layer, host, created);
    const annotations = (JSON.parse(bare.manifest.bytes.toString()) as { annotations: Record<string, string> }).annotations;
    expect(Object.keys(annotations).filter((k) => /rootfsImage|rawImageName|criu\.version/.test(k))).toEqual([]);
    expect(Object.values(annotations)).not.toContain('');
  });

  it('describes a containerd archive as checkpointctl build would: engine, its shim, the digest-pinned base image', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'cryo-image-'));
    try {
      const archive = await readCheckpointArchive((await buildCheckpointArchive({ dir, engine: 'containerd', image: '127.0.0.1:5000/shop/app:1' })).path);
      const annotations = buildCheckpointImage({ ...request, archive }, layer, host, created).annotations;
      expect(annotations).toMatchObject({
        'io.kubernetes.cri-o.annotations.checkpoint.name': 'app',
        'org.criu.checkpoint.container.name': 'app',
        'org.criu.checkpoint.engine.name': 'containerd',
        'org.criu.checkpoint.runtime.name': 'io.containerd.runc.v2',
        'org.criu.checkpoint.rootfsImageName': '127.0.0.1:5000/shop/app:1',
        // config.dump's rootfsImageRef, what containerd's restore pulls.
        'org.criu.checkpoint.rootfsImageID': archive.baseImageId,
        'dev.cryo.checkpoint.mount-destinations': '["/data","/var/run/secrets/kubernetes.io/serviceaccount"]',
      });
      expect(archive.baseImageId).toMatch(/^127\.0\.0\.1:5000\/shop\/app@sha256:[0-9a-f]{64}$/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('buildPodCheckpointIndex', () => {
  it('carries Cryo\'s identity but no runtime\'s marker: it is no one container\'s checkpoint, and containerd would restore from it as one', () => {
    const document: PodCheckpoint = {
      apiVersion: CHECKPOINT_API_VERSION,
      kind: POD_CHECKPOINT_KIND,
      checkpoint: request.checkpoint,
      createdAt: '2026-12-01T10:01:00.000Z',
      nodeName: 'node-a',
      pod: { ...request.pod, labels: {}, annotations: {}, spec: { containers: [{ name: 'app', image: 'shop/app:1' }] } },
      containers: [],
      notCheckpointed: [],
    };
    const index = JSON.parse(buildPodCheckpointIndex({ document, images: [{ name: 'app', digest: `sha256:${'b'.repeat(64)}`, sizeBytes: 900 }] }).bytes.toString()) as {
      annotations: Record<string, string>;
      manifests: { annotations: Record<string, string> }[];
    };
    expect(index.annotations).toMatchObject({ 'dev.cryo.checkpoint.namespace': 'shop', 'dev.cryo.checkpoint.name': 'warm', 'dev.cryo.checkpoint.uid': 'c-1' });
    for (const marker of Object.values(CHECKPOINT_MARKERS)) {
      expect(index.annotations).not.toHaveProperty([marker]);
      expect(index.manifests[0].annotations).not.toHaveProperty([marker]);
    }
  });
});
