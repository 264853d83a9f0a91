import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCheckpointArchive, captureLogger } from '@cryo/test';
import { readCheckpointArchive } from '../../archive/checkpoint-archive.ts';
import type { CheckpointArchiveInfo } from '../../archive/checkpoint-archive-info.ts';
import type { StoreRequest } from '../checkpoint-store.ts';
import { OCI_LAYER_TAR, OCI_MANIFEST } from '../checkpoint-image/checkpoint-image.ts';
import { DirectoryRegistryView, parseContentRequest } from './directory-registry-view.ts';
import { DirectoryStore } from './directory-store.ts';
import { directoryImageName } from './directory-layout.ts';

let work: string;
let root: string;
let archive: CheckpointArchiveInfo;
let view: DirectoryRegistryView;
let address: string;
let store: DirectoryStore;

const request = (o: { namespace?: string; container?: string; name?: string } = {}): StoreRequest => ({
  archive,
  checkpoint: { namespace: o.namespace ?? 'shop', name: o.name ?? 'orders-warm', uid: '0a1b2c3d-4e5f-6789-abcd-ef0123456789' },
  pod: { namespace: o.namespace ?? 'shop', name: 'orders-api-7c9f8d6b5-x2vqz', uid: '6f1c2b9e-8d4a-4e5f-9a7b-3c2d1e0f9a8b' },
  containerName: o.container ?? 'app',
});

/** GET (or `method`) of a path of the view. */
const get = (urlPath: string, method = 'GET') => fetch(`http://${address}${urlPath}`, { method });
/** The path of a reference the store returned, below its registry host. */
const pathOf = (reference: string, kind: 'manifests' | 'blobs', digest?: string) => {
  const [name, manifestDigest] = reference.slice(address.length + 1).split('@');
  return `/v2/${name}/${kind}/${digest ?? manifestDigest}`;
};

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'cryo-dirview-'));
  root = path.join(work, 'store');
  await mkdir(path.join(work, 'archives'));
  archive = await readCheckpointArchive((await buildCheckpointArchive({ dir: path.join(work, 'archives'), fileName: 'a.tar', pagesBytes: 256 * 1024 })).path);
  view = new DirectoryRegistryView({ root, logger: captureLogger().logger });
  const listening = await view.listen('127.0.0.1', 0);
  address = `127.0.0.1:${listening.port}`;
  store = new DirectoryStore({ root, logger: captureLogger().logger, registryView: { address, root } });
});
afterAll(async () => {
  await view?.close();
  await rm(work, { recursive: true, force: true });
});

describe('the directory store with a registry view', () => {
  it("answers an image reference named by namespace, pod and container, pinned by the manifest's digest", async () => {
    const stored = await store.store(request());
    expect(stored).toMatchObject({
      referenceType: 'image',
      restoreReference: `${address}/cryo-directory/shop/orders-api-7c9f8d6b5-x2vqz/app@${stored.manifest!.digest}`,
      archivePath: path.join(root, 'shop/orders-api-7c9f8d6b5-x2vqz/app/orders-warm-0a1b2c3d.tar'),
    });
  });

  it('serves the manifest by digest, its config, and the archive byte for byte as the one layer', async () => {
    const stored = await store.store(request({ name: 'served' }));
    expect((await get('/v2/')).status).toBe(200);

    const manifestResponse = await get(pathOf(stored.restoreReference, 'manifests'));
    expect(manifestResponse.status).toBe(200);
    expect(manifestResponse.headers.get('content-type')).toBe(OCI_MANIFEST);
    const manifestBytes = Buffer.from(await manifestResponse.arrayBuffer());
    expect(`sha256:${createHash('sha256').update(manifestBytes).digest('hex')}`).toBe(stored.manifest!.digest);
    expect(manifestResponse.headers.get('docker-content-digest')).toBe(stored.manifest!.digest);
    const manifest = JSON.parse(manifestBytes.toString('utf8')) as { config: { digest: string; size: number }; layers: { mediaType: string; digest: string; size: number }[]; annotations: Record<string, string> };
    expect(manifest.layers).toEqual([{ mediaType: OCI_LAYER_TAR, digest: stored.digest, size: archive.sizeBytes }]);
    // The annotations the runtimes restore by.
    expect(manifest.annotations['org.criu.checkpoint.container.name']).toBe('app');

    const config = Buffer.from(await (await get(pathOf(stored.restoreReference, 'blobs', manifest.config.digest))).arrayBuffer());
    expect(config.length).toBe(manifest.config.size);
    expect(JSON.parse(config.toString('utf8'))).toMatchObject({ rootfs: { diff_ids: [stored.digest] } });

    const head = await get(pathOf(stored.restoreReference, 'blobs', stored.digest), 'HEAD');
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(archive.sizeBytes));
    const layer = Buffer.from(await (await get(pathOf(stored.restoreReference, 'blobs', stored.digest))).arrayBuffer());
    expect(layer.equals(await readFile(archive.path))).toBe(true);
  });

  it('serves nothing by tag, nothing outside cryo-directory/, no other method, and no blob through another repository', async () => {
    const stored = await store.store(request({ name: 'guarded' }));
    const other = await store.store(request({ name: 'guarded', container: 'sidecar' }));
    const manifestPath = pathOf(stored.restoreReference, 'manifests');
    expect((await get(manifestPath.replace(/sha256:[0-9a-f]+$/, 'latest'))).status).toBe(404);
    expect(await (await get(manifestPath.replace(/sha256:[0-9a-f]+$/, 'latest'))).json()).toEqual({ errors: [{ code: 'NAME_UNKNOWN', message: expect.stringMatching(/by sha256 digest only/) }] });
    expect((await get(manifestPath.replace('/app/', '/sidecar/'))).status).toBe(404);
    // The sidecar container's repository serves its own manifest, not the app's.
    expect((await get(pathOf(other.restoreReference, 'manifests'))).status).toBe(200);
    expect((await get(`/v2/shop/orders-api-7c9f8d6b5-x2vqz/app/manifests/${stored.manifest!.digest}`)).status).toBe(404);
    expect((await get(`/v2/cryo-directory/shop/../../etc/manifests/${stored.manifest!.digest}`)).status).toBe(404);
    expect((await get(`/v2/cryo-directory/shop/%2e%2e/x/manifests/${stored.manifest!.digest}`)).status).toBe(404);
    const put = await get(manifestPath, 'PUT');
    expect(put.status).toBe(405);
    expect(put.headers.get('allow')).toBe('GET, HEAD');
    expect((await get(manifestPath, 'DELETE')).status).toBe(405);
  });

  it('stops serving an archive once it is removed, and never follows a symlink put in its place', async () => {
    const stored = await store.store(request({ name: 'removed' }));
    await unlink(stored.archivePath!);
    expect((await get(pathOf(stored.restoreReference, 'manifests'))).status).toBe(404);

    // Alone in its container's directory: the same bytes stored elsewhere there would be served instead.
    const swapped = await store.store(request({ name: 'swapped', container: 'swapped' }));
    const secret = path.join(work, 'secret.txt');
    await writeFile(secret, 'not a checkpoint');
    await unlink(swapped.archivePath!);
    await symlink(secret, swapped.archivePath!);
    expect((await get(pathOf(swapped.restoreReference, 'manifests'))).status).toBe(200);
    const layer = await get(pathOf(swapped.restoreReference, 'blobs', swapped.digest));
    expect(layer.status).toBe(500);
    expect(await layer.text()).not.toContain('not a checkpoint');
  });

  it('does not serve archives whose sidecar records no image (stored before the view existed)', async () => {
    const stored = await store.store(request({ name: 'old' }));
    const sidecarPath = `${stored.archivePath!}.json`;
    const before = JSON.parse(await readFile(sidecarPath, 'utf8')) as Record<string, unknown>;
    delete before.image;
    await writeFile(sidecarPath, JSON.stringify(before));
    expect((await get(pathOf(stored.restoreReference, 'manifests'))).status).toBe(404);
  });
});

describe('image names of the registry view', () => {
  it('names a container directory below the root, and nothing else', () => {
    expect(directoryImageName('127.0.0.1:5051', '/var/lib/cryo', '/var/lib/cryo/shop/web-0/app')).toEqual({ name: '127.0.0.1:5051/cryo-directory/shop/web-0/app' });
    expect(directoryImageName('127.0.0.1:5051', '/var/lib/cryo', '/var/lib/cryo/team.a/shop/web-0/app')).toEqual({ name: '127.0.0.1:5051/cryo-directory/team.a/shop/web-0/app' });
    expect(directoryImageName('127.0.0.1:5051', '/var/lib/cryo', '/var/lib/other/shop/web-0/app')).toEqual({ problem: expect.stringMatching(/not below the registry view's root/) });
    expect(directoryImageName('127.0.0.1:5051', '/var/lib/cryo', '/var/lib/cryo/Team_A/shop/web-0/app')).toEqual({ problem: expect.stringMatching(/"Team_A" .* cannot be part of an image name/) });
    expect(directoryImageName('127.0.0.1:5051', '/var/lib/cryo', `/var/lib/cryo/shop/${'p'.repeat(230)}/app`)).toEqual({ problem: expect.stringMatching(/longer than 255/) });
  });

  it('parses only digest requests of cryo-directory/ repositories', () => {
    const digest = `sha256:${'a'.repeat(64)}`;
    expect(parseContentRequest(`/v2/cryo-directory/shop/web-0/app/blobs/${digest}`)).toEqual({ components: ['shop', 'web-0', 'app'], kind: 'blobs', reference: digest });
    expect(parseContentRequest(`/v2/cryo-directory/blobs/${digest}`)).toEqual(expect.any(String));
    expect(parseContentRequest(`/v2/cryo-directory/shop/-x/app/blobs/${digest}`)).toEqual(expect.stringMatching(/not a valid image name/));
    expect(parseContentRequest(`/v2/cryo-directory/shop/web-0/app/manifests/sha512:${'a'.repeat(128)}`)).toEqual(expect.stringMatching(/sha256 digest only/));
    expect(parseContentRequest('/v2/_catalog')).toEqual(expect.stringMatching(/not a manifest or blob path/));
  });
});
