/**
 * The registry client (RegistryClient, RegistryAuth, uploadFileBlob) against the in-process fake
 * registry, with the fault proxy in front of it where the network has to fail: retries and their
 * backoff, Basic and Bearer challenges, chunked uploads that follow each Location and resume from
 * the registry's Range, digests that do not match, manifests, and the errors of 4xx answers.
 * The same client against the real docker-registry is test/storage/registry-store.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, afterAll, describe, expect, it } from 'vitest';
import type { FakeRegistry, FakeRegistryOptions, FaultProxy, ProxiedRequest } from '@cryo/test';
import { captureLogger, rejectionOf, startFakeRegistry, startFaultProxy, startRegistryTokenServer } from '@cryo/test';
import { OCI_MANIFEST, sha256Digest } from '../checkpoint-image/checkpoint-image.ts';
import { StoreError } from '../checkpoint-store.ts';
import { uploadFileBlob } from './blob-upload.ts';
import type { RegistryCredentials } from './docker-config.ts';
import { HttpTransport } from './http-transport.ts';
import { RegistryAuth } from './registry-auth.ts';
import type { RetryPolicy } from './registry-client.ts';
import { RegistryClient } from './registry-client.ts';

const NAME = 'checkpoints/app';
const KiB = 1024;
const CREDENTIALS: RegistryCredentials = { username: 'robot', password: 's3cret-pw' };

let dir: string;
let archive: Buffer;
let archivePath: string;
const cleanups: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cryo-registry-client-'));
  // Three full 64 KiB chunks and a short fourth one.
  archive = randomBytes(3 * 64 * KiB + 123);
  archivePath = join(dir, 'archive.tar');
  await writeFile(archivePath, archive);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function fakeRegistry(options: FakeRegistryOptions = {}): Promise<FakeRegistry> {
  const registry = await startFakeRegistry(options);
  cleanups.push(() => registry.close());
  return registry;
}

/** The fault proxy in front of the registry; `decide` picks each request's fate. */
async function faultProxy(registry: FakeRegistry, decide: FaultProxy['decide']): Promise<FaultProxy> {
  const proxy = await startFaultProxy(registry.port);
  proxy.decide = decide;
  cleanups.push(() => proxy.close());
  return proxy;
}

interface ClientOptions {
  credentials?: RegistryCredentials;
  retry?: Partial<RetryPolicy>;
  logger?: ReturnType<typeof captureLogger>['logger'];
}

function clientFor(host: string, options: ClientOptions = {}): RegistryClient {
  const transport = new HttpTransport({ timeoutMs: 10_000 });
  cleanups.push(() => transport.close());
  const auth = new RegistryAuth({ registry: host, credentials: options.credentials, transport, allowPlainHttpRealm: true });
  const retry = { attempts: 3, initialMs: 10, maxMs: 40, ...options.retry };
  return new RegistryClient({ registry: host, name: NAME, insecure: true, transport, auth, retry, logger: options.logger });
}

/** The delays the client logged before each retry. */
function retryDelays(captured: ReturnType<typeof captureLogger>): number[] {
  return captured.lines.filter((line) => line.level === 'warn' && typeof line.delayMs === 'number').map((line) => line.delayMs as number);
}

const uploads = (requests: readonly ProxiedRequest[], method: string) => requests.filter((r) => r.method === method && r.path.includes('/blobs/uploads/'));

/** An image manifest naming a config and a layer blob. */
function manifestOf(config: Buffer, layer: Buffer): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256Digest(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256Digest(layer), size: layer.length }],
    }),
  );
}

/** Pushes a config and a layer as small blobs and a manifest naming them under `tag`; returns the manifest. */
async function pushImage(client: RegistryClient, tag: string): Promise<{ bytes: Buffer; digest: string }> {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', tag }));
  const layer = randomBytes(2 * KiB);
  await client.putSmallBlob(config, sha256Digest(config));
  await client.putSmallBlob(layer, sha256Digest(layer));
  const bytes = manifestOf(config, layer);
  await client.putManifest(tag, bytes, OCI_MANIFEST);
  return { bytes, digest: sha256Digest(bytes) };
}

describe('retries', () => {
  it('retries 5xx answers after doubling delays and succeeds once the registry answers', async () => {
    const registry = await fakeRegistry();
    const proxy = await faultProxy(registry, (_req, index) => (index < 3 ? { status: 503 } : 'pass'));
    const captured = captureLogger();
    const client = clientFor(proxy.host, { retry: { attempts: 4, initialMs: 20, maxMs: 1000 }, logger: captured.logger });

    expect(await client.blobExists(sha256Digest(Buffer.from('absent')))).toBe(false);

    expect(proxy.requests.map((r) => r.method)).toEqual(['HEAD', 'HEAD', 'HEAD', 'HEAD']);
    // 20, 40 and 80 ms, each ±20% jitter: the bands do not overlap, so each delay doubled.
    const delays = retryDelays(captured);
    expect(delays).toHaveLength(3);
    [20, 40, 80].forEach((base, i) => {
      expect(delays[i]).toBeGreaterThanOrEqual(base * 0.8);
      expect(delays[i]).toBeLessThanOrEqual(base * 1.2);
    });
  });

  it('gives up after the configured attempts, with delays capped at maxMs and an error that says how often it tried', async () => {
    const registry = await fakeRegistry();
    const proxy = await faultProxy(registry, () => ({ status: 503 }));
    const captured = captureLogger();
    const client = clientFor(proxy.host, { retry: { attempts: 5, initialMs: 10, maxMs: 25 }, logger: captured.logger });

    const error = await rejectionOf(client.putManifest('v1', Buffer.from('{}'), OCI_MANIFEST), StoreError);

    expect(proxy.requests.filter((r) => r.method === 'PUT')).toHaveLength(5);
    expect(error.retriable).toBe(true);
    expect(error.message).toBe(`push manifest v1: registry ${proxy.host}, repository ${NAME}: HTTP 503 UNAVAILABLE: injected by the fault proxy (gave up after 5 attempts)`);
    const delays = retryDelays(captured);
    expect(delays).toHaveLength(4);
    expect(Math.max(...delays)).toBeLessThanOrEqual(25);
  });

  it('retries a request whose connection was reset', async () => {
    const registry = await fakeRegistry();
    const proxy = await faultProxy(registry, (req, index) => (index === 0 || (req.method === 'GET' && proxy.requests.filter((r) => r.method === 'GET').length === 1) ? 'reset' : 'pass'));
    const client = clientFor(proxy.host);

    const location = await client.startUpload();
    expect(location.pathname).toMatch(new RegExp(`^/v2/${NAME}/blobs/uploads/[0-9a-f-]+$`));
    expect(proxy.requests.map((r) => r.method)).toEqual(['POST', 'POST']);

    const { digest } = await pushImage(client, 'after-reset');
    proxy.requests.length = 0;
    expect((await client.getManifest('after-reset'))?.digest).toBe(digest);
    expect(proxy.requests.map((r) => r.method)).toEqual(['GET', 'GET']);
  });

  it('does not retry a 4xx', async () => {
    const registry = await fakeRegistry();
    const proxy = await faultProxy(registry, () => ({ status: 400, code: 'MANIFEST_INVALID', message: 'manifest invalid' }));
    const client = clientFor(proxy.host);
    const error = await rejectionOf(client.putManifest('v1', Buffer.from('{}'), OCI_MANIFEST), StoreError);
    expect(error.retriable).toBe(false);
    expect(error.message).toBe(`push manifest v1: registry ${proxy.host}, repository ${NAME}: HTTP 400 MANIFEST_INVALID: manifest invalid`);
    expect(proxy.requests).toHaveLength(1);
  });
});

describe('what stands in the way of a push, which the Checkpoint\'s reason follows', () => {
  it.each([
    { status: 403, code: 'DENIED', blocker: 'denied', retriable: false },
    { status: 404, code: 'NAME_UNKNOWN', blocker: 'rejected', retriable: false },
    { status: 400, code: 'NAME_INVALID', blocker: 'rejected', retriable: false },
    { status: 413, code: 'SIZE_INVALID', blocker: 'rejected', retriable: false },
    { status: 507, code: 'UNKNOWN', blocker: 'full', retriable: false },
    { status: 503, code: 'UNAVAILABLE', blocker: undefined, retriable: true },
    { status: 429, code: 'TOOMANYREQUESTS', blocker: undefined, retriable: true },
  ] as const)('HTTP $status $code: $blocker, retriable $retriable', async ({ status, code, blocker, retriable }) => {
    const registry = await fakeRegistry();
    const proxy = await faultProxy(registry, () => ({ status, code }));
    const error = await rejectionOf(uploadFileBlob(clientFor(proxy.host), archivePath, { chunkSizeBytes: 64 * KiB }), StoreError);
    expect(error.message).toMatch(new RegExp(`^start a blob upload: registry ${proxy.host}, repository ${NAME}: HTTP ${status} ${code}`));
    expect(error.blocker).toBe(blocker);
    expect(error.retriable).toBe(retriable);
    // Only what may pass is asked again.
    expect(proxy.requests).toHaveLength(retriable ? 3 : 1);
  });

  it('a registry whose TLS certificate is not trusted: rejected (a configuration change helps, a retry does not)', async () => {
    const registry = await fakeRegistry();
    const transport = new HttpTransport({ timeoutMs: 10_000 });
    cleanups.push(() => transport.close());
    // https to a plain-http registry: the handshake fails as an untrusted one does, before any request.
    const auth = new RegistryAuth({ registry: registry.host, transport });
    const client = new RegistryClient({ registry: registry.host, name: NAME, insecure: false, transport, auth, retry: { attempts: 3, initialMs: 10, maxMs: 40 } });
    const error = await rejectionOf(client.startUpload(), StoreError);
    expect(error).toMatchObject({ retriable: false, blocker: 'rejected' });
    expect(error.message).toContain('is it a plain-http registry? then set insecure');
  });
});

describe('authentication', () => {
  it('answers a Basic challenge with the push secret\'s credentials, then sends them from the start', async () => {
    const registry = await fakeRegistry({ auth: { basic: { [CREDENTIALS.username]: CREDENTIALS.password } } });
    const client = clientFor(registry.host, { credentials: CREDENTIALS });
    const basic = `Basic ${Buffer.from(`${CREDENTIALS.username}:${CREDENTIALS.password}`).toString('base64')}`;

    const { digest } = await pushImage(client, 'v1');
    expect((await client.getManifest('v1'))?.digest).toBe(digest);

    expect(registry.requests.map((r) => [r.status, r.authorization])[0]).toEqual([401, undefined]);
    expect(registry.requests.slice(1).every((r) => r.authorization === basic && r.status !== 401)).toBe(true);
  });

  it('refuses for good, without the password, when the registry refuses the credentials or there are none', async () => {
    const registry = await fakeRegistry({ auth: { basic: { [CREDENTIALS.username]: CREDENTIALS.password } } });

    const wrong = await rejectionOf(clientFor(registry.host, { credentials: { username: 'robot', password: 'not-it' } }).startUpload(), StoreError);
    expect(wrong).toMatchObject({ retriable: false, blocker: 'denied' });
    expect(wrong.message).toBe(`start a blob upload: registry ${registry.host}, repository ${NAME}: HTTP 401 UNAUTHORIZED: authentication required: the registry refused the credentials of the push secret`);
    expect(wrong.message).not.toContain('not-it');

    const none = await rejectionOf(clientFor(registry.host).startUpload(), StoreError);
    expect(none).toMatchObject({ retriable: false, blocker: 'denied' });
    expect(none.message).toContain('the registry requires authentication and the push secret has no credentials for it');
    expect(registry.repository(NAME).uploads.size).toBe(0);
  });

  it('answers a Bearer challenge with a token for the scope from the realm, and reuses it', async () => {
    const tokens = await startRegistryTokenServer({ users: { [CREDENTIALS.username]: CREDENTIALS.password }, service: 'fake-registry' });
    cleanups.push(() => tokens.close());
    const registry = await fakeRegistry({ auth: { bearer: { realm: tokens.realm, service: tokens.service, certificate: tokens.certificate } } });
    const client = clientFor(registry.host, { credentials: CREDENTIALS });

    const { digest } = await pushImage(client, 'v1');
    expect((await client.getManifest('v1'))?.digest).toBe(digest);
    expect(await client.deleteManifest(digest)).toBe('deleted');

    // One token per scope: push (every blob and the manifest), pull, delete.
    expect(tokens.requests.map((r) => ({ user: r.user, service: r.service, scopes: r.scopes, status: r.status }))).toEqual([
      { user: 'robot', service: 'fake-registry', scopes: [`repository:${NAME}:pull,push`], status: 200 },
      { user: 'robot', service: 'fake-registry', scopes: [`repository:${NAME}:pull`], status: 200 },
      { user: 'robot', service: 'fake-registry', scopes: [`repository:${NAME}:delete`], status: 200 },
    ]);
    // Only the first request went without a token; the credentials went to the token service only.
    expect(registry.requests.filter((r) => r.status === 401)).toEqual([registry.requests[0]]);
    expect(registry.requests.slice(1).every((r) => r.authorization?.startsWith('Bearer ') === true)).toBe(true);
  });

  it('says to check the push secret when the token service refuses its credentials', async () => {
    const tokens = await startRegistryTokenServer({ users: { [CREDENTIALS.username]: CREDENTIALS.password } });
    cleanups.push(() => tokens.close());
    const registry = await fakeRegistry({ auth: { bearer: { realm: tokens.realm, service: tokens.service, certificate: tokens.certificate } } });

    const error = await rejectionOf(clientFor(registry.host, { credentials: { username: 'robot', password: 'not-it' } }).blobExists(sha256Digest(Buffer.from('x'))), StoreError);
    expect(error).toMatchObject({ retriable: false, blocker: 'denied' });
    expect(error.message).toBe(
      `the token service ${new URL(tokens.realm).origin}/token of registry ${registry.host} refused a token for repository:${NAME}:pull,push as user "robot": HTTP 401: check the push secret's credentials for this registry`,
    );
  });
});

describe('chunked upload', () => {
  it.each(['relative', 'absolute'] as const)('POSTs, PATCHes each chunk to the Location of the last answer (%s), and PUTs ?digest=', async (locations) => {
    const registry = await fakeRegistry({ locations });
    // Through the proxy: absolute Locations then name the proxy's host, which the Host header carries.
    const proxy = await faultProxy(registry, () => 'pass');
    const client = clientFor(proxy.host);

    const blob = await uploadFileBlob(client, archivePath, { chunkSizeBytes: 64 * KiB, readSizeBytes: 16 * KiB });

    expect(blob).toEqual({ digest: sha256Digest(archive), size: archive.length });
    expect(proxy.requests.map((r) => r.method)).toEqual(['POST', 'PATCH', 'PATCH', 'PATCH', 'PATCH', 'PUT']);
    expect(uploads(proxy.requests, 'PATCH').map((r) => r.contentRange)).toEqual(['0-65535', '65536-131071', '131072-196607', `196608-${archive.length - 1}`]);
    // The fake answers 400 to a PATCH at a stale Location: each went where the answer before said.
    expect(registry.requests.every((r) => r.status < 300)).toBe(true);
    expect(uploads(proxy.requests, 'PUT')[0].path).toContain(`digest=${encodeURIComponent(blob.digest)}`);
    expect(registry.repository(NAME).blobs.get(blob.digest)?.equals(archive)).toBe(true);
    expect(registry.repository(NAME).uploads.size).toBe(0);
  });

  it('resumes a chunk cut mid-body from the offset the registry reports in Range', async () => {
    const registry = await fakeRegistry();
    const proxy = await faultProxy(registry, (req) => (req.method === 'PATCH' && req.contentRange === '65536-131071' ? { cutAfterBytes: 10_000 } : 'pass'));
    const client = clientFor(proxy.host);

    const blob = await uploadFileBlob(client, archivePath, { chunkSizeBytes: 64 * KiB, readSizeBytes: 16 * KiB });

    expect(blob.digest).toBe(sha256Digest(archive));
    const methods = proxy.requests.map((r) => r.method);
    expect(methods).toEqual(['POST', 'PATCH', 'PATCH', 'GET', 'PATCH', 'PATCH', 'PATCH', 'PUT']);
    // The resumed PATCH starts where the registry's Range said its bytes end: inside the cut chunk, past its start.
    const resumed = uploads(proxy.requests, 'PATCH')[2].contentRange ?? '';
    const [from, to] = resumed.split('-').map(Number);
    expect(from).toBeGreaterThan(65536);
    expect(from).toBeLessThanOrEqual(65536 + 10_000);
    expect(to).toBe(131071);
    expect(registry.repository(NAME).blobs.get(blob.digest)?.equals(archive)).toBe(true);
  });

  it('refuses a Location that would take an https registry\'s upload to plain http', () => {
    const transport = new HttpTransport();
    cleanups.push(() => transport.close());
    const client = new RegistryClient({ registry: 'registry.example:5000', name: NAME, insecure: false, transport, auth: new RegistryAuth({ registry: 'registry.example:5000', transport }), retry: { attempts: 1, initialMs: 1, maxMs: 1 } });
    expect(client.resolveLocation('/v2/x/blobs/uploads/1?_state=a', 'upload').href).toBe('https://registry.example:5000/v2/x/blobs/uploads/1?_state=a');
    expect(client.resolveLocation('https://storage.example/upload/1', 'upload').href).toBe('https://storage.example/upload/1');
    expect(() => client.resolveLocation('http://storage.example/upload/1', 'upload a chunk')).toThrow(`upload a chunk: registry registry.example:5000, repository ${NAME}: the registry sent the upload to http://storage.example, a plain-http location for an https registry`);
    expect(() => client.resolveLocation('http://storage.example/upload/1', 'upload a chunk')).toThrow(StoreError);
  });
});

describe('digests', () => {
  it('refuses a blob whose bytes changed on the way, leaving no blob and no upload session behind', async () => {
    const registry = await fakeRegistry();
    const proxy = await faultProxy(registry, (req) => (req.method === 'PATCH' && req.contentRange === '65536-131071' ? { flipByte: 4096 } : 'pass'));
    const client = clientFor(proxy.host);

    const error = await rejectionOf(uploadFileBlob(client, archivePath, { chunkSizeBytes: 64 * KiB }), StoreError);

    expect(error.retriable).toBe(true);
    expect(error.message).toBe(
      `registry ${proxy.host}, repository ${NAME}: the registry computed another digest than ${sha256Digest(archive)} for the uploaded archive: it changed while it was read, or the upload was corrupted; store it again`,
    );
    expect(registry.repository(NAME).blobs.size).toBe(0);
    expect(registry.repository(NAME).uploads.size).toBe(0);
  });

  it('refuses a manifest whose bytes do not match the digest it was read by, or the one the registry names', async () => {
    const registry = await fakeRegistry();
    const client = clientFor(registry.host);
    const { digest } = await pushImage(client, 'v1');
    // The registry's storage damaged: other bytes under the manifest's digest.
    const stored = registry.repository(NAME).manifests.get(digest)!;
    const damaged = Buffer.from(stored.bytes.toString('utf8').replace('"schemaVersion":2', '"schemaVersion":3'));
    registry.repository(NAME).manifests.set(digest, { ...stored, bytes: damaged });
    registry.requests.length = 0;

    const byDigest = await rejectionOf(client.getManifest(digest), StoreError);
    expect(byDigest.message).toBe(
      `read manifest ${digest}: registry ${registry.host}, repository ${NAME}: the ${damaged.length} bytes received hash to ${sha256Digest(damaged)}, not to ${digest} (the digest it was read by); the manifest was refused: it is damaged in the registry's storage or was changed on the way (a proxy), so check the registry and read it again`,
    );
    // Worth reading again (a proxy may have damaged it): it was, as often as the policy allows.
    expect(byDigest.retriable).toBe(true);
    expect(registry.requests.filter((r) => r.method === 'GET')).toHaveLength(3);

    const byTag = await rejectionOf(client.getManifest('v1'), StoreError);
    expect(byTag.message).toContain(`not to ${digest} (the Docker-Content-Digest the registry sent with it)`);
  });
});

describe('manifests and tags', () => {
  it('puts a manifest by tag and reads it back by tag and by digest', async () => {
    const registry = await fakeRegistry();
    const client = clientFor(registry.host);
    const { bytes, digest } = await pushImage(client, 'v1');

    for (const reference of ['v1', digest]) {
      const read = await client.getManifest(reference);
      expect(read?.bytes.equals(bytes)).toBe(true);
      expect(read?.mediaType).toBe(OCI_MANIFEST);
      expect(read?.digest).toBe(digest);
    }
    expect(await client.getManifest('v2')).toBeUndefined();
    // What the registry holds: the bytes as sent, under their sha256.
    expect(registry.repository(NAME).manifests.get(digest)?.bytes.equals(bytes)).toBe(true);
    expect(registry.repository(NAME).tags.get('v1')).toBe(digest);
  });

  it('returns the digest the registry stored a manifest under', async () => {
    const registry = await fakeRegistry();
    const client = clientFor(registry.host);
    const config = Buffer.from('{}');
    const layer = Buffer.from('layer');
    await client.putSmallBlob(config, sha256Digest(config));
    await client.putSmallBlob(layer, sha256Digest(layer));
    const manifest = manifestOf(config, layer);
    expect(await client.putManifest('v1', manifest, OCI_MANIFEST)).toBe(sha256Digest(manifest));
    // The small blobs went in one POST and one PUT each, after a HEAD found them absent.
    expect(registry.requests.map((r) => r.method)).toEqual(['HEAD', 'POST', 'PUT', 'HEAD', 'POST', 'PUT', 'PUT']);
  });

  it('lists every tag across pages and deletes a manifest with its tags', async () => {
    const registry = await fakeRegistry({ maxTagsPerPage: 2 });
    const client = clientFor(registry.host);
    expect(await client.listTags()).toEqual([]);
    const { digest } = await pushImage(client, 'a');
    for (const tag of ['b', 'c', 'd', 'e']) await pushImage(client, tag);

    expect(await client.listTags()).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(registry.requests.filter((r) => r.path.includes('/tags/list')).map((r) => r.status)).toEqual([404, 200, 200, 200]);

    expect(await client.deleteManifest(digest)).toBe('deleted');
    expect(await client.deleteManifest(digest)).toBe('absent');
    expect(await client.listTags()).toEqual(['b', 'c', 'd', 'e']);
  });
});

describe('4xx errors name what to do', () => {
  it('a 413 on a chunk: lower --registry-chunk-size; the upload is not retried and its session is freed', async () => {
    const registry = await fakeRegistry();
    const proxy = await faultProxy(registry, (req) => (req.method === 'PATCH' ? { status: 413, code: 'SIZE_INVALID', message: 'request entity too large' } : 'pass'));
    const client = clientFor(proxy.host);

    const error = await rejectionOf(uploadFileBlob(client, archivePath, { chunkSizeBytes: 1024 * KiB }), StoreError);

    expect(error.retriable).toBe(false);
    expect(error.message).toBe(
      `upload bytes 0-${archive.length - 1} of ${archive.length}: registry ${proxy.host}, repository ${NAME}: HTTP 413 SIZE_INVALID: request entity too large: the registry, or a proxy in front of it, limits the size of a request body; set the node agent's --registry-chunk-size below that limit`,
    );
    expect(proxy.requests.map((r) => r.method)).toEqual(['POST', 'PATCH', 'DELETE']);
    expect(registry.repository(NAME).uploads.size).toBe(0);
  });

  it('a 403: the push secret\'s user may not do this; a 405 on delete: enable deletes', async () => {
    const registry = await fakeRegistry();
    const proxy = await faultProxy(registry, (req) =>
      req.method === 'PUT' ? { status: 403, code: 'DENIED', message: 'requested access to the resource is denied' } : req.method === 'DELETE' ? { status: 405, code: 'UNSUPPORTED', message: 'The operation is unsupported.' } : 'pass',
    );
    const client = clientFor(proxy.host);

    const denied = await rejectionOf(client.putManifest('v1', Buffer.from('{}'), OCI_MANIFEST), StoreError);
    expect(denied.retriable).toBe(false);
    expect(denied.message).toBe(`push manifest v1: registry ${proxy.host}, repository ${NAME}: HTTP 403 DENIED: requested access to the resource is denied: the push secret's user may not do this in this repository`);

    const digest = sha256Digest(Buffer.from('{}'));
    const unsupported = await rejectionOf(client.deleteManifest(digest), StoreError);
    expect(unsupported.message).toBe(
      `delete manifest ${digest}: registry ${proxy.host}, repository ${NAME}: HTTP 405 UNSUPPORTED: The operation is unsupported.: the registry does not allow deletes (distribution: storage.delete.enabled: true)`,
    );
  });

  it('a manifest naming a blob the registry lacks: the registry\'s own word, once', async () => {
    const registry = await fakeRegistry();
    const client = clientFor(registry.host);
    const error = await rejectionOf(client.putManifest('v1', manifestOf(Buffer.from('{}'), Buffer.from('never pushed')), OCI_MANIFEST), StoreError);
    expect(error.retriable).toBe(false);
    expect(error.message).toContain('HTTP 400 MANIFEST_BLOB_UNKNOWN: blob unknown to registry: sha256:');
    expect(registry.requests).toHaveLength(1);
  });
});
