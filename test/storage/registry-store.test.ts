/**
 * The registry store against a real registry: Debian's docker-registry in the lab, checked
 * independently with skopeo (manifest, annotations, the layer blob byte for byte) and
 * checkpointctl (the archive the store read), with Basic auth (htpasswd) and Bearer tokens (a
 * token service of the test's, whose JWTs the registry verifies), failures injected by a proxy
 * in front of the registry, retention, and Podman pulling the image and restoring the fixture's
 * container from it.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { zstdDecompressSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import type { V1Pod } from '@kubernetes/client-node';
import type { PodCheckpoint, TlsKeyPair } from '@cryo/common';
import { createCertificateAuthority, issueServingCertificate } from '@cryo/common';
import type { CheckpointArchiveInfo, StoreRequest } from '@cryo/node-agent';
import { StoreError, RegistryStore } from '@cryo/node-agent';
import type { RegistryStoreOptions } from '../../node-agent/src/storage/registry/registry-store.ts';
import { podCheckpointOf } from '../../node-agent/src/checkpoints/pod-checkpoint-document.ts';
import type { Lab, LabRegistry, RegistryTokenServer } from '@cryo/test';
import { openLab, rejectionOf, startFaultProxy, startLabRegistry, startRegistryTokenServer, waitFor } from '@cryo/test';
import { pushInChild } from '../bench/push-in-child.ts';
import { archiveInfoOf, gunzipFixture, PODMAN_BASE_IMAGE, sha256OfFile, sha256OfZstdFile, withExtraPages } from './registry-test-archives.ts';

const opened = await openLab();
const skip = 'skip' in opened ? opened.skip : undefined;
const MiB = 1024 * 1024;

/** Removes the empty cgroups Podman (cgroupfs) and CRIU's restore leave for these container ids, in every hierarchy of the host (CRIU makes some in the cgroup2 the lab namespace hides). */
async function removeLibpodCgroups(ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  const dirs: string[] = [];
  const walk = async (dir: string, inside: boolean): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries.filter((x) => x.isDirectory())) {
      const path = join(dir, e.name);
      const mine = inside || ids.some((id) => e.name.includes(id));
      await walk(path, mine);
      if (mine) dirs.push(path); // deepest first: children are pushed before their parent
    }
  };
  for (const hierarchy of await readdir('/sys/fs/cgroup').catch(() => [] as string[])) {
    for (const top of [join('/sys/fs/cgroup', hierarchy, 'libpod_parent'), join('/sys/fs/cgroup', 'libpod_parent')]) await walk(top, false);
  }
  for (const dir of dirs) await rmdir(dir).catch(() => {}); // only empty ones go
}

function dockerConfig(host: string, username: string, password: string): string {
  return JSON.stringify({ auths: { [host]: { auth: Buffer.from(`${username}:${password}`).toString('base64') } } });
}

interface Manifest {
  mediaType: string;
  config: { mediaType: string; digest: string; size: number };
  layers: { mediaType: string; digest: string; size: number }[];
  annotations: Record<string, string>;
}

describe.skipIf(skip !== undefined)(`the registry store against docker-registry${skip === undefined ? '' : ` (skipped: ${skip})`}`, () => {
  const lab = opened as Lab;
  let dir: string;
  let registry: LabRegistry;
  let fixture: CheckpointArchiveInfo;
  let large: CheckpointArchiveInfo;
  const stores: RegistryStore[] = [];
  const cleanups: (() => Promise<void>)[] = [];

  // Uncompressed unless a test says zstd: the upload's mechanics are checked on the archive's own bytes.
  const storeFor = (options: RegistryStoreOptions): RegistryStore => {
    const store = new RegistryStore({ insecure: true, retry: { attempts: 3, initialMs: 10, maxMs: 40 }, layerCompression: 'none', ...options });
    stores.push(store);
    return store;
  };
  const requestFor = (archive: CheckpointArchiveInfo, fields: Partial<StoreRequest> = {}): StoreRequest => ({
    archive,
    checkpoint: { namespace: 'shop', name: 'counter-warm', uid: randomUUID() },
    pod: { namespace: 'shop', name: 'counter-0', uid: randomUUID() },
    containerName: archive.containerName,
    ...fields,
  });
  const inLab = async (argv: string[], timeoutMs = 60_000): Promise<string> => {
    const result = await lab.exec(argv, { timeoutMs });
    if (result.code !== 0) throw new Error(`exit ${result.code}: ${argv.join(' ')}\n${result.stderr}${result.stdout}`);
    return result.stdout;
  };
  const rawManifest = async (reference: string, creds?: string): Promise<{ text: string; manifest: Manifest }> => {
    const text = await inLab(['skopeo', 'inspect', '--raw', '--tls-verify=false', ...(creds ? ['--creds', creds] : []), `docker://${reference}`]);
    return { text, manifest: JSON.parse(text) as Manifest };
  };
  const tagsOf = async (repository: string): Promise<string[]> => {
    const res = await fetch(`http://${repository.replace('/', '/v2/')}/tags/list`);
    if (res.status === 404) return [];
    return ((await res.json()) as { tags: string[] | null }).tags ?? [];
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cryo-registry-store-'));
    registry = await startLabRegistry(lab);
    fixture = await archiveInfoOf(await gunzipFixture(join(dir, 'counter-checkpoint.tar')));
    large = await archiveInfoOf(await withExtraPages(fixture.path, join(dir, 'counter-64mib.tar'), 64 * MiB));
  });
  afterAll(async () => {
    for (const store of stores) store.close();
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('pushes the Podman fixture as a checkpoint image that skopeo and checkpointctl read back', async () => {
    const repository = `${registry.host}/checkpoints/counter`;
    const store = storeFor({ repository });
    const result = await store.store(requestFor(fixture));

    expect(result.referenceType).toBe('image');
    expect(result.restoreReference).toMatch(new RegExp(`^${registry.host}/checkpoints/counter@sha256:[0-9a-f]{64}$`));
    expect(result.sizeBytes).toBe(fixture.sizeBytes);
    expect(result.digest).toBe(await sha256OfFile(fixture.path));

    // The manifest as the registry serves it: its sha256 is the reference's digest.
    const { text, manifest } = await rawManifest(result.restoreReference);
    expect(`sha256:${createHash('sha256').update(text).digest('hex')}`).toBe(result.restoreReference.split('@')[1]);
    expect(manifest.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(manifest.config.mediaType).toBe('application/vnd.oci.image.config.v1+json');
    expect(manifest.layers).toEqual([{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: result.digest, size: fixture.sizeBytes }]);
    expect(manifest.annotations).toMatchObject({
      'io.kubernetes.cri-o.annotations.checkpoint.name': 'cfix',
      'io.kubernetes.cri-o.annotations.checkpoint.rootfsImageName': 'localhost/bb:1',
      'org.criu.checkpoint.container.name': 'cfix',
      'org.criu.checkpoint.engine.name': 'Podman',
      'org.criu.checkpoint.runtime.name': 'crun',
      'org.criu.checkpoint.pod.namespace': 'shop',
      'io.podman.annotations.checkpoint.runtime.name': 'crun',
      'io.podman.annotations.checkpoint.name': 'cfix',
      'io.podman.annotations.checkpoint.rootfsImageID': fixture.baseImageId,
      'dev.cryo.checkpoint.namespace': 'shop',
      'dev.cryo.checkpoint.name': 'counter-warm',
      'dev.cryo.checkpoint.pod-name': 'counter-0',
      'dev.cryo.checkpoint.container-name': 'cfix',
    });

    // The image copied out: the layer blob is the archive byte for byte, the config names it.
    const out = join(dir, 'skopeo-fixture');
    await inLab(['skopeo', 'copy', '--src-tls-verify=false', `docker://${result.restoreReference}`, `dir:${lab.hostPath(out)}`]);
    expect(await sha256OfFile(join(out, result.digest.slice('sha256:'.length)))).toBe(result.digest);
    const config = JSON.parse(await inLab(['cat', lab.hostPath(join(out, manifest.config.digest.slice('sha256:'.length)))])) as { rootfs: { diff_ids: string[] }; os: string; architecture: string };
    expect(config.rootfs.diff_ids).toEqual([result.digest]);
    expect(config).toMatchObject({ os: 'linux', architecture: 'amd64' });

    // checkpointctl reads the archive the store read (and so the layer).
    const show = await inLab(['checkpointctl', 'show', lab.hostPath(fixture.path)]);
    expect(show).toContain('cfix');
    expect(show).toContain('crun');
    const inspect = await inLab(['checkpointctl', 'inspect', lab.hostPath(fixture.path)]);
    expect(inspect).toContain('localhost/bb:1');
  });

  it('streams a 64 MiB archive in chunks whose blob is the archive, and skips it when stored again', async () => {
    const proxy = await startFaultProxy(registry.port);
    cleanups.push(() => proxy.close());
    const repository = `${proxy.host}/checkpoints/large`;
    const store = storeFor({ repository, chunkSizeBytes: 16 * MiB });
    const result = await store.store(requestFor(large));
    expect(result.digest).toBe(await sha256OfFile(large.path));
    expect(result.sizeBytes).toBe(large.sizeBytes);
    // 64 MiB + the fixture's 300 KB in 16 MiB chunks: five PATCHes with consecutive ranges.
    const patches = proxy.requests.filter((r) => r.method === 'PATCH').map((r) => r.contentRange);
    expect(patches).toEqual([0, 1, 2, 3, 4].map((i) => `${i * 16 * MiB}-${Math.min((i + 1) * 16 * MiB, large.sizeBytes) - 1}`));
    // What the registry stored, read from its disk.
    expect(await sha256OfFile(registry.blobPath(result.digest))).toBe(result.digest);
    const { manifest } = await rawManifest(`${registry.host}/checkpoints/large@${result.restoreReference.split('@')[1]}`);
    expect(manifest.layers[0]).toMatchObject({ digest: result.digest, size: large.sizeBytes });

    // The same archive again (a retried store): the registry has the layer, nothing is sent.
    proxy.requests.length = 0;
    const again = await store.store(requestFor(large, { checkpoint: { namespace: 'shop', name: 'large-again', uid: randomUUID() } }));
    expect(again.digest).toBe(result.digest);
    expect(proxy.requests.filter((r) => r.method === 'PATCH')).toEqual([]);
    expect(proxy.requests.some((r) => r.method === 'HEAD' && r.path.endsWith(result.digest))).toBe(true);
  });

  it('pushes in constant memory: the peak RSS of a 64 MiB push is that of a 300 KB one (child processes)', async () => {
    const small = await pushInChild({ repository: `${registry.host}/checkpoints/memory-small`, archive: fixture.path, layerCompression: 'none' });
    const big = await pushInChild({ repository: `${registry.host}/checkpoints/memory-large`, archive: large.path, layerCompression: 'none' });
    expect(small.result.error).toBeUndefined();
    expect(big.result.digest).toBe(await sha256OfFile(large.path));
    console.log(`peak RSS of the pushing process: ${small.peakRssMiB.toFixed(1)} MiB for ${fixture.sizeBytes} bytes, ${big.peakRssMiB.toFixed(1)} MiB for ${(large.sizeBytes / MiB).toFixed(0)} MiB`);
    // A whole-file buffer would add 64 MiB, garbage the collector is late with up to that much;
    // the upload's four 1 MiB buffers are reused. (The peak itself is Node with type stripping,
    // ~62 MiB, plus @cryo/common's imports, ~81 MiB of which are @kubernetes/client-node.)
    expect(big.peakRssMiB - small.peakRssMiB).toBeLessThan(12);
    // The same with zstd layers: the compressor's window and buffers, not the archive.
    const smallZstd = await pushInChild({ repository: `${registry.host}/checkpoints/memory-small-zstd`, archive: fixture.path, layerCompression: 'zstd' });
    const bigZstd = await pushInChild({ repository: `${registry.host}/checkpoints/memory-large-zstd`, archive: large.path, layerCompression: 'zstd' });
    expect(bigZstd.result.error).toBeUndefined();
    console.log(`with zstd layers: ${smallZstd.peakRssMiB.toFixed(1)} MiB, ${bigZstd.peakRssMiB.toFixed(1)} MiB`);
    expect(bigZstd.peakRssMiB - smallZstd.peakRssMiB).toBeLessThan(12);
  });

  it('resends a chunk after a 503, and starts over when a cut connection spoiled the session', async () => {
    const proxy = await startFaultProxy(registry.port);
    cleanups.push(() => proxy.close());
    let patches = 0;
    proxy.decide = (req) => {
      if (req.method !== 'PATCH') return 'pass';
      patches += 1;
      if (patches === 2) return { status: 503 };
      if (patches === 4) return { cutAfterBytes: 5 * MiB + 123 };
      return 'pass';
    };
    const store = storeFor({ repository: `${proxy.host}/checkpoints/resumed`, chunkSizeBytes: 16 * MiB });
    const result = await store.store(requestFor(large));
    expect(result.digest).toBe(await sha256OfFile(large.path));
    expect(await sha256OfFile(registry.blobPath(result.digest))).toBe(result.digest);

    const calls = proxy.requests.filter((r) => r.path.includes('/blobs/uploads/')).map((r) => `${r.method} ${r.contentRange ?? ''}`.trim());
    const chunk = (i: number) => `PATCH ${i * 16 * MiB}-${Math.min((i + 1) * 16 * MiB, large.sizeBytes) - 1}`;
    expect(calls).toEqual([
      'POST',
      chunk(0),
      chunk(1), // 503
      'GET', // the registry holds 16 MiB: the same chunk again, in the same session
      chunk(1),
      chunk(2), // cut after 5 MiB: distribution cancels a session whose size no longer matches its state
      'GET', // 404
      'DELETE',
      'POST', // so the upload starts over
      chunk(0),
      chunk(1),
      chunk(2),
      chunk(3),
      chunk(4),
      'PUT',
      'POST', // the config blob
      'PUT',
    ]);
  });

  it('leaves no tag when the upload fails, and fails at once (not retriable) on a refusal', async () => {
    const proxy = await startFaultProxy(registry.port);
    cleanups.push(() => proxy.close());
    proxy.decide = (req) => (req.method === 'PUT' && req.path.includes('/blobs/uploads/') ? { status: 400 } : 'pass');
    const repository = `${proxy.host}/checkpoints/refused`;
    const store = storeFor({ repository });
    const error = await store.store(requestFor(fixture)).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).retriable).toBe(false);
    expect((error as StoreError).message).toContain(`registry ${proxy.host}, repository checkpoints/refused`);
    expect((error as StoreError).message).toContain('HTTP 400');
    expect(proxy.requests.filter((r) => r.method === 'PUT').length).toBe(1);
    expect(proxy.requests.some((r) => r.path.includes('/manifests/'))).toBe(false);
    expect(await tagsOf(`${registry.host}/checkpoints/refused`)).toEqual([]);
  });

  it('fails retriable, and leaves no tag, when the bytes the registry got are not the archive', async () => {
    const proxy = await startFaultProxy(registry.port);
    cleanups.push(() => proxy.close());
    proxy.decide = (req) => (req.method === 'PATCH' ? { flipByte: 1000 } : 'pass');
    const store = storeFor({ repository: `${proxy.host}/checkpoints/corrupted` });
    const error = await store.store(requestFor(fixture)).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).retriable).toBe(true);
    expect((error as StoreError).message).toContain(`registry ${proxy.host}, repository checkpoints/corrupted: the registry computed another digest than ${await sha256OfFile(fixture.path)}`);
    expect(proxy.requests.filter((r) => r.method === 'PUT').length).toBe(1); // not finished again
    expect(await tagsOf(`${registry.host}/checkpoints/corrupted`)).toEqual([]);
  });

  it('aborts when the signal fires, leaving no tag', async () => {
    const proxy = await startFaultProxy(registry.port);
    cleanups.push(() => proxy.close());
    const controller = new AbortController();
    proxy.decide = (req) => {
      if (req.method === 'PATCH') controller.abort(new Error('the Checkpoint was deleted'));
      return 'pass';
    };
    const store = storeFor({ repository: `${proxy.host}/checkpoints/aborted`, chunkSizeBytes: 16 * MiB });
    const error = await store.store({ ...requestFor(large), signal: controller.signal }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).message).toMatch(/aborted/);
    expect(proxy.requests.filter((r) => r.method === 'PATCH').length).toBe(1);
    expect(await tagsOf(`${registry.host}/checkpoints/aborted`)).toEqual([]);
  });

  it('retries a registry that is down a bounded number of times, then fails retriable', async () => {
    const down = await startLabRegistry(lab);
    const host = down.host;
    await down.stop();
    const store = storeFor({ repository: `${host}/checkpoints/down`, retry: { attempts: 3, initialMs: 20, maxMs: 40 } });
    const started = Date.now();
    const error = await store.store(requestFor(fixture)).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).retriable).toBe(true);
    expect((error as StoreError).message).toContain(`registry ${host}, repository checkpoints/down`);
    expect((error as StoreError).message).toContain('gave up after 3 attempts');
    expect((error as StoreError).message).toContain('ECONNREFUSED');
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  describe('with zstd layers', () => {
    /** What compressed stores left beside the archives (nothing, ever). */
    const scratchLeftovers = async () => (await readdir(dir)).filter((name) => name.startsWith('.cryo-agent-'));

    it('pushes the archive zstd-compressed: the blob decompresses to it, the config names it as diff_id, skopeo reads and copies the image', async () => {
      const store = storeFor({ repository: `${registry.host}/checkpoints/zstd`, layerCompression: 'zstd' });
      const result = await store.store(requestFor(fixture));
      const archiveDigest = await sha256OfFile(fixture.path);
      expect(result.sizeBytes).toBeLessThan(fixture.sizeBytes / 2);
      expect(result.digest).not.toBe(archiveDigest);
      expect(await scratchLeftovers()).toEqual([]);

      const { manifest } = await rawManifest(result.restoreReference);
      expect(manifest.layers).toEqual([{ mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd', digest: result.digest, size: result.sizeBytes }]);
      // skopeo's own reading of the image: one zstd layer, the checkpoint's annotations.
      const inspected = JSON.parse(await inLab(['skopeo', 'inspect', '--tls-verify=false', `docker://${result.restoreReference}`])) as { LayersData: { MIMEType: string; Digest: string; Size: number }[]; Labels: Record<string, string> };
      expect(inspected.LayersData).toEqual([expect.objectContaining({ MIMEType: 'application/vnd.oci.image.layer.v1.tar+zstd', Digest: result.digest, Size: result.sizeBytes })]);
      expect(inspected.Labels).toMatchObject({ 'dev.cryo.checkpoint.name': 'counter-warm' });

      // Copied out: the blob is what the manifest says, and decompresses to the archive byte for byte.
      const out = join(dir, 'skopeo-zstd');
      await inLab(['skopeo', 'copy', '--src-tls-verify=false', `docker://${result.restoreReference}`, `dir:${lab.hostPath(out)}`]);
      const blob = join(out, result.digest.slice('sha256:'.length));
      expect(await sha256OfFile(blob)).toBe(result.digest);
      expect(zstdDecompressSync(await readFile(blob)).equals(await readFile(fixture.path))).toBe(true);
      const config = JSON.parse(await readFile(join(out, manifest.config.digest.slice('sha256:'.length)), 'utf8')) as { rootfs: { diff_ids: string[] } };
      expect(config.rootfs.diff_ids).toEqual([archiveDigest]);

      // Retention weighs what the registry holds: the compressed layer, as the status says.
      expect((await store.list()).map((e) => e.sizeBytes)).toEqual([result.sizeBytes]);
    });

    it('resumes a zstd layer over a cut connection, and skips compressing and uploading it when the same archive is stored again', async () => {
      const proxy = await startFaultProxy(registry.port);
      cleanups.push(() => proxy.close());
      let patches = 0;
      proxy.decide = (req) => (req.method === 'PATCH' && ++patches === 2 ? { cutAfterBytes: 3 * MiB } : 'pass');
      const store = storeFor({ repository: `${proxy.host}/checkpoints/zstd-large`, layerCompression: 'zstd', chunkSizeBytes: 16 * MiB });
      const result = await store.store(requestFor(large));
      // Random pages do not compress: still more than one chunk, so the cut PATCH had to be made good.
      expect(patches).toBeGreaterThan(2);
      expect(await sha256OfFile(registry.blobPath(result.digest))).toBe(result.digest);
      expect(await sha256OfZstdFile(registry.blobPath(result.digest))).toBe(await sha256OfFile(large.path));
      expect(await scratchLeftovers()).toEqual([]);

      proxy.requests.length = 0;
      const again = await store.store(requestFor(large, { checkpoint: { namespace: 'shop', name: 'zstd-again', uid: randomUUID() } }));
      expect(again).toMatchObject({ digest: result.digest, sizeBytes: result.sizeBytes });
      expect(proxy.requests.filter((r) => r.method === 'PATCH')).toEqual([]);
      expect(proxy.requests.some((r) => r.method === 'HEAD' && r.path.endsWith(result.digest))).toBe(true);
    });

    it('leaves neither a tag nor the compressed file when the upload is refused, and removes one an agent killed mid-way left', async () => {
      const leftover = join(dir, '.cryo-agent-killed1');
      await mkdir(leftover);
      await writeFile(join(leftover, 'layer.tar.zst'), 'half a layer');
      const proxy = await startFaultProxy(registry.port);
      cleanups.push(() => proxy.close());
      proxy.decide = (req) => (req.method === 'PUT' && req.path.includes('/blobs/uploads/') ? { status: 400 } : 'pass');
      const store = storeFor({ repository: `${proxy.host}/checkpoints/zstd-refused`, layerCompression: 'zstd' });
      const error = await store.store(requestFor(fixture)).catch((err: unknown) => err);
      expect(error).toBeInstanceOf(StoreError);
      expect((error as StoreError).retriable).toBe(false);
      expect((error as StoreError).message).toContain('HTTP 400');
      expect(await tagsOf(`${registry.host}/checkpoints/zstd-refused`)).toEqual([]);
      expect(await scratchLeftovers()).toEqual([]);
    });
  });

  describe('over https', () => {
    let tlsRegistry: LabRegistry;
    let ca: TlsKeyPair;
    beforeAll(async () => {
      ca = await createCertificateAuthority({ commonName: 'cryo-test-registry-ca' });
      const serving = await issueServingCertificate(ca, { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], validitySeconds: 3600 });
      tlsRegistry = await startLabRegistry(lab, { tls: serving });
    });
    afterAll(async () => tlsRegistry?.stop());

    it('pushes to a registry whose certificate the CA bundle vouches for', async () => {
      const store = storeFor({ repository: `${tlsRegistry.host}/checkpoints/tls`, insecure: false, caBundle: ca.cert });
      const result = await store.store(requestFor(fixture));
      expect(result.digest).toBe(await sha256OfFile(fixture.path));
      expect((await store.list()).map((e) => e.restoreReference)).toEqual([result.restoreReference]);
    });

    it('refuses an untrusted certificate at once, and says to give the CA', async () => {
      const store = storeFor({ repository: `${tlsRegistry.host}/checkpoints/tls`, insecure: false });
      const error = await store.store(requestFor(fixture)).catch((err: unknown) => err);
      expect(error).toBeInstanceOf(StoreError);
      expect((error as StoreError).retriable).toBe(false);
      expect((error as StoreError).message).toMatch(/certificate/);
      expect((error as StoreError).message).toContain('give that CA as caBundle');
    });

    it('says so when https meets a plain-http registry', async () => {
      const store = storeFor({ repository: `${registry.host}/checkpoints/tls`, insecure: false });
      const error = await store.store(requestFor(fixture)).catch((err: unknown) => err);
      expect((error as StoreError).retriable).toBe(false);
      expect((error as StoreError).message).toContain('is it a plain-http registry? then set insecure');
    });
  });

  describe('with Basic auth (htpasswd)', () => {
    let basic: LabRegistry;
    beforeAll(async () => {
      basic = await startLabRegistry(lab, { users: { pusher: 'right-password' } });
    });
    afterAll(async () => basic?.stop());

    it('pushes with the right secret', async () => {
      const store = storeFor({ repository: `${basic.host}/checkpoints/basic`, dockerConfigJson: dockerConfig(basic.host, 'pusher', 'right-password') });
      const result = await store.store(requestFor(fixture));
      const { manifest } = await rawManifest(result.restoreReference, 'pusher:right-password');
      expect(manifest.layers[0].digest).toBe(result.digest);
    });

    it('refuses the wrong secret, and no secret, with an error naming the registry and the status', async () => {
      const wrong = storeFor({ repository: `${basic.host}/checkpoints/basic`, dockerConfigJson: dockerConfig(basic.host, 'pusher', 'wrong') });
      const error = await wrong.store(requestFor(fixture)).catch((err: unknown) => err);
      expect(error).toBeInstanceOf(StoreError);
      expect((error as StoreError).retriable).toBe(false);
      expect((error as StoreError).message).toMatch(new RegExp(`registry ${basic.host}, repository checkpoints/basic: HTTP 401.*refused the credentials of the push secret`));

      const anonymous = storeFor({ repository: `${basic.host}/checkpoints/basic` });
      const refused = await anonymous.store(requestFor(fixture)).catch((err: unknown) => err);
      expect((refused as StoreError).message).toContain('the push secret has no credentials for it');
    });
  });

  describe('with Bearer tokens (a token service whose JWTs the registry verifies)', () => {
    let tokens: RegistryTokenServer;
    let tokenRegistry: LabRegistry;
    beforeAll(async () => {
      tokens = await startRegistryTokenServer({ users: { robot: 'token-password' } });
      tokenRegistry = await startLabRegistry(lab, { token: { realm: tokens.realm, service: tokens.service, issuer: tokens.issuer, rootCertBundle: tokens.certificate } });
    });
    afterAll(async () => {
      await tokenRegistry?.stop();
      await tokens?.close();
    });

    it('gets a token with the secret for the push scope, pushes, lists and deletes with it', async () => {
      const repository = `${tokenRegistry.host}/checkpoints/bearer`;
      let clock = Date.now();
      const store = storeFor({ repository, dockerConfigJson: dockerConfig(tokenRegistry.host, 'robot', 'token-password'), now: () => new Date(clock) });
      const result = await store.store(requestFor(fixture));
      expect(result.digest).toBe(await sha256OfFile(fixture.path));
      expect(tokens.requests[0]).toMatchObject({ user: 'robot', service: tokens.service, scopes: ['repository:checkpoints/bearer:pull,push'], status: 200 });
      // One token served the whole push (cached, not fetched per request).
      expect(tokens.requests.length).toBe(1);

      const listed = await store.list();
      expect(listed.map((e) => e.restoreReference)).toEqual([result.restoreReference]);
      clock += 3_600_000;
      const removed = await store.applyRetention({ scope: 'namespace', maxAgeSeconds: 60 });
      expect(removed.removed.map((e) => e.restoreReference)).toEqual([result.restoreReference]);
      expect(tokens.requests.some((r) => r.scopes.some((s) => s.endsWith(':delete')))).toBe(true);
      expect(await store.list()).toEqual([]);
    });

    it('fails with a clear, non-retriable error when the token service refuses the secret', async () => {
      const store = storeFor({ repository: `${tokenRegistry.host}/checkpoints/bearer`, dockerConfigJson: dockerConfig(tokenRegistry.host, 'robot', 'wrong') });
      const error = await store.store(requestFor(fixture)).catch((err: unknown) => err);
      expect(error).toBeInstanceOf(StoreError);
      expect((error as StoreError).retriable).toBe(false);
      expect((error as StoreError).message).toContain(`the token service ${new URL(tokens.realm).origin}/token of registry ${tokenRegistry.host} refused a token`);
      expect((error as StoreError).message).toContain('as user "robot": HTTP 401');
    });
  });

  it('lists what it pushed and removes the oldest beyond the policy, per scope', async () => {
    const repository = `${registry.host}/checkpoints/retention`;
    let clock = Date.parse('2026-12-01T00:00:00Z');
    const store = storeFor({ repository, now: () => new Date(clock) });
    const pushed: { reference: string; pod: string; at: number }[] = [];
    // Pod a: 4 checkpoints an hour apart; pod b: 2. The same archive, so only manifests differ.
    for (const [pod, count] of [['a', 4], ['b', 2]] as const) {
      for (let i = 0; i < count; i++) {
        clock += 3_600_000;
        const result = await store.store(requestFor(fixture, { checkpoint: { namespace: 'shop', name: `ckpt-${pod}-${i}`, uid: randomUUID() }, pod: { namespace: 'shop', name: `pod-${pod}`, uid: randomUUID() } }));
        pushed.push({ reference: result.restoreReference, pod, at: clock });
      }
    }
    const listed = await store.list();
    expect(listed.map((e) => e.restoreReference).sort()).toEqual(pushed.map((p) => p.reference).sort());
    expect(listed.every((e) => e.sizeBytes === fixture.sizeBytes && e.containerName === 'cfix' && e.namespace === 'shop')).toBe(true);

    // Per container: at most 2 each → pod a loses its 2 oldest, pod b keeps both.
    const byCount = await store.applyRetention({ scope: 'container', maxCount: 2 });
    expect(byCount.removed.map((e) => e.checkpointName)).toEqual(['ckpt-a-0', 'ckpt-a-1']);
    expect(byCount.kept.map((e) => e.checkpointName).sort()).toEqual(['ckpt-a-2', 'ckpt-a-3', 'ckpt-b-0', 'ckpt-b-1']);
    // Gone from the registry, by digest.
    const gone = await fetch(`http://${registry.host}/v2/checkpoints/retention/manifests/${pushed[0].reference.split('@')[1]}`, { method: 'HEAD' });
    expect(gone.status).toBe(404);

    // Per namespace: at most 3 archives' worth of bytes → the newest 3 of all stay.
    const byBytes = await store.applyRetention({ scope: 'namespace', maxTotalBytes: 3 * fixture.sizeBytes });
    expect(byBytes.removed.map((e) => e.checkpointName)).toEqual(['ckpt-a-2']);

    // By age: the clock is at the last push; older than 90 minutes goes.
    const byAge = await store.applyRetention({ scope: 'pod', maxAgeSeconds: 90 * 60 });
    expect(byAge.removed.map((e) => e.checkpointName)).toEqual(['ckpt-a-3']);
    expect((await store.list()).map((e) => e.checkpointName)).toEqual(['ckpt-b-0', 'ckpt-b-1']);
  });

  it('pushes the pod checkpoint as an OCI index of its containers’ images that skopeo reads, and retention removes it with them', async () => {
    const repository = `${registry.host}/checkpoints/whole-pod`;
    let clock = Date.parse('2026-12-01T00:00:00Z');
    const store = storeFor({ repository, now: () => new Date(clock) });
    const pod: V1Pod = {
      metadata: { namespace: 'shop', name: 'orders-0', uid: randomUUID(), labels: { app: 'orders' }, annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}' } },
      spec: { nodeName: 'node-a', containers: [{ name: 'app', image: 'shop/orders:1' }, { name: 'sidecar', image: 'shop/counter:1' }, { name: 'proxy', image: 'shop/proxy:1' }] },
    };
    const checkpointPod = async (name: string) => {
      clock += 3_600_000;
      const checkpoint = { metadata: { namespace: 'shop', name, uid: randomUUID() }, spec: { podName: 'orders-0' } };
      const containers = [];
      for (const container of ['sidecar', 'app']) {
        const stored = await store.store(requestFor(fixture, { checkpoint: { namespace: 'shop', name, uid: checkpoint.metadata.uid }, pod: { namespace: 'shop', name: 'orders-0', uid: pod.metadata!.uid! }, containerName: container }));
        containers.push({ name: container, stored, mountDestinations: ['/data'] });
      }
      const document = podCheckpointOf({ checkpoint, pod, containers, createdAt: new Date(clock) });
      return { containers, written: await store.storePodCheckpoint({ document, stored: containers }) };
    };

    const first = await checkpointPod('orders-before-upgrade');
    expect(first.written.referenceType).toBe('image-index');
    expect(first.written.reference).toBe(`${repository}@${first.written.digest}`);
    const { text } = await rawManifest(first.written.reference);
    expect(`sha256:${createHash('sha256').update(text).digest('hex')}`).toBe(first.written.digest);
    const index = JSON.parse(text) as { mediaType: string; manifests: { mediaType: string; digest: string; size: number; annotations: Record<string, string> }[]; annotations: Record<string, string> };
    expect(index.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    // The spec's order; each entry is the container's checkpoint image, which skopeo resolves through the index.
    expect(index.manifests.map((m) => m.annotations['dev.cryo.checkpoint.container-name'])).toEqual(['app', 'sidecar']);
    const app = first.containers.find((c) => c.name === 'app')!.stored;
    expect(index.manifests[0]).toMatchObject({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: app.restoreReference.split('@')[1], size: app.manifest!.sizeBytes });
    expect((await rawManifest(`${repository}@${index.manifests[0].digest}`)).manifest.layers[0].digest).toBe(app.digest);
    const document = JSON.parse(index.annotations['dev.cryo.checkpoint.pod']) as PodCheckpoint;
    expect(document).toMatchObject({ kind: 'PodCheckpoint', nodeName: 'node-a', notCheckpointed: ['proxy'], pod: { name: 'orders-0', labels: { app: 'orders' }, annotations: {} } });
    expect(document.containers.map((c) => [c.name, c.image, c.restoreReference])).toEqual([
      ['app', 'shop/orders:1', app.restoreReference],
      ['sidecar', 'shop/counter:1', first.containers.find((c) => c.name === 'sidecar')!.stored.restoreReference],
    ]);
    // An index is not a container's checkpoint: not listed, not counted.
    expect((await store.list()).map((e) => e.containerName).sort()).toEqual(['app', 'sidecar']);

    const second = await checkpointPod('orders-after-upgrade');
    await store.applyRetention({ scope: 'container', maxCount: 1 });
    // docker-registry answers 404 for an index to a client that does not accept indexes.
    const head = (digest: string) => fetch(`http://${registry.host}/v2/checkpoints/whole-pod/manifests/${digest}`, { method: 'HEAD', headers: { accept: 'application/vnd.oci.image.index.v1+json' } }).then((r) => r.status);
    expect(await head(first.written.digest)).toBe(404);
    expect(await head(second.written.digest)).toBe(200);
  });

  it('refuses to index images of another repository, naming the container', async () => {
    const store = storeFor({ repository: `${registry.host}/checkpoints/index-a` });
    const elsewhere = await storeFor({ repository: `${registry.host}/checkpoints/index-b` }).store(requestFor(fixture));
    const pod: V1Pod = { metadata: { namespace: 'shop', name: 'counter-0', uid: randomUUID() }, spec: { containers: [{ name: 'cfix', image: 'localhost/bb:1' }] } };
    const document = podCheckpointOf({ checkpoint: { metadata: { namespace: 'shop', name: 'x', uid: randomUUID() }, spec: { podName: 'counter-0' } }, pod, containers: [{ name: 'cfix', stored: elsewhere, mountDestinations: [] }], createdAt: new Date() });
    const error = await rejectionOf(store.storePodCheckpoint({ document, stored: [{ name: 'cfix', stored: elsewhere }] }), StoreError);
    expect(error.message).toMatch(/can only index images in .*checkpoints\/index-a; container "cfix" is at .*checkpoints\/index-b@sha256:/);
    expect(await tagsOf(`${registry.host}/checkpoints/index-a`)).toEqual([]);
  });

  // The fixture itself cannot be restored on this machine: its processes die with SIGILL (exit
  // 132) right after `podman container restore --import` of the fixture as well, as a checkpoint
  // taken on another CPU may. So Podman checkpoints the same counter here first.
  it('is pulled by Podman, which restores a container from it, from an uncompressed and from a zstd layer alike', async () => {
    const podmanDir = await mkdtemp(join(tmpdir(), 'cryo-podman-'));
    cleanups.push(() => rm(podmanDir, { recursive: true, force: true }));
    // Podman as podman-lab.sh sets it up, at its default storage paths.
    await writeFile(join(podmanDir, 'containers.conf'), '[containers]\nlog_driver = "k8s-file"\n[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\nruntime = "crun"\n');
    const env = { CONTAINERS_CONF: lab.hostPath(join(podmanDir, 'containers.conf')), PODMAN_IGNORE_CGROUPSV1_WARNING: '1' };
    const podman = async (...args: string[]) => {
      const result = await lab.exec(['podman', ...args], { env, timeoutMs: 60_000 });
      if (result.code !== 0) throw new Error(`podman ${args.join(' ')} exited ${result.code}\n${result.stderr}${result.stdout}`);
      return result.stdout.trim();
    };
    const name = 'cryo-registry-store-counter';
    const ids = new Set<string>();
    const removeContainer = async () => {
      await lab.exec(['podman', 'rm', '-f', '-t', '0', name], { env });
      await removeLibpodCgroups([...ids]);
    };
    await removeContainer(); // a crashed run's
    cleanups.push(removeContainer);
    onTestFailed(async () => {
      for (const args of [['ps', '-a'], ['logs', name]]) {
        const out = await lab.exec(['podman', ...args], { env });
        console.log(`--- podman ${args.join(' ')}:\n${out.stdout}${out.stderr}`);
      }
    });

    await podman('load', '-q', '-i', lab.hostPath(PODMAN_BASE_IMAGE));
    const counter = 'i=0; while true; do i=$((i+1)); echo $i > /count.txt; sleep 0.1; done';
    ids.add(await podman('run', '-d', '--name', name, '--network', 'none', 'localhost/bb:1', '/bin/sh', '-c', counter));
    await waitFor(async () => Number((await lab.exec(['podman', 'exec', name, 'cat', '/count.txt'], { env })).stdout) >= 5, { timeoutMs: 10_000, what: 'the counter to count' });
    const archivePath = join(podmanDir, 'counter.tar');
    await podman('container', 'checkpoint', '--compress=none', `--export=${lab.hostPath(archivePath)}`, name);
    const checkpointed = Number(await podman('exec', name, 'cat', '/count.txt').catch(() => 'stopped'));
    expect(Number.isNaN(checkpointed)).toBe(true); // the checkpoint stopped it
    await podman('rm', name);

    const archive = await archiveInfoOf(archivePath);
    expect(archive.engine).toBe('podman');
    for (const layerCompression of ['none', 'zstd'] as const) {
      const store = storeFor({ repository: `${registry.host}/checkpoints/podman-${layerCompression}`, layerCompression });
      const result = await store.store(requestFor(archive));
      cleanups.push(async () => void (await lab.exec(['podman', 'rmi', '-f', result.restoreReference], { env })));
      await podman('pull', '-q', '--tls-verify=false', result.restoreReference);
      const started = Date.now();
      await podman('container', 'restore', result.restoreReference);
      // The counter carries on from where it was checkpointed, and keeps counting.
      const first = Number(await podman('exec', name, 'cat', '/count.txt'));
      expect(first).toBeGreaterThanOrEqual(5);
      await waitFor(async () => Number((await lab.exec(['podman', 'exec', name, 'cat', '/count.txt'], { env })).stdout) > first, { timeoutMs: 5_000, what: 'the restored counter to count on' });
      expect(await podman('inspect', '-f', '{{.State.Running}} {{.State.Restored}}', name)).toBe('true true');
      console.log(`podman pulled ${result.restoreReference} (layer compression ${layerCompression}) and restored ${name} from it in ${Date.now() - started} ms; it counted on from ${first}`);
      await removeContainer();
    }
  });
});
