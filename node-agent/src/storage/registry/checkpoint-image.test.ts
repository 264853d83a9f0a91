import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { StoreRequest } from '../checkpoint-store.ts';
import { buildCheckpointImage } from './checkpoint-image.ts';

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
});
