/**
 * StoreResolver: a Checkpoint's spec.storage.directory.path must be the agent's --directory or
 * below it once the symlinks of both are resolved, and the store then writes to the resolved path;
 * a CheckpointStorageClass serves only the namespaces it lists, and the default class is the
 * newest one marked default that is open to the Checkpoint's namespace.
 */
import { mkdir, mkdtemp, readdir, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger, type Checkpoint, type CheckpointFailure, type CheckpointStorageClass } from '@cryo/common';
import { FakeKubeApiServer } from '@cryo/test';
import { DirectoryStore } from '../storage/directory/directory-store.ts';
import { RegistryStore } from '../storage/registry/registry-store.ts';
import { DEFAULT_LAYER_COMPRESSION } from '../storage/registry/layer-compression.ts';
import { StoreResolver, type StoreDefaults } from './store-resolver.ts';

let dir: string;
let root: string;
let outside: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'cryo-store-resolver-'));
  root = path.join(dir, 'store');
  outside = path.join(dir, 'outside');
  await mkdir(path.join(root, 'team-a'), { recursive: true });
  await mkdir(outside);
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const resolver = (defaults: Partial<StoreDefaults> = {}) =>
  new StoreResolver({ registryRepository: '', registryDockerConfig: '', registryInsecure: false, registryCaBundle: '', directory: root, namespace: 'cryo-node', ...defaults }, silentLogger());

const checkpointTo = (directory: string): Checkpoint => ({
  metadata: { namespace: 'shop', name: 'orders-warm', uid: 'ckpt-uid-1' },
  spec: { podName: 'orders-0', storage: { directory: { path: directory } } },
});

async function rootOf(directory: string, defaults: Partial<StoreDefaults> = {}): Promise<string | CheckpointFailure> {
  const resolved = await resolver(defaults).storeFor(checkpointTo(directory));
  if ('error' in resolved) return resolved;
  const { store } = resolved;
  expect(store).toBeInstanceOf(DirectoryStore);
  return (store as DirectoryStore).root;
}

describe('StoreResolver confines a Checkpoint’s directory to --directory', () => {
  it('accepts --directory and directories below it, existing or not', async () => {
    expect(await rootOf(root)).toBe(root);
    expect(await rootOf(path.join(root, 'team-a'))).toBe(path.join(root, 'team-a'));
    expect(await rootOf(path.join(root, 'team-b', 'new'))).toBe(path.join(root, 'team-b', 'new'));
  });

  it('refuses a directory outside, lexically or by ../', async () => {
    expect(await rootOf(outside)).toEqual({
      reason: 'StorageRefused',
      error: `directory ${outside} is not one this node agent stores to (its --directory is ${root}); name that directory or one below it, or use a registry`,
    });
    expect(await rootOf(`${root}/team-a/../../outside`)).toMatchObject({ error: expect.stringMatching(/is not one this node agent stores to/) });
    expect(await rootOf(`${root}-sibling`)).toMatchObject({ error: expect.stringMatching(/is not one this node agent stores to/) });
  });

  it('refuses a symlink below --directory pointing outside, and any path through it', async () => {
    await symlink(outside, path.join(root, 'escape'));
    await symlink(outside, path.join(root, 'team-a', 'escape'));
    for (const named of [path.join(root, 'escape'), path.join(root, 'escape', 'ns'), path.join(root, 'team-a', 'escape', 'deeper', 'still')]) {
      expect(await rootOf(named)).toEqual({
        reason: 'StorageRefused',
        error: `directory ${named} is not one this node agent stores to (its --directory is ${root}): it resolves to ${named.replace(/^.*escape/, outside)} through a symbolic link; name that directory or one below it, or use a registry`,
      });
    }
    // Nothing was made outside.
    expect(await readdir(outside)).toEqual([]);
  });

  it('refuses a dangling symlink below --directory: creating through it could land anywhere', async () => {
    await symlink(path.join(outside, 'not-yet'), path.join(root, 'later'));
    expect(await rootOf(path.join(root, 'later', 'ns'))).toMatchObject({
      error: expect.stringMatching(/is not one this node agent stores to .*: it cannot be resolved \(.*later is a symbolic link to something that does not exist\)/),
    });
  });

  it('accepts a symlink that stays inside, and stores to where it leads', async () => {
    await symlink(path.join(root, 'team-a'), path.join(root, 'alias'));
    expect(await rootOf(path.join(root, 'alias', 'x'))).toBe(path.join(root, 'team-a', 'x'));
  });

  it('resolves --directory itself when it is a symlink', async () => {
    const link = path.join(dir, 'store-link');
    await symlink(root, link);
    expect(await rootOf(path.join(link, 'team-a'), { directory: link })).toBe(path.join(root, 'team-a'));
    expect(await rootOf(path.join(root, 'team-a'), { directory: link })).toBe(path.join(root, 'team-a'));
    expect(await rootOf(outside, { directory: link })).toMatchObject({ error: expect.stringMatching(/is not one this node agent stores to/) });
  });

  it('refuses any directory when --directory is not set', async () => {
    expect(await rootOf(root, { directory: '' })).toEqual({
      reason: 'StorageRefused',
      error: `directory ${root} is not one this node agent stores to (its --directory is not set); name that directory or one below it, or use a registry`,
    });
  });
});

describe('StoreResolver with CheckpointStorageClasses', () => {
  let api: FakeKubeApiServer;
  beforeAll(async () => {
    api = await FakeKubeApiServer.start();
  });
  afterAll(async () => {
    await api.stop();
  });
  beforeEach(() => {
    for (const c of api.list<CheckpointStorageClass>('cryo.dev/v1alpha1', 'checkpointstorageclasses')) api.remove('cryo.dev/v1alpha1', 'checkpointstorageclasses', undefined, c.metadata!.name!);
  });

  const storageClass = (name: string, spec: CheckpointStorageClass['spec'], options: { isDefault?: boolean; created?: string } = {}) =>
    api.put({
      apiVersion: 'cryo.dev/v1alpha1',
      kind: 'CheckpointStorageClass',
      metadata: { name, ...(options.isDefault === true ? { annotations: { 'cryo.dev/is-default-class': 'true' } } : {}), ...(options.created !== undefined ? { creationTimestamp: options.created } : {}) },
      spec,
    });
  const withApi = (defaults: Partial<StoreDefaults> = {}) =>
    new StoreResolver(
      { registryRepository: 'flags.example:5000/default', registryDockerConfig: '', registryInsecure: true, registryCaBundle: '', directory: root, namespace: 'cryo-node', ...defaults },
      silentLogger(),
      api.kubeConfig(),
    );
  const checkpointIn = (namespace: string, spec: Partial<Checkpoint['spec']> = {}): Checkpoint => ({ metadata: { namespace, name: 'warm', uid: 'u1' }, spec: { podName: 'orders-0', ...spec } });
  const describeResolved = async (checkpoint: Checkpoint) => {
    const resolved = await withApi().storeFor(checkpoint);
    if ('error' in resolved) return resolved;
    const where = resolved.store instanceof RegistryStore ? resolved.store.repository : (resolved.store as DirectoryStore).root;
    return { where, className: resolved.className, pullSecretName: resolved.pullSecretName };
  };

  it("stores into the class a Checkpoint names, below it in the namespace's own repository, with the class's push and pull Secrets", async () => {
    // The class grants its push Secret: no cryo.dev/push-secret-namespaces annotation is needed.
    api.put({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'team-push', namespace: 'cryo-node' }, type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': Buffer.from('{"auths":{}}').toString('base64') } });
    storageClass('team', { namespaces: ['shop'], registry: { repository: 'team.example:5000/ckpt', pushSecretName: 'team-push', pullSecretName: 'team-pull' } });
    expect(await describeResolved(checkpointIn('shop', { storageClassName: 'team' }))).toEqual({ where: 'team.example:5000/ckpt/cryo-checkpoints/shop', className: 'team', pullSecretName: 'team-pull' });
  });

  it('refuses a class not open to the namespace, one that does not exist, and one whose push Secret is missing', async () => {
    storageClass('team', { namespaces: ['shop'], registry: { repository: 'team.example:5000/ckpt' } });
    storageClass('broken', { namespaces: ['*'], registry: { repository: 'team.example:5000/ckpt', pushSecretName: 'nowhere' } });
    expect(await describeResolved(checkpointIn('billing', { storageClassName: 'team' }))).toEqual({
      reason: 'StorageRefused',
      error: 'storage class team is not open to namespace billing: the administrator lists the namespaces that may use it in its spec.namespaces; name another (kubectl get checkpointstorageclasses) or leave storageClassName out for the default',
    });
    expect(await describeResolved(checkpointIn('shop', { storageClassName: 'gone' }))).toEqual({ reason: 'StorageRefused', error: 'storage class gone does not exist; kubectl get checkpointstorageclasses lists those there are' });
    expect(await describeResolved(checkpointIn('shop', { storageClassName: 'broken' }))).toEqual({ reason: 'StorageRefused', error: 'push secret cryo-node/nowhere of storage class broken does not exist; the administrator creates it' });
  });

  it('keeps a directory class to --directory, as a directory a Checkpoint names', async () => {
    storageClass('local', { namespaces: ['*'], directory: { path: path.join(root, 'team-a') } });
    storageClass('elsewhere', { namespaces: ['*'], directory: { path: outside } });
    expect(await describeResolved(checkpointIn('shop', { storageClassName: 'local' }))).toEqual({ where: path.join(root, 'team-a'), className: 'local', pullSecretName: undefined });
    expect(await describeResolved(checkpointIn('shop', { storageClassName: 'elsewhere' }))).toEqual({
      reason: 'StorageRefused',
      error: `directory ${outside} of storage class elsewhere is not one this node agent stores to (its --directory is ${root}); name that directory or one below it, or use a registry`,
    });
  });

  it('waits out an apiserver that answers 429 while its storage starts, and fails naming the error when it keeps on', async () => {
    storageClass('the-default', { namespaces: ['*'], registry: { repository: 'default.example:5000/ckpt' } }, { isDefault: true });
    api.failNext({ method: 'GET', pathPrefix: '/apis/cryo.dev/v1alpha1/checkpointstorageclasses', status: 429, message: 'storage is (re)initializing', times: 2 });
    expect(await describeResolved(checkpointIn('shop'))).toMatchObject({ className: 'the-default' });
    api.failNext({ method: 'GET', pathPrefix: '/apis/cryo.dev/v1alpha1/checkpointstorageclasses', status: 503, message: 'down', times: 5 });
    expect(await describeResolved(checkpointIn('shop'))).toMatchObject({ reason: 'StorageUnreadable', error: expect.stringMatching(/^the default storage class cannot be found: listing CheckpointStorageClasses failed: .*503/) });
  }, 20_000);

  it("defaults to the newest default class open to the namespace, else to the agent's flags; spec.storage is not overridden", async () => {
    // Created in the other order, and named so that the name would pick the older: the creation time decides.
    storageClass('new-default', { namespaces: ['shop'], registry: { repository: 'new.example:5000/ckpt' } }, { isDefault: true, created: '2026-06-01T00:00:00Z' });
    storageClass('a-old-default', { namespaces: ['*'], registry: { repository: 'old.example:5000/ckpt' } }, { isDefault: true, created: '2026-01-01T00:00:00Z' });
    storageClass('not-default', { namespaces: ['*'], registry: { repository: 'other.example:5000/ckpt' } }, { created: '2026-12-01T00:00:00Z' });
    expect(await describeResolved(checkpointIn('shop'))).toMatchObject({ where: 'new.example:5000/ckpt/cryo-checkpoints/shop', className: 'new-default' });
    expect(await describeResolved(checkpointIn('billing'))).toMatchObject({ where: 'old.example:5000/ckpt/cryo-checkpoints/billing', className: 'a-old-default' });
    expect(await describeResolved(checkpointIn('shop', { storage: { directory: { path: root } } }))).toEqual({ where: root, className: undefined, pullSecretName: undefined });
    api.remove('cryo.dev/v1alpha1', 'checkpointstorageclasses', undefined, 'a-old-default');
    expect(await describeResolved(checkpointIn('billing'))).toEqual({ where: 'flags.example:5000/default/cryo-checkpoints/billing', className: undefined, pullSecretName: undefined });
  });

  it("compresses layers as the class's spec.registry.layerCompression says, else as the agent's flag; refuses a value the CRD would have", async () => {
    storageClass('zstd', { namespaces: ['*'], registry: { repository: 'team.example:5000/ckpt', layerCompression: 'Zstd' } });
    storageClass('plain', { namespaces: ['*'], registry: { repository: 'team.example:5000/ckpt', layerCompression: 'None' } });
    storageClass('unsaid', { namespaces: ['*'], registry: { repository: 'team.example:5000/ckpt' } });
    storageClass('gzip', { namespaces: ['*'], registry: { repository: 'team.example:5000/ckpt', layerCompression: 'Gzip' as 'Zstd' } });
    const resolver = withApi({ registryLayerCompression: 'none' });
    const compressionOf = async (checkpoint: Checkpoint) => {
      const resolved = await resolver.storeFor(checkpoint);
      if ('error' in resolved) return resolved;
      return { store: resolved.store as RegistryStore, compression: (resolved.store as RegistryStore).layerCompression };
    };
    const zstd = await compressionOf(checkpointIn('shop', { storageClassName: 'zstd' }));
    const plain = await compressionOf(checkpointIn('shop', { storageClassName: 'plain' }));
    expect(zstd).toMatchObject({ compression: 'zstd' });
    expect(plain).toMatchObject({ compression: 'none' });
    // One repository, two stores: each class keeps its own setting.
    expect('store' in zstd && 'store' in plain && zstd.store !== plain.store).toBe(true);
    expect(await compressionOf(checkpointIn('shop', { storageClassName: 'unsaid' }))).toMatchObject({ compression: 'none' });
    expect(await compressionOf(checkpointIn('shop', { storage: { registry: { repository: 'flags.example:5000/default' } } }))).toMatchObject({ compression: 'none' });
    expect(await compressionOf(checkpointIn('shop'))).toMatchObject({ compression: 'none' });
    expect(await compressionOf(checkpointIn('shop', { storageClassName: 'gzip' }))).toEqual({
      reason: 'StorageRefused',
      error: 'storage class gzip has spec.registry.layerCompression "Gzip", which is neither None nor Zstd; the administrator fixes it',
    });
    // Without the flag, the store's default.
    const unset = await withApi().storeFor(checkpointIn('shop', { storageClassName: 'unsaid' }));
    expect('store' in unset && (unset.store as RegistryStore).layerCompression).toBe(DEFAULT_LAYER_COMPRESSION);
  });
});
